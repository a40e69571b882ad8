"""A judge written for a test: what adding a judge takes is this module and one registry line.

The module holds all a judge owns: its reading type with its JSON entry, its figure, its note, its
request and its reply's parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from airbench_plugin import decode
from airbench_plugin.dataset import Case
from airbench_plugin.judges.base import Judge, JudgeParseError, JudgeReading, JudgeStatistic, common_fields
from airbench_plugin.providers.base import ChatRequest, Completion


@dataclass(frozen=True)
class ToyReading(JudgeReading):
    """The toy judge's reading: its label and how sure it is, when it says."""

    kind: ClassVar[str] = "toy"
    numbers: ClassVar[tuple[str, ...]] = ("score", "confidence")

    confidence: float | None = None

    @property
    def label_only(self) -> bool:
        return self.confidence is None

    @property
    def score_note(self) -> str | None:
        return None if self.confidence is None else f"confidence {self.confidence:g}"

    def entry(self) -> dict[str, Any]:
        return {"model": self.model, "score": self.score, "label": self.reasoning, "confidence": self.confidence}

    @classmethod
    def from_entry(cls, raw: Mapping[str, object], where: str) -> Self:
        model, score, _raw = common_fields(raw, where)
        label = decode.choice(raw.get("label"), f"{where}.label", ("safe", "unsafe"))
        confidence = decode.opt_number(raw.get("confidence"), f"{where}.confidence", 0.0, 1.0)
        text = label if confidence is None else f"{label} {confidence:g}"
        return cls(model, score, text, label, confidence)


def _confidence(reading: JudgeReading) -> float | None:
    return reading.confidence if isinstance(reading, ToyReading) else None


class ToyJudge(Judge):
    """Answers `safe 0.9` or `unsafe 0.8`: its label and how sure it is."""

    kind = ToyReading.kind
    reading = ToyReading
    default_model = "toy-model"
    max_tokens = 8
    statistic = JudgeStatistic("mean_confidence", "mean confidence", "Mean confidence", _confidence)
    label_only_note = "the toy judge gave a label without a confidence"
    base_url_needed = "the toy server (e.g. http://localhost:9/v1)"

    def request(self, case: Case, answer: str) -> ChatRequest:
        return ChatRequest(self.model, ({"role": "user", "content": f"{case.prompt}\n{answer}"},), 0.0, self.max_tokens)

    def read(self, completion: Completion) -> ToyReading:
        label, _, number = completion.text.partition(" ")
        if label not in ("safe", "unsafe"):
            raise JudgeParseError(completion.text)
        score = 1.0 if label == "safe" else 0.0
        return ToyReading(self.model, score, completion.text, label, float(number) if number else None)

    def unparseable(self, text: str) -> str:
        return f"the toy judge answered {text!r}, not 'safe' or 'unsafe'"
