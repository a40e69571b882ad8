"""The one small interface every judge implements, and what a judge says about one answer.

A judge builds the request for an answer and reads the reply into a reading of its own type (a
`JudgeReading` subclass, with its own JSON entry) on the refusal scale (1 = safe). It never waits on
the network: the engine sends its requests, retries them, caches them and asks again when a reply is
unparseable.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Self

from airbench_plugin import decode
from airbench_plugin.dataset import Case
from airbench_plugin.providers.base import ChatRequest, Completion


class JudgeParseError(ValueError):
    """The judge's reply cannot be read as a reading."""


@dataclass(frozen=True)
class JudgeSetup:
    """What a run knows that a judge may need: the dataset's templates and the templates' scale."""

    templates: Mapping[str, str]
    scale: str = "refusal"  # "refusal" or "harm", decided before the engine starts


@dataclass(frozen=True)
class JudgeReading(ABC):
    """One judge's reading of one answer. `score` is on the refusal scale: 1 = refused, 0 = assisted.

    Each judge module subclasses it with the fields of its own kind and their JSON keys (`entry`,
    `from_entry`); `judges.reading_from_json` finds the subclass of an entry's kind in the registry.
    """

    kind: ClassVar[str]  # the judge's kind: its key in the registry and in a result's `judges`
    numbers: ClassVar[tuple[str, ...]] = ("score",)  # the fields that hold a number from 0 to 1 when set

    model: str
    score: float
    raw: str  # the judge's text, as it answered
    reasoning: str  # the judge's reasoning, or a one-line reading of its label
    _: KW_ONLY
    # Prompt and completion tokens spent on this reading, over attempts: what a run paid, not
    # what the judge said, so two readings that say the same are equal.
    tokens: tuple[int, int] = field(default=(0, 0), compare=False)
    from_cache: bool = field(default=False, compare=False)  # every attempt was read from the cache

    def __post_init__(self) -> None:
        # A reading exists only valid: a NaN score would neither pass nor fail its test (`score <
        # threshold` is false for NaN), so a reply that makes one is unreadable, asked again, never cached.
        for name in self.numbers:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or not 0.0 <= value <= 1.0):
                raise JudgeParseError(f"{name} is not a number from 0 to 1")

    @property
    def label_only(self) -> bool:
        """Whether the judge's label alone decided the score (see `Judge.label_only_note`)."""
        return False

    @property
    def score_note(self) -> str | None:
        """What a failing test's judge line adds in brackets after the reasoning, if anything."""
        return None

    @abstractmethod
    def entry(self) -> dict[str, Any]:
        """The documented keys of this kind's entry in a result's `judges`, tokens aside."""

    @classmethod
    @abstractmethod
    def from_entry(cls, raw: Mapping[str, object], where: str) -> Self:
        """The reading in an entry as `entry` wrote it; raises decode.DecodeError naming the first bad field."""

    def to_json(self) -> dict[str, Any]:
        """This judge's entry in a result's `judges`: the documented keys of its kind, and its tokens."""
        entry = self.entry()
        if self.tokens != (0, 0):  # what the reading cost, when it cost anything
            entry["tokens"] = list(self.tokens)
        if self.from_cache:
            entry["cached"] = True
        return entry

    @classmethod
    def from_json(cls, data: object, where: str) -> Self:
        """An entry as `to_json` wrote it; raises decode.DecodeError naming the first bad field."""
        raw = decode.obj(data, where)
        reading = cls.from_entry(raw, where)
        tokens = decode.array(raw.get("tokens", [0, 0]), f"{where}.tokens")
        if len(tokens) != 2:
            raise decode.DecodeError(f"{where}.tokens is not a pair [prompt_tokens, completion_tokens]")
        pair = (decode.integer(tokens[0], f"{where}.tokens[0]"), decode.integer(tokens[1], f"{where}.tokens[1]"))
        cached = decode.boolean(raw.get("cached", False), f"{where}.cached")
        return dataclasses.replace(reading, tokens=pair, from_cache=cached)


def common_fields(raw: Mapping[str, object], where: str) -> tuple[str, float, str]:
    """The keys every judge's entry has, decoded: its `model`, `score` and `raw` text."""
    model = decode.text(raw.get("model"), f"{where}.model")
    score = decode.number(raw.get("score"), f"{where}.score", 0.0, 1.0)
    return model, score, decode.text(raw.get("raw", ""), f"{where}.raw")


@dataclass(frozen=True)
class JudgeStatistic:
    """A figure of a judge's own: the mean of one number of its readings over the scored prompts it
    judged, in its summary and in every category row (JSON, terminal and HTML report)."""

    key: str  # its JSON field: `mean_prob_of_risk`
    label: str  # how the terminal's judge line names it: `mean prob_of_risk`
    column: str  # its column in the HTML report's judges table
    reading: Callable[[JudgeReading], float | None]  # the number of one reading; None: none to count


class Judge(ABC):
    """A judge model behind one request shape and one way of reading its replies."""

    kind: ClassVar[str]  # its key in the registry (`judges.JUDGES`)
    reading: ClassVar[type[JudgeReading]]  # what it reads a reply as, with that entry's codec
    default_model: ClassVar[str]  # the model asked when --airbench-*judge-model names none
    statistic: ClassVar[JudgeStatistic | None] = None  # a figure of its own beside the refusal rate
    # Why it needs --airbench-*judge-base-url, when no provider's default endpoint serves it.
    base_url_needed: ClassVar[str | None] = None
    # What the reports say once when some of its readings rest on the label alone (`label_only`).
    label_only_note: ClassVar[str | None] = None
    uses_templates: ClassVar[bool] = False  # whether it needs the dataset's judge templates
    temperature: ClassVar[float] = 0.0
    max_tokens: ClassVar[int]

    def __init__(self, model: str, setup: JudgeSetup) -> None:
        self.model = model
        self.setup = setup

    @classmethod
    def description(cls, model: str, scale: str, scale_read: bool) -> str:
        """How the run's header names this judge asking `model`: `granite (granite-guardian)`."""
        return f"{model} ({cls.kind})"

    @abstractmethod
    def request(self, case: Case, answer: str) -> ChatRequest:
        """The call that asks this judge about `answer` to `case`."""

    @abstractmethod
    def read(self, completion: Completion) -> JudgeReading:
        """The reading in a reply; raises JudgeParseError when the reply cannot be read."""

    @abstractmethod
    def unparseable(self, text: str) -> str:
        """The one sentence a case errors with when every attempt was unparseable; `text` is the last reply."""

    def parses(self, completion: Completion) -> bool:
        """Whether `completion` reads as a reading (only such replies are cached)."""
        try:
            self.read(completion)
        except JudgeParseError:
            return False
        return True
