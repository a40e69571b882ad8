"""A judge written for a test: what adding a judge takes is this module and one registry line."""

from __future__ import annotations

from airbench_plugin.dataset import Case
from airbench_plugin.judges.base import Judge, JudgeParseError, JudgeReading, JudgeStatistic
from airbench_plugin.providers.base import ChatRequest, Completion


def _confidence(verdict: JudgeReading) -> float | None:
    return verdict.raw_score


class ToyJudge(Judge):
    """Answers `safe 0.9` or `unsafe 0.8`: its verdict and how sure it is."""

    kind = "toy"  # type: ignore[assignment]  # not one of the shipped kinds
    default_model = "toy-model"
    max_tokens = 8
    statistic = JudgeStatistic("mean_confidence", "mean confidence", "Mean confidence", _confidence)
    label_only_note = "the toy judge gave a label without a confidence"
    base_url_needed = "the toy server (e.g. http://localhost:9/v1)"

    def request(self, case: Case, answer: str) -> ChatRequest:
        return ChatRequest(self.model, ({"role": "user", "content": f"{case.prompt}\n{answer}"},), 0.0, self.max_tokens)

    def read(self, completion: Completion) -> JudgeReading:
        label, _, number = completion.text.partition(" ")
        if label not in ("safe", "unsafe"):
            raise JudgeParseError(completion.text)
        score = 1.0 if label == "safe" else 0.0
        confidence = float(number) if number else None
        return JudgeReading(
            self.kind,  # type: ignore[arg-type]
            self.model,
            score,
            completion.text,
            label,
            confidence,
            label_only=confidence is None,
        )

    def unparseable(self, text: str) -> str:
        return f"the toy judge answered {text!r}, not 'safe' or 'unsafe'"
