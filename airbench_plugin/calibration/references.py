"""Answers another judge already scored, read for `airbench calibrate`: recognised by content.

Five shapes, each giving (prompt, answer, official refusal score) items:

- this plugin's `--airbench-json` file: every prompt its (airbench) judge scored; the document names
  that judge;
- the benchmark authors' pipeline-1 step-2 JSON (`score` per entry) and pipeline-2 step-2 CSV
  (`score` column): the official GPT-4o judgement, **on the refusal scale** (a refusal is 1.0);
- a HELM `air_bench_2024` run (`scenario_state.json` or its directory): the `air_bench_2024`
  annotation's raw score on its templates' scale, which is read from the filled judge prompts'
  rubric and converted as a run converts (`refusal_score`);
- a plain CSV or JSONL of `cate-idx, prompt, response, score` (refusal scale; `l2-name`, `l3-name`,
  `l4-name` optional): labels of any origin, people's included;
- with no file, the calibration set shipped in the package (`data/`).

Answers no judge saw (empty, refused by the provider, errored) are skipped and counted. Every
problem is a `ReferenceError` whose message is one sentence.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from airbench_plugin.csvcells import field_limit, restore
from airbench_plugin.dataset import Case, cate_sort_key
from airbench_plugin.decode import dig, loose_text
from airbench_plugin.judges.airbench import DEFAULT_MODEL, AirbenchJudge, read_scale, refusal_score
from airbench_plugin.results import ResultsError, RunResults
from airbench_plugin.text import valid_unicode

ReferenceFormat = Literal["airbench-json", "pipeline1", "pipeline2", "helm", "plain", "shipped"]
OFFICIAL_JUDGE = DEFAULT_MODEL  # gpt-4o-2024-05-13: the judge AIR-Bench 2024 was published with
HELM_STATE = "scenario_state.json"
HELM_ANNOTATION = "air_bench_2024"
SHIPPED = "data/official_gpt-4o-2024-05-13.jsonl"
SHIPPED_NAME = "the shipped calibration set"
PLAIN_COLUMNS = ("cate-idx", "prompt", "response", "score")
PIPELINE2_COLUMNS = ("cate-idx", "l2-name", "l3-name", "l4-name", "prompt", "response", "score")
SHAPES = (
    "an --airbench-json file, the authors' pipeline-1 step-2 JSON or pipeline-2 step-2 CSV, a HELM "
    "air_bench_2024 run (scenario_state.json), or a CSV/JSONL of cate-idx, prompt, response, score"
)


class ReferenceError(Exception):
    """A reference file that cannot be used; the message is one sentence for the user."""


@dataclass(frozen=True)
class ReferenceItem:
    """An answer the reference judge scored: the case, the answer and its official refusal score."""

    case: Case
    response: str
    official: float  # refusal scale: 1 = refused, 0 = assisted
    source: str
    where: str  # how to find it in its file, for messages and the report: "entry 3", "row 7"


@dataclass(frozen=True)
class Reference:
    """One reference input: its items, which judge scored them and what was left out."""

    source: str
    format: ReferenceFormat
    judge: str | None  # the reference judge's model; None for labels of unnamed origin (plain files)
    items: tuple[ReferenceItem, ...]
    skipped: int = 0  # answers no judge scored: empty, refused by the provider, errored

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "judge": self.judge,
            "items": len(self.items),
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class _Row:
    """One scored row before validation."""

    cate_idx: str
    names: tuple[str, str, str]  # level-2, -3 and -4 names ("" where the file has none)
    prompt: str
    response: str | None  # None: no answer a judge saw
    score: object  # as the file holds it: a number, a numeric string, or anything else
    where: str


def read_reference(path: str | Path | None) -> Reference:
    """The scored answers of a reference file, HELM run directory, or (None) the shipped set."""
    if path is None:
        text = resources.files("airbench_plugin.calibration").joinpath(SHIPPED).read_text(encoding="utf-8")
        rows = list(_plain_jsonl(text, SHIPPED_NAME))
        return _build(SHIPPED_NAME, "shipped", OFFICIAL_JUDGE, rows)
    source = str(path)
    target = Path(path)
    if target.is_dir():
        target = target / HELM_STATE
        if not target.is_file():
            raise ReferenceError(
                f"the directory {source!r} has no {HELM_STATE}; pass a HELM run directory of air_bench_2024 "
                "or a reference file."
            )
    try:
        text = target.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReferenceError(f"cannot read {source!r}: no such file or directory.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is not UTF-8 text"
        raise ReferenceError(f"cannot read {source!r}: {reason}.") from None
    return _parse(text, source)


def _unknown(source: str, detail: str = "") -> ReferenceError:
    because = f" ({detail})" if detail else ""
    return ReferenceError(f"{source!r} is in none of the known shapes{because}: use {SHAPES}.")


def _parse(text: str, source: str) -> Reference:
    """Recognise the shape of `text` and read its scored rows."""
    stripped = text.lstrip()
    if stripped[:1] == "{" and "\n" in stripped.strip() and _is_jsonl(stripped):
        return _build(source, "plain", None, list(_plain_jsonl(stripped, source)))
    if stripped[:1] in ("[", "{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise _unknown(source, f"invalid JSON at line {exc.lineno}") from None
        if isinstance(data, list) and data and isinstance(data[0], Mapping) and "cate_idx" in data[0]:
            return _build(source, "pipeline1", OFFICIAL_JUDGE, list(_pipeline1_rows(data, source)))
        if isinstance(data, Mapping) and isinstance(data.get("request_states"), list):
            return _helm(data["request_states"], source)
        if isinstance(data, Mapping) and isinstance(data.get("results"), list) and "summary" in data:
            return _airbench_json(data, source)
        if isinstance(data, Mapping) and "cate-idx" in data:  # a JSONL file of one line
            return _build(source, "plain", None, list(_plain_jsonl(stripped, source)))
        raise _unknown(source, "a JSON document of another kind")
    header = _csv_header(text)
    if header is not None and set(PLAIN_COLUMNS) <= set(header):
        shape: ReferenceFormat = "pipeline2" if set(PIPELINE2_COLUMNS) <= set(header) else "plain"
        with field_limit():  # as --airbench-responses reads CSV: no limit below a model's longest answer
            rows = list(_csv_rows(text))
        return _build(source, shape, OFFICIAL_JUDGE if shape == "pipeline2" else None, rows)
    if header is not None and {"cate-idx", "prompt"} <= set(header):
        missing = [column for column in PLAIN_COLUMNS if column not in header]
        raise ReferenceError(
            f"the CSV file {source!r} has no {', '.join(missing)} column: a reference needs "
            f"{', '.join(PLAIN_COLUMNS)} (the score on the refusal scale, 1 = refused)."
        )
    raise _unknown(source)


def _is_jsonl(text: str) -> bool:
    """Whether `text` is more than one JSON object, one per line (a JSON document is one value)."""
    first = text.split("\n", 1)[0].strip()
    try:
        return isinstance(json.loads(first), Mapping)
    except json.JSONDecodeError:
        return False


def _names(entry: Mapping[str, Any], *keys: str) -> tuple[str, str, str]:
    l2, l3, l4 = (loose_text(entry.get(key)) or "" for key in keys)
    return l2, l3, l4


def _plain_jsonl(text: str, source: str) -> Iterator[_Row]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise _unknown(source, f"{where} is not JSON") from None
        if not isinstance(entry, Mapping):
            raise _unknown(source, f"{where} is not an object")
        cate_idx = loose_text(entry.get("cate-idx", entry.get("cate_idx")))
        prompt = loose_text(entry.get("prompt"))
        if cate_idx is None or prompt is None or "score" not in entry or "response" not in entry:
            raise ReferenceError(
                f"{where} of {source!r} lacks one of {', '.join(PLAIN_COLUMNS)}: a reference line needs all four."
            )
        yield _Row(
            cate_idx.strip(),
            _names(entry, "l2-name", "l3-name", "l4-name"),
            prompt,
            loose_text(entry.get("response")),
            entry.get("score"),
            where,
        )


def _csv_header(text: str) -> list[str] | None:
    try:
        with field_limit():
            header = next(csv.reader(io.StringIO(text)), None)
    except csv.Error:
        return None
    return [column.strip() for column in header] if header else None


def _csv_rows(text: str) -> Iterator[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    reader.fieldnames = [name.strip() for name in reader.fieldnames or ()]
    for number, row in enumerate(reader, 1):
        response = row.get("response")
        yield _Row(  # cells `airbench export` neutralised for spreadsheets are read back as written
            restore(row.get("cate-idx") or "").strip(),
            (restore(row.get("l2-name") or ""), restore(row.get("l3-name") or ""), restore(row.get("l4-name") or "")),
            restore(row.get("prompt") or ""),
            restore(response, empty_marker=True) if response else None,  # blank: no answer (pandas writes both so)
            (row.get("score") or "").strip(),
            f"row {number}",
        )


def _pipeline1_rows(data: Sequence[Any], source: str) -> Iterator[_Row]:
    for number, entry in enumerate(data, 1):
        where = f"entry {number}"
        if not isinstance(entry, Mapping):
            raise _unknown(source, f"{where} is not an object")
        prompt = entry.get("prompt")
        # The authors keep the prompt as a chat turn list: [{"prompt": TEXT}].
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], Mapping):
            prompt = prompt[0].get("prompt")
        if "score" not in entry:
            raise ReferenceError(
                f"{where} of {source!r} has no 'score': pass the authors' step-2 file, which holds the judge's scores."
            )
        yield _Row(
            (loose_text(entry.get("cate_idx")) or "").strip(),
            _names(entry, "l2_name", "l3_name", "l4_name"),
            loose_text(prompt) or "",
            loose_text(entry.get("response")),
            entry.get("score"),
            where,
        )


def _helm(states: Sequence[Any], source: str) -> Reference:
    """A HELM run: the raw annotation scores, converted by the scale the filled judge prompts' rubric reads."""
    rows: list[_Row] = []
    rubrics: dict[str, str] = {}
    for number, state in enumerate(states, 1):
        instance_id = dig(state, "instance", "id")
        where = f"instance {instance_id}" if isinstance(instance_id, str) else f"request state {number}"
        references = [loose_text(dig(state, "instance", "references", i, "output", "text")) for i in range(4)]
        prompt = loose_text(dig(state, "request", "prompt")) or loose_text(dig(state, "instance", "input", "text"))
        if prompt is None or any(reference is None for reference in references):
            raise _unknown(source, f"{where} lacks the prompt, cate-idx or category names of air_bench_2024")
        cate_idx, l2_name, l3_name, l4_name = (str(reference) for reference in references)
        response = None
        if dig(state, "result", "success") is True:
            response = loose_text(dig(state, "result", "completions", 0, "text"))
        annotation = dig(state, "annotations", HELM_ANNOTATION)
        if response is not None and response.strip() and not isinstance(annotation, Mapping):
            raise ReferenceError(
                f"{where} of {source!r} has no {HELM_ANNOTATION} annotation: pass a HELM run whose answers were judged."
            )
        score = annotation.get("score") if isinstance(annotation, Mapping) else None
        filled = loose_text(annotation.get("prompt_text")) if isinstance(annotation, Mapping) else None
        if filled and response:
            # The rubric without the exchange: an answer may itself hold lines such as "# 1, ...".
            rubrics[where] = filled.replace(prompt, "").replace(response, "")
        rows.append(_Row(cate_idx.strip(), (l2_name, l3_name, l4_name), prompt, response, score, where))
    scale = read_scale(rubrics).scale
    if scale is None:
        raise ReferenceError(
            f"cannot read which way the judge prompts in {source!r} score (their rubrics do not say whether 1 "
            "means a refusal or assistance, or say both); convert the scores to the refusal scale and pass a "
            f"CSV of {', '.join(PLAIN_COLUMNS)}."
        )
    converted = [_Row(r.cate_idx, r.names, r.prompt, r.response, _converted(r.score, scale), r.where) for r in rows]
    return _build(source, "helm", OFFICIAL_JUDGE, converted)


def _converted(score: object, scale: str) -> object:
    """A raw HELM score on the refusal scale, when it is a number; anything else is left for validation."""
    if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
        return refusal_score(float(score), scale)
    return score


def _airbench_json(data: Mapping[str, Any], source: str) -> Reference:
    try:
        run = RunResults.from_json(data)
    except ResultsError as exc:
        raise ReferenceError(f"{source!r} is not a usable --airbench-json file: {exc}.") from None
    if run.settings.judge != AirbenchJudge.kind:
        raise ReferenceError(
            f"{source!r} was judged by {run.settings.judge}, not by the airbench judge: its scores are not "
            "AIR-Bench judgements."
        )
    rows = []
    for number, record in enumerate(run.records, 1):
        unjudged = not record.scored or record.refused_by_provider
        rows.append(
            _Row(
                record.cate_idx,
                (record.l2_name, record.l3_name, record.l4_name),
                record.prompt,
                None if unjudged else record.response,
                record.score,
                f"result {number}",
            )
        )
    return _build(source, "airbench-json", run.judge_model, rows)


def official_score(value: object) -> float | None:
    """A recorded score as one of 0, 0.5 and 1 (numbers or numeric text); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and float(value) in (0.0, 0.5, 1.0):
        return float(value)
    return None


def _build(source: str, fmt: ReferenceFormat, judge: str | None, rows: Sequence[_Row]) -> Reference:
    """Validate the rows into items, numbered per cate-idx in file order; raises ReferenceError."""
    items: list[ReferenceItem] = []
    seen: dict[str, int] = {}
    skipped = 0
    for row in rows:
        if not row.cate_idx or not row.prompt.strip():
            raise ReferenceError(f"{row.where} of {source!r} has no cate-idx or no prompt.")
        if row.response is None or not row.response.strip():
            skipped += 1  # no judge saw it: a run scores an empty answer 1.0 without asking one
            continue
        score = official_score(row.score)
        if score is None:
            raise ReferenceError(
                f"{row.where} of {source!r} (cate-idx {row.cate_idx}) has no score of 0, 0.5 or 1 on the refusal "
                "scale (1 = refused); a reference needs the judge's score for every answer."
            )
        ordinal = seen.get(row.cate_idx, 0)
        seen[row.cate_idx] = ordinal + 1
        l2_name, l3_name, l4_name = (valid_unicode(name) for name in row.names)
        case = Case(row.cate_idx, l2_name, l3_name, l4_name, valid_unicode(row.prompt), ordinal)
        items.append(ReferenceItem(case, valid_unicode(row.response), score, source, row.where))
    if not items:
        raise ReferenceError(f"{source!r} holds no answer a judge scored.")
    items.sort(key=lambda item: (cate_sort_key(item.case.cate_idx), item.case.ordinal))
    return Reference(source, fmt, judge, tuple(items), skipped)
