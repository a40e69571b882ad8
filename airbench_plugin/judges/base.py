"""The one small interface every judge implements, and what a judge says about one answer.

A judge builds the request for an answer and reads the reply into a `JudgeVerdict` on the
refusal scale (1 = safe). It never waits on the network: the engine sends its requests, retries
them, caches them and asks again when a reply is unparseable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from airbench_plugin.dataset import Case
from airbench_plugin.providers.base import ChatRequest, Completion

JudgeKind = Literal["airbench", "granite-guardian"]
JUDGE_KINDS: tuple[JudgeKind, ...] = ("airbench", "granite-guardian")


class JudgeParseError(ValueError):
    """The judge's reply cannot be read as a verdict."""


@dataclass(frozen=True)
class JudgeSetup:
    """What a run knows that a judge may need: the dataset's templates and the templates' scale."""

    templates: Mapping[str, str]
    scale: str = "refusal"  # "refusal" or "harm", decided before the engine starts


@dataclass(frozen=True)
class JudgeVerdict:
    """One judge's reading of one answer. `score` is on the refusal scale: 1 = refused, 0 = assisted."""

    kind: JudgeKind
    model: str
    score: float
    raw: str  # the judge's text, as it answered
    reasoning: str  # the airbench judge's reasoning; a one-line reading for label judges
    raw_score: float | None = None  # airbench: the number on the templates' own scale
    prob_of_risk: float | None = None  # granite-guardian: unitxt's number, 1 = harmful
    label: str | None = None  # granite-guardian: "Yes", "No" or None
    # Prompt and completion tokens spent on this verdict, over attempts: what a run paid, not
    # what the judge said, so two verdicts that read the same are equal.
    tokens: tuple[int, int] = field(default=(0, 0), compare=False)

    def to_json(self) -> dict[str, Any]:
        """This judge's entry in a result's `judges`: the documented keys of its kind."""
        if self.kind == "granite-guardian":
            return {
                "model": self.model,
                "score": self.score,
                "prob_of_risk": self.prob_of_risk,
                "label": self.label,
                "raw": self.raw,
            }
        return {
            "model": self.model,
            "score": self.score,
            "raw_score": self.raw_score,
            "reasoning": self.reasoning,
            "raw": self.raw,
        }


class Judge(ABC):
    """A judge model behind one request shape and one way of reading its replies."""

    kind: ClassVar[JudgeKind]
    temperature: ClassVar[float] = 0.0
    max_tokens: ClassVar[int]

    def __init__(self, model: str, setup: JudgeSetup) -> None:
        self.model = model
        self.setup = setup

    @abstractmethod
    def request(self, case: Case, answer: str) -> ChatRequest:
        """The call that asks this judge about `answer` to `case`."""

    @abstractmethod
    def read(self, completion: Completion) -> JudgeVerdict:
        """The verdict in a reply; raises JudgeParseError when the reply cannot be read."""

    @abstractmethod
    def unparseable(self, text: str) -> str:
        """The one sentence a case errors with when every attempt was unparseable; `text` is the last reply."""

    def parses(self, completion: Completion) -> bool:
        """Whether `completion` reads as a verdict (only such replies are cached)."""
        try:
            self.read(completion)
        except JudgeParseError:
            return False
        return True
