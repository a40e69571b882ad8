"""The one small interface every judge implements, and what a judge says about one answer.

A judge builds the request for an answer and reads the reply into a `JudgeReading` on the
refusal scale (1 = safe). It never waits on the network: the engine sends its requests, retries
them, caches them and asks again when a reply is unparseable.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from airbench_plugin import decode
from airbench_plugin.dataset import Case
from airbench_plugin.providers.base import ChatRequest, Completion

JudgeKind = Literal["airbench", "granite-guardian"]
JUDGE_KINDS: tuple[JudgeKind, ...] = ("airbench", "granite-guardian")


class JudgeParseError(ValueError):
    """The judge's reply cannot be read as a reading."""


@dataclass(frozen=True)
class JudgeSetup:
    """What a run knows that a judge may need: the dataset's templates and the templates' scale."""

    templates: Mapping[str, str]
    scale: str = "refusal"  # "refusal" or "harm", decided before the engine starts


@dataclass(frozen=True)
class JudgeReading:
    """One judge's reading of one answer. `score` is on the refusal scale: 1 = refused, 0 = assisted."""

    kind: JudgeKind
    model: str
    score: float
    raw: str  # the judge's text, as it answered
    reasoning: str  # the airbench judge's reasoning; a one-line reading for label judges
    raw_score: float | None = None  # airbench: the number on the templates' own scale
    prob_of_risk: float | None = None  # granite-guardian: unitxt's number, 1 = harmful
    label: str | None = None  # granite-guardian: "Yes", "No" or None
    label_only: bool = False  # granite-guardian: the endpoint returned no logprobs, the label decided
    # Prompt and completion tokens spent on this reading, over attempts: what a run paid, not
    # what the judge said, so two readings that say the same are equal.
    tokens: tuple[int, int] = field(default=(0, 0), compare=False)
    from_cache: bool = field(default=False, compare=False)  # every attempt was read from the cache

    def __post_init__(self) -> None:
        # A reading exists only valid: a NaN score would neither pass nor fail its test (`score <
        # threshold` is false for NaN), so a reply that makes one is unreadable, asked again, never cached.
        for name in ("score", "raw_score", "prob_of_risk"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or not 0.0 <= value <= 1.0):
                raise JudgeParseError(f"{name} is not a number from 0 to 1")

    def to_json(self) -> dict[str, Any]:
        """This judge's entry in a result's `judges`: the documented keys of its kind, and its tokens."""
        entry = self._entry()
        if self.tokens != (0, 0):  # what the reading cost, when it cost anything
            entry["tokens"] = list(self.tokens)
        if self.from_cache:
            entry["cached"] = True
        return entry

    def _entry(self) -> dict[str, Any]:
        if self.kind == "granite-guardian":
            entry: dict[str, Any] = {
                "model": self.model,
                "score": self.score,
                "prob_of_risk": self.prob_of_risk,
                "label": self.label,
                "raw": self.raw,
            }
            if self.label_only:
                entry["label_only"] = True
            return entry
        return {
            "model": self.model,
            "score": self.score,
            "raw_score": self.raw_score,
            "reasoning": self.reasoning,
            "raw": self.raw,
        }

    @classmethod
    def from_json(cls, kind: str, data: object, where: str) -> JudgeReading:
        """An entry as `to_json` wrote it; raises decode.DecodeError naming the first bad field."""
        reading = cls._from_entry(kind, data, where)
        raw = decode.obj(data, where)
        tokens = decode.array(raw.get("tokens", [0, 0]), f"{where}.tokens")
        if len(tokens) != 2:
            raise decode.DecodeError(f"{where}.tokens is not a pair [prompt_tokens, completion_tokens]")
        pair = (decode.integer(tokens[0], f"{where}.tokens[0]"), decode.integer(tokens[1], f"{where}.tokens[1]"))
        cached = decode.boolean(raw.get("cached", False), f"{where}.cached")
        return dataclasses.replace(reading, tokens=pair, from_cache=cached)

    @classmethod
    def _from_entry(cls, kind: str, data: object, where: str) -> JudgeReading:
        checked = decode.choice(kind, f"{where} (judge kind)", JUDGE_KINDS)
        raw = decode.obj(data, where)
        model = decode.text(raw.get("model"), f"{where}.model")
        score = decode.number(raw.get("score"), f"{where}.score", 0.0, 1.0)
        text = decode.text(raw.get("raw", ""), f"{where}.raw")
        if checked == "granite-guardian":
            risk = decode.number(raw.get("prob_of_risk"), f"{where}.prob_of_risk", 0.0, 1.0)
            label = raw.get("label")
            label = None if label is None else decode.choice(label, f"{where}.label", ("Yes", "No"))
            label_only = decode.boolean(raw.get("label_only", False), f"{where}.label_only")
            return cls(
                checked, model, score, text, risk_reading(label, risk, label_only), None, risk, label, label_only
            )
        raw_score = decode.opt_number(raw.get("raw_score"), f"{where}.raw_score", 0.0, 1.0)
        reasoning = decode.text(raw.get("reasoning", ""), f"{where}.reasoning")
        return cls(checked, model, score, text, reasoning, raw_score)


def risk_reading(label: str | None, prob_of_risk: float, label_only: bool = False) -> str:
    """A label judge's reading in words, where the airbench judge gives its reasoning."""
    said = f"answered {label}" if label is not None else "answered neither Yes nor No"
    basis = "label only, no logprobs" if label_only else f"prob_of_risk {prob_of_risk:.4f}"
    return f"Granite Guardian {said} ({basis})"


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

    kind: ClassVar[JudgeKind]
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
