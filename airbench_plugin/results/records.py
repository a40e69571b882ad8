"""One prompt's record (`CaseResult`) and its JSON codec; the category keys of the taxonomy."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from airbench_plugin import decode
from airbench_plugin.dataset import cate_sort_key, is_cate_idx
from airbench_plugin.decode import DecodeError
from airbench_plugin.judges import JudgeReading, reading_from_json

Level = Literal["l2", "l3", "l4"]
Outcome = Literal["passed", "failed", "error"]
LEVELS: tuple[Level, ...] = get_args(Level)
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
_DEPTH: dict[Level, int] = {"l2": 1, "l3": 2, "l4": 3}


ResultsError = DecodeError  # a document this version cannot read; the message says why in one clause


def level_key(cate_idx: str, level: Level) -> str:
    """The category key of `cate_idx` at `level`: `14.3940.21` is `14` at l2 and `14.3940` at l3."""
    return ".".join(cate_idx.split(".")[: _DEPTH[level]])


@dataclass(frozen=True)
class CaseResult:
    """What happened to one prompt: the exchange, the judgement and the test outcome."""

    nodeid: str
    cate_idx: str
    l2_name: str
    l3_name: str
    l4_name: str
    prompt: str
    response: str | None
    judge_reasoning: str | None
    judge_raw: str | None
    score: float | None
    outcome: Outcome
    error: str | None = None
    refused_by_provider: bool = False
    target_tokens: tuple[int, int] = (0, 0)  # what the answer cost, also when read from the cache
    judge_tokens: tuple[int, int] = (0, 0)
    judges: tuple[JudgeReading, ...] = ()  # one entry per judge that scored the answer, first judge first
    target_cached: bool = False  # the answer came from the response cache: paid by an earlier run
    judge_cached: bool = False  # every judgement came from the response cache

    def key(self, level: Level) -> str:
        """This result's category key at `level`."""
        return level_key(self.cate_idx, level)

    def name(self, level: Level) -> str:
        return {"l2": self.l2_name, "l3": self.l3_name, "l4": self.l4_name}[level]

    @property
    def scored(self) -> bool:
        """Whether this result counts in the rates (it has a score and did not error)."""
        return self.outcome != "error" and self.score is not None

    def judge(self, kind: str) -> JudgeReading | None:
        """The reading of the judge of `kind`, when that judge scored this answer."""
        return next((entry for entry in self.judges if entry.kind == kind), None)

    def to_json(self) -> dict[str, Any]:
        # Field by field, not `dataclasses.asdict`, whose deep copies cost 0.1 ms per result.
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["target_tokens"] = list(self.target_tokens)
        data["judge_tokens"] = list(self.judge_tokens)
        data["judges"] = {entry.kind: entry.to_json() for entry in self.judges}
        return data

    @classmethod
    def from_json(cls, data: object, where: str = "result") -> CaseResult:
        """A record as `to_json` wrote it; raises ResultsError naming the first bad field."""
        raw = decode.obj(data, where)

        def get(name: str) -> object:
            if name not in raw:
                raise ResultsError(f"{where} has no {name!r} field")
            return raw[name]

        return cls(
            nodeid=decode.text(get("nodeid"), f"{where}.nodeid"),
            cate_idx=read_cate_idx(get("cate_idx"), f"{where}.cate_idx"),
            l2_name=decode.text(get("l2_name"), f"{where}.l2_name"),
            l3_name=decode.text(get("l3_name"), f"{where}.l3_name"),
            l4_name=decode.text(get("l4_name"), f"{where}.l4_name"),
            prompt=decode.text(get("prompt"), f"{where}.prompt"),
            response=decode.opt_text(raw.get("response"), f"{where}.response"),
            judge_reasoning=decode.opt_text(raw.get("judge_reasoning"), f"{where}.judge_reasoning"),
            judge_raw=decode.opt_text(raw.get("judge_raw"), f"{where}.judge_raw"),
            score=decode.opt_number(raw.get("score"), f"{where}.score", 0.0, 1.0),
            outcome=decode.choice(get("outcome"), f"{where}.outcome", OUTCOMES),
            error=decode.opt_text(raw.get("error"), f"{where}.error"),
            refused_by_provider=decode.boolean(raw.get("refused_by_provider", False), f"{where}.refused_by_provider"),
            target_tokens=_token_pair(raw.get("target_tokens", [0, 0]), f"{where}.target_tokens"),
            judge_tokens=_token_pair(raw.get("judge_tokens", [0, 0]), f"{where}.judge_tokens"),
            judges=tuple(
                reading_from_json(kind, entry, f"{where}.judges.{kind}")
                for kind, entry in decode.obj(raw.get("judges", {}), f"{where}.judges").items()
            ),
            target_cached=decode.boolean(raw.get("target_cached", False), f"{where}.target_cached"),
            judge_cached=decode.boolean(raw.get("judge_cached", False), f"{where}.judge_cached"),
        )


def read_cate_idx(value: object, where: str) -> str:
    cate = decode.text(value, where)
    if not is_cate_idx(cate):  # the loader's rule, so what a run planned always decodes
        raise ResultsError(f"{where} is not a cate-idx such as '14.3940.21'")
    return cate


def _token_pair(value: object, where: str) -> tuple[int, int]:
    items = decode.array(value, where)
    if len(items) != 2:
        raise ResultsError(f"{where} is not a pair [prompt_tokens, completion_tokens]")
    return decode.integer(items[0], f"{where}[0]"), decode.integer(items[1], f"{where}[1]")


def order_results(results: Iterable[CaseResult]) -> list[CaseResult]:
    """Results in taxonomy order, then by node id: the same order with or without xdist."""
    return sorted(results, key=lambda r: (cate_sort_key(r.cate_idx), r.nodeid))
