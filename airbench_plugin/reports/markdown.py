"""A GitHub-flavoured Markdown summary of a run, short enough for a pull-request comment or a job summary.

The overall refusal score, the gate table and the level-2 table; nothing per prompt. Every string
that comes from the dataset, the model or the judge is escaped, so a model name cannot inject
Markdown, HTML or a table cell.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence

from airbench_plugin.calibration.stated import adjusted_text, calibration_text
from airbench_plugin.files import NotRegularFile, write_atomic
from airbench_plugin.leaderboard import ModelComparison
from airbench_plugin.reports.table import category_table, gate_numbers
from airbench_plugin.results import RunResults
from airbench_plugin.text import terminal_safe, valid_unicode
from airbench_plugin.wording import RATE_NAME, interval_text, plural, points_text, rate_text

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~^$])")
_AUTOLINK = re.compile(r"@\w|:/|(?i:www)\.")  # the character after which a zero-width space breaks the link
ZERO_WIDTH = "&#8203;"
CELL_LIMIT = 1_000  # characters of one name, reason, sentence or cell from outside
# GitHub drops a job summary over 1 MiB, verdict and all: ours stays well below, with what the
# step already wrote counted, and says what it cut.
STEP_SUMMARY_LIMIT = 1024 * 1024 - 64 * 1024
CUT_NOTE_ROOM = 256  # bytes kept for the line that says what was cut
_VERDICT = {"passed": "PASSED ✅", "failed": "FAILED ❌", "incomplete": "INCOMPLETE ⚠️"}


def escape(text: str, limit: int = CELL_LIMIT) -> str:
    """`text` as literal Markdown: one line of at most `limit` characters, HTML and Markdown
    punctuation neutralised, and nothing GitHub acts on: no @mention (a notification to whoever
    the name is), no autolinked URL, no bidirectional control (shown as `\\u202e`)."""
    flat = terminal_safe(" ".join(text.split()), one_line=True)
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    flat = _SPECIAL.sub(r"\\\1", flat)
    # A zero-width space (as an entity, so the source shows it) after `@`, in `://` and `www.`
    # breaks GitHub's mention and autolink patterns without changing what the reader sees.
    return _AUTOLINK.sub(lambda match: match[0][:-1] + ZERO_WIDTH + match[0][-1], flat)


def pct(value: float | None) -> str:
    return rate_text(value)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """A GFM table; `right` says which columns are numbers (right-aligned)."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---:" if r else "---" for r in right) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown_summary(run: RunResults) -> str:
    """The run as Markdown: a headline with the verdict, the gates, the level-2 categories."""
    summary = run.summary
    headline = f"### AIR-Bench 2024: {escape(run.model)}"
    if run.verdict is not None:
        # The run's verdict, the one its exit status follows, and who decided it.
        who = "release gates" if run.verdict.decided_by == "gates" else "tests"
        partial = ", on part of the plan" if run.verdict.partial else ""
        headline += f" — {_VERDICT[run.verdict.status]} ({who}{partial})"
    elif run.gates_status is not None:
        headline += f" — gates {_VERDICT[run.gates_status]}"
    interval = "" if summary.interval is None else f" {interval_text(summary.interval)}"
    lines = [
        headline,
        "",
        f"**{RATE_NAME.capitalize()} {pct(summary.refusal_rate)}**{interval} over {plural(summary.n, 'scored prompt')} "
        f"({summary.passed:,} passed, {summary.failed:,} failed, {plural(summary.errors, 'error')}); "
        f"judge {escape(run.judge_model)}.",
    ]
    if run.settings.shard is not None:
        lines[-1] += f" Shard {run.settings.shard} of the run."
    if run.judge_calibration is not None:
        stated = calibration_text(run.judge_calibration)
        if run.bias_adjusted is not None:
            stated += f"; {adjusted_text(run.bias_adjusted)}"
        lines += ["", f"{escape(stated[:1].upper() + stated[1:])}."]
    if run.verdict is not None and run.verdict.reasons:
        lines += ["", *(f"- {escape(reason)}" for reason in run.verdict.reasons)]
    if run.comparison is not None and run.comparison.overall_delta is not None:
        lines += [
            "",
            f"Against the baseline: overall {points_text(run.comparison.overall_delta)} over "
            f"{plural(run.comparison.shared_prompts, 'shared prompt')}, "
            f"{plural(len(run.comparison.flipped), 'prompt')} flipped from passed to failed.",
        ]
    if run.gates:
        lines += ["", "| gate | target | measured | threshold | result |", "| --- | --- | ---: | ---: | --- |"]
        for gate in run.gates:
            threshold, measured = gate_numbers(gate)
            result = "pass" if gate.passed else "**FAIL**"
            lines.append(f"| {gate.name} | {escape(gate.target)} | {measured} | {threshold} | {result} |")
    l2 = category_table(run)
    if l2.rows:
        rows = [tuple(escape(cell) for cell in cells) for cells in l2.cells()]
        lines += ["", *table(l2.header, rows, l2.numeric)]
    return "\n".join(lines) + "\n"


def write_markdown(text: str, path: str | os.PathLike[str]) -> None:
    """Write the summary, replacing the file whole (or leaving nothing when it cannot be written)."""
    write_atomic(path, valid_unicode(text))


def capped(text: str, room: int) -> str:
    """`text` in at most `room` bytes of UTF-8: whole lines from the top (the verdict first), then
    one line saying what was cut."""
    if len(text.encode("utf-8")) <= room:
        return text
    lines = text.rstrip("\n").split("\n")
    kept: list[str] = []
    used = 0
    for line in lines:
        size = len(line.encode("utf-8")) + 1
        if used + size > room - CUT_NOTE_ROOM:
            break
        kept.append(line)
        used += size
    cut = len(lines) - len(kept)
    kept += [
        "",
        f"*{plural(cut, 'line')} of this summary were cut: GitHub drops a job summary over 1 MiB. "
        "The run's --airbench-json and HTML report hold everything.*",
    ]
    return "\n".join(kept) + "\n"


def append_step_summary(text: str, environ: Mapping[str, str]) -> str | None:
    """Append to GitHub's job summary when `GITHUB_STEP_SUMMARY` names a file; returns its path.

    What the step already wrote there counts against GitHub's 1 MiB: the summary is `capped` to the rest.
    """
    path = environ.get(STEP_SUMMARY_ENV)
    if not path:
        return None
    try:
        written = os.stat(path).st_size if stat.S_ISREG(os.stat(path).st_mode) else 0
    except OSError:
        written = 0
    text = capped(text, max(STEP_SUMMARY_LIMIT - written, CUT_NOTE_ROOM * 4))
    # Opened without blocking and checked: a FIFO or a device there must not hang or swallow the run's end.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o644)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise NotRegularFile(path)
        data = (text + "\n").encode("utf-8")
        while data:
            data = data[os.write(descriptor, data) :]
    finally:
        os.close(descriptor)
    return path


def comparison_markdown(comparison: ModelComparison) -> str:
    """The model comparison as Markdown: overall and level-2 rates per model, over the shared prompts."""
    runs = comparison.runs
    l2 = comparison.categories["l2"]
    lines = [
        "### AIR-Bench 2024 comparison",
        "",
        f"{RATE_NAME.capitalize()}s over the **{comparison.shared_prompts:,}** prompts every run scored.",
        "",
    ]
    header = ["model", "overall", *(f"{c.key} {escape(c.name)}" for c in l2)]
    rows = [[escape(run.label), pct(run.overall), *(pct(run.rates["l2"].get(c.key)) for c in l2)] for run in runs]
    lines += table(header, rows, [False] + [True] * (len(header) - 1))
    if comparison.flipped is not None:
        regressed = sum(1 for flip in comparison.flipped if flip.regressed)
        lines += [
            "",
            f"{plural(len(comparison.flipped), 'shared prompt')} flipped: {regressed:,} passed with "
            f"{escape(runs[0].label)} and failed with {escape(runs[1].label)}, "
            f"{len(comparison.flipped) - regressed:,} the other way.",
        ]
    return "\n".join(lines) + "\n"


def publish_step_summary(run: RunResults, environ: Mapping[str, str]) -> list[str]:
    """Append the run's summary to GitHub's job summary, if there is one; one sentence if that fails."""
    try:
        append_step_summary(markdown_summary(run), environ)
    except OSError as exc:
        target = environ.get(STEP_SUMMARY_ENV)
        return [f"{STEP_SUMMARY_ENV}: could not append the summary to {target}: {exc.strerror or exc}"]
    return []
