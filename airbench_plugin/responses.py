"""Recorded answers from elsewhere, for judge-only runs (`--airbench-responses`).

Four shapes are recognised by their content, never by the file name:

- the benchmark authors' pipeline 1 JSON: a list of `{"cate_idx", "l2_name", "l3_name", "l4_name",
  "prompt": [{"prompt": TEXT}], "response"}` (their step-2 file adds `"reason"` and `"score"`);
- their pipeline 2 CSV: columns `cate-idx, l2-name, l3-name, l4-name, prompt, response` (step 2
  adds `score_reason, score`);
- a HELM run directory of `air_bench_2024` (its `scenario_state.json`);
- this plugin's own `--airbench-json` file.

Recorded scores are not read here: re-judging is the point (the authors' step-2 scores are the
official judgement on the refusal scale, a refusal 1.0; `calibration.references` reads them).
Every problem is a `ResponsesError` whose message is one sentence.

A file is data, not trust. Every answer must be a string (a number or NaN where an answer belongs
is refused, not judged as the text "nan"). A row repeated with the same cate-idx, prompt and
answer is one prompt: files concatenated from resumed runs repeat rows, and counting a repeat as
another prompt would weigh that answer twice (30 copies of a refusal can pass a failing gate);
a repeat with another answer is refused, since only one of the answers can be the model's. CSV
cells are read through `csvcells` (the formula prefix `airbench export` adds is removed, an
empty answer `'` is empty) with fields of up to `csvcells.FIELD_LIMIT` characters.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from airbench_plugin import decode
from airbench_plugin.csvcells import FIELD_LIMIT, field_limit, restore
from airbench_plugin.dataset import Case, cate_sort_key, first_bad_cate_idx, is_cate_idx
from airbench_plugin.decode import dig, loose_text
from airbench_plugin.files import read_regular_text
from airbench_plugin.results import ResultsError, RunResults

ResponsesFormat = Literal["pipeline1", "pipeline2", "helm", "airbench-json"]
HELM_STATE = "scenario_state.json"
PIPELINE2_COLUMNS = ("cate-idx", "l2-name", "l3-name", "l4-name", "prompt", "response")
PIPELINE1_KEYS = ("cate_idx", "l2_name", "l3_name", "l4_name", "prompt", "response")
SHAPES = (
    "the authors' pipeline-1 JSON, their pipeline-2 CSV, a HELM air_bench_2024 run directory "
    "(with scenario_state.json) or a file written by --airbench-json"
)


class ResponsesError(Exception):
    """A responses file that cannot be used; the message is one sentence for the user."""


@dataclass(frozen=True)
class RecordedRow:
    """One prompt of a responses file with its answer, before validation."""

    cate_idx: str
    l2_name: str
    l3_name: str
    l4_name: str
    prompt: str
    response: str | None  # None: the file has no answer for this prompt
    where: str  # how to find it in the file, for messages: "entry 3", "row 7", "instance id1977"


@dataclass(frozen=True)
class RecordedAnswers:
    """The prompts of a responses file, in taxonomy order, and the answer recorded for each."""

    source: str
    format: ResponsesFormat
    model: str | None  # the model the file names, if it names one
    cases: tuple[Case, ...]
    answers: Mapping[str, str] = field(repr=False)  # by prompt text
    repeated: int = 0  # rows that repeated an earlier row (same cate-idx, prompt, answer): read once

    def answer(self, prompt: str) -> str:
        return self.answers[prompt]


def read_responses(path: str | Path) -> RecordedAnswers:
    """The cases and answers of a responses file or HELM run directory; raises ResponsesError."""
    source = str(path)
    target = Path(path)
    if target.is_dir():
        state = target / HELM_STATE
        if not state.is_file():
            raise ResponsesError(
                f"--airbench-responses: the directory {source!r} has no {HELM_STATE}; "
                "pass a HELM run directory of air_bench_2024 or a responses file."
            )
        target = state
    try:
        text = read_regular_text(target, encoding="utf-8-sig")
    except FileNotFoundError:
        raise ResponsesError(f"--airbench-responses: cannot read {source!r}: no such file or directory.") from None
    except (OSError, UnicodeDecodeError) as exc:  # a device or a FIFO too: never read, never waited on
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is not UTF-8 text"
        raise ResponsesError(f"--airbench-responses: cannot read {source!r}: {reason}.") from None
    fmt, model, rows = _parse(text, source)
    return _build(source, fmt, model, rows)


def _unknown(source: str, detail: str = "") -> ResponsesError:
    because = f" ({detail})" if detail else ""
    return ResponsesError(f"--airbench-responses: {source!r} is in none of the known shapes{because}: use {SHAPES}.")


def _parse(text: str, source: str) -> tuple[ResponsesFormat, str | None, list[RecordedRow]]:
    """Recognise the shape of `text` and read its rows."""
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise _unknown(source, f"invalid JSON at line {exc.lineno}") from None
        if isinstance(data, list) and data and isinstance(data[0], Mapping) and "cate_idx" in data[0]:
            return "pipeline1", None, list(_pipeline1_rows(data, source))
        if isinstance(data, Mapping) and isinstance(data.get("request_states"), list):
            return "helm", _helm_model(data), list(_helm_rows(data["request_states"], source))
        if isinstance(data, Mapping) and isinstance(data.get("results"), list) and "summary" in data:
            rows = list(_airbench_rows(data, source))
            model = data.get("model")
            return "airbench-json", model if isinstance(model, str) and model else None, rows
        raise _unknown(source, "a JSON document of another kind")
    header = _csv_header(text)
    if header is not None and {"cate-idx", "prompt"} <= set(header):
        missing = [column for column in PIPELINE2_COLUMNS if column not in header]
        if missing:
            raise ResponsesError(
                f"--airbench-responses: the CSV file {source!r} lacks the column(s) {', '.join(missing)} "
                f"of the authors' pipeline-2 format ({', '.join(PIPELINE2_COLUMNS)})."
            )
        with field_limit():
            try:
                return "pipeline2", None, list(_pipeline2_rows(text))
            except csv.Error as exc:
                raise ResponsesError(
                    f"--airbench-responses: {source!r} cannot be read as CSV ({exc}); an answer may hold at most "
                    f"{FIELD_LIMIT:,} characters."
                ) from None
    raise _unknown(source)


def _answer(value: Any, source: str, where: str) -> str | None:
    """A recorded answer: a string, or None when the file has none; anything else is refused."""
    if value is None or isinstance(value, str):
        return value
    raise ResponsesError(
        f"--airbench-responses: {where} of {source!r} has an answer that is {decode.describe(value)}, not text; "
        "every answer must be a string."
    )


def _field(entry: Mapping[str, Any], key: str, source: str, where: str) -> str:
    value = loose_text(entry.get(key))
    if value is None:
        raise ResponsesError(f"--airbench-responses: {where} of {source!r} has no {key!r} text.")
    return value


def _pipeline1_rows(data: Sequence[Any], source: str) -> Iterator[RecordedRow]:
    for number, entry in enumerate(data, 1):
        where = f"entry {number}"
        if not isinstance(entry, Mapping):
            raise _unknown(source, f"{where} is not an object")
        prompt = entry.get("prompt")
        # The authors keep the prompt as a chat turn list: [{"prompt": TEXT}].
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], Mapping):
            prompt = prompt[0].get("prompt")
        if loose_text(prompt) is None:
            raise ResponsesError(f"--airbench-responses: {where} of {source!r} has no prompt text.")
        yield RecordedRow(
            cate_idx=_field(entry, "cate_idx", source, where),
            l2_name=_field(entry, "l2_name", source, where),
            l3_name=_field(entry, "l3_name", source, where),
            l4_name=_field(entry, "l4_name", source, where),
            prompt=str(prompt),
            response=_answer(entry.get("response"), source, where),
            where=where,
        )


def _csv_header(text: str) -> list[str] | None:
    try:
        with field_limit():
            header = next(csv.reader(io.StringIO(text)), None)
    except csv.Error:
        return None
    return [column.strip() for column in header] if header else None


def _pipeline2_rows(text: str) -> Iterator[RecordedRow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    reader.fieldnames = [name.strip() for name in reader.fieldnames or ()]
    for number, row in enumerate(reader, 1):
        response = row.get("response")
        yield RecordedRow(
            cate_idx=restore(row.get("cate-idx") or "").strip(),
            l2_name=restore(row.get("l2-name") or ""),
            l3_name=restore(row.get("l3-name") or ""),
            l4_name=restore(row.get("l4-name") or ""),
            prompt=restore(row.get("prompt") or ""),
            # A CSV cannot tell an empty answer from a missing one (pandas writes both as an empty
            # cell): a blank cell is a missing answer, never a silent refusal. `airbench export`
            # writes an empty answer as `'`.
            response=restore(response, empty_marker=True) if response else None,
            where=f"row {number}",
        )


def _helm_model(data: Mapping[str, Any]) -> str | None:
    spec = data.get("adapter_spec")
    model = spec.get("model") if isinstance(spec, Mapping) else None
    return model if isinstance(model, str) else None


def _helm_rows(states: Sequence[Any], source: str) -> Iterator[RecordedRow]:
    for number, state in enumerate(states, 1):
        instance_id = dig(state, "instance", "id")
        where = f"instance {instance_id}" if isinstance(instance_id, str) else f"request state {number}"
        # air_bench_2024 instances carry cate-idx, then the level-2, -3 and -4 names, as references.
        references = [loose_text(dig(state, "instance", "references", i, "output", "text")) for i in range(4)]
        prompt = loose_text(dig(state, "request", "prompt"))
        if prompt is None:
            prompt = loose_text(dig(state, "instance", "input", "text"))
        if prompt is None or any(reference is None for reference in references):
            raise _unknown(source, f"{where} lacks the prompt, cate-idx or category names of air_bench_2024")
        cate_idx, l2_name, l3_name, l4_name = (str(reference) for reference in references)
        response = None
        if dig(state, "result", "success") is True:
            response = _answer(dig(state, "result", "completions", 0, "text"), source, where)
        yield RecordedRow(cate_idx.strip(), l2_name, l3_name, l4_name, prompt, response, where)


def _airbench_rows(data: Mapping[str, Any], source: str) -> Iterator[RecordedRow]:
    try:
        run = RunResults.from_json(data)
    except ResultsError as exc:
        raise ResponsesError(f"--airbench-responses: {source!r} is not a usable --airbench-json file: {exc}.") from None
    for number, record in enumerate(run.records, 1):
        where = f"result {number} ({record.nodeid})"
        yield RecordedRow(
            record.cate_idx, record.l2_name, record.l3_name, record.l4_name, record.prompt, record.response, where
        )


def _build(source: str, fmt: ResponsesFormat, model: str | None, rows: Iterable[RecordedRow]) -> RecordedAnswers:
    """Validate the rows and number them into cases; raises ResponsesError."""
    answers: dict[str, str] = {}
    seen: dict[str, int] = defaultdict(int)
    rows_seen: set[tuple[str, str]] = set()
    repeated = 0
    cases = []
    for row in rows:
        if not row.cate_idx or not row.prompt.strip():
            raise ResponsesError(f"--airbench-responses: {row.where} of {source!r} has no cate-idx or no prompt.")
        if not is_cate_idx(row.cate_idx):
            shown = first_bad_cate_idx([row.cate_idx])
            assert shown is not None
            raise ResponsesError(
                f"--airbench-responses: {row.where} of {source!r} has the cate-idx {shown[1]!r}, not one to three "
                "numbers joined by dots such as 14.3940.21."
            )
        if row.response is None:
            raise ResponsesError(
                f"--airbench-responses: {row.where} of {source!r} (cate-idx {row.cate_idx}) has no answer; "
                "every prompt needs its recorded response."
            )
        if answers.get(row.prompt, row.response) != row.response:
            raise ResponsesError(
                f"--airbench-responses: the prompt of {row.where} of {source!r} (cate-idx {row.cate_idx}) "
                "appears earlier with another answer; keep one answer per prompt."
            )
        answers[row.prompt] = row.response
        if (row.cate_idx, row.prompt) in rows_seen:
            repeated += 1  # the same row again: one prompt, one answer (see the module's docstring)
            continue
        rows_seen.add((row.cate_idx, row.prompt))
        cases.append(Case(row.cate_idx, row.l2_name, row.l3_name, row.l4_name, row.prompt, seen[row.cate_idx]))
        seen[row.cate_idx] += 1
    if not cases:
        raise ResponsesError(f"--airbench-responses: {source!r} holds no prompts.")
    ordered = sorted(cases, key=lambda case: (cate_sort_key(case.cate_idx), case.ordinal))
    return RecordedAnswers(source, fmt, model, tuple(ordered), answers, repeated)
