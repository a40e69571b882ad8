"""The terminal summary: overall refusal score, a table per level-2 category, judges, gates and tokens."""

from __future__ import annotations

from airbench_plugin.agreement import Agreement
from airbench_plugin.judges import DEFAULT_JUDGE
from airbench_plugin.reports.table import category_table, text_table
from airbench_plugin.results import RunResults, RunSettings, Tally, TokenCount
from airbench_plugin.stats import PairedDifference
from airbench_plugin.wording import RATE_NAME, interval_text, plural, points_text, rate_text


def _pct(value: float | None) -> str:
    return rate_text(value)


def _bar(interval: tuple[float, float] | None) -> str:
    """` [68.2, 85.4]` after a rate, or nothing when it has no interval."""
    return "" if interval is None else f" {interval_text(interval)}"


def overall_text(summary: Tally) -> str:
    """`refusal score 94.4% over 18 scored prompts (17 passed, 1 failed, 0 errors)`."""
    counts = f"{summary.passed:,} passed, {summary.failed:,} failed, {plural(summary.errors, 'error')}"
    if summary.n == 0:
        return f"no prompt was scored ({counts})"
    interval = "" if summary.interval is None else f" {interval_text(summary.interval)}"
    return f"{RATE_NAME} {_pct(summary.refusal_rate)}{interval} over {plural(summary.n, 'scored prompt')} ({counts})"


def tokens_text(count: TokenCount) -> str:
    """`1,234 prompt + 567 completion`, saying which part was read from the cache (paid by an earlier run)."""
    text = f"{count.prompt_tokens:,} prompt + {count.completion_tokens:,} completion"
    cached = (count.cached_prompt_tokens, count.cached_completion_tokens)
    if cached == (0, 0):
        return text
    if cached == (count.prompt_tokens, count.completion_tokens):
        return f"{text} (all from cache)"
    return f"{text} ({cached[0]:,} + {cached[1]:,} from cache)"


def token_parts(run: RunResults) -> list[tuple[str, str]]:
    """Who spent what: the model under test (none in a judge-only run) and each judge on its own."""
    parts = [] if run.settings.judge_only else [("model under test", tokens_text(run.usage["target"]))]
    if len(run.judges) == 1:
        return [*parts, ("judge", tokens_text(run.usage["judge"]))]
    for index, (kind, judge) in enumerate(run.judges.items()):
        parts.append((f"{'judge' if index == 0 else 'second judge'} {kind}", tokens_text(judge.usage)))
    return parts


def _kappa(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def judge_lines(run: RunResults) -> list[str]:
    """Each judge's figures, the judges' notes, and the judges' agreement."""
    lines: list[str] = []
    if len(run.judges) > 1 or any(kind != DEFAULT_JUDGE for kind in run.judges):
        lines.append("")
        for index, (kind, judge) in enumerate(run.judges.items()):
            role = "judge" if index == 0 else "second judge"
            line = (
                f"{role} {kind} ({judge.model}): {RATE_NAME} {_pct(judge.refusal_rate)}"
                f"{_bar(judge.interval)} over {judge.n} prompts"
            )
            for statistic in (s for k, s in run.statistics if k == kind):
                value = judge.figures.get(statistic.key)
                line += f", {statistic.label} {'-' if value is None else f'{value:.4f}'}"
            lines.append(line)
    lines += [f"note: {note}" for note in run.judge_notes]
    if run.agreement is not None:
        lines += agreement_lines(run.agreement)
    return lines


def agreement_lines(agreement: Agreement) -> list[str]:
    """The agreement of two judges, overall and per level-2 category."""
    first, second = agreement.judges
    c = agreement.confusion
    lines = [
        "",
        f"judge agreement {first} vs {second} (pass = refusal score >= {agreement.threshold:g}): "
        f"{_pct(c.agreement_rate)}{_bar(c.interval(agreement.z))} over {c.n} prompts, Cohen's kappa "
        f"{_kappa(c.cohen_kappa)}; "
        f"both pass {c.both_pass}, both fail {c.both_fail}, only {first} passes {c.first_only_pass}, "
        f"only {second} passes {c.second_only_pass}",
    ]
    rows = [
        (key, category.name, str(category.confusion.n), _pct(category.confusion.agreement_rate),
         interval_text(category.confusion.interval(agreement.z)), _kappa(category.confusion.cohen_kappa))
        for key, category in agreement.l2.items()
    ]  # fmt: skip
    header = ("l2", "category", "n", "agree", "interval", "kappa")
    lines += ["  " + line for line in text_table(header, rows, (True, False, True, True, True, True))]
    return lines


def gates_heading(run: RunResults) -> str:
    """The gates' own status, saying on the same line whether it is the one the exit status follows:
    without a refusal-rate gate the tests decide, and `gates: PASSED` must not read as the run's."""
    heading = f"gates: {(run.gates_status or '').upper()}"
    if run.verdict is None:
        return heading
    if run.verdict.decided_by == "gates":
        return f"{heading} (the release gates decide the exit status)"
    return f"{heading} (no refusal-rate gate is set, so the AIR-Bench tests decide the exit status: see the last line)"


def difference_text(difference: PairedDifference | None) -> str:
    """A paired change's interval, shared prompts and p-value: ` [-49.3, +16.0] over 18 shared prompts (p = 0.32)`."""
    if difference is None or difference.ci_low is None or difference.ci_high is None or difference.p_value is None:
        return ""
    interval = f"[{difference.ci_low * 100:+.1f}, {difference.ci_high * 100:+.1f}]"
    p_value = "p < 0.001" if difference.p_value < 0.001 else f"p = {difference.p_value:.2g}"
    return f" {interval} over {plural(difference.shared, 'shared prompt')} ({p_value})"


def summary_lines(run: RunResults) -> list[str]:
    """Plain-text lines for the end of the pytest run."""
    # A batch run scores as a normal run; the reader still learns where the answers came from.
    batch = "  (calls sent as Batch-API batches)" if run.settings.other.get("batch") is True else ""
    lines = [f"model {run.model}  judge {run.judge_model}  {overall_text(run.summary)}{batch}", ""]
    table = category_table(run)
    lines += text_table(table.header, table.cells(), table.numeric)
    lines += judge_lines(run)
    baseline = run.comparison
    if baseline is not None and baseline.overall_delta is not None:
        flipped = len(baseline.flipped)
        lines += [
            "",
            f"against baseline {baseline.source}: overall {points_text(baseline.overall_delta)}"
            f"{difference_text(baseline.difference)}, {plural(flipped, 'prompt')} flipped from passed to failed",
        ]
    if run.gates and run.gates_status is not None:
        lines += ["", gates_heading(run)]
        for gate in run.gates:
            mark = "PASS" if gate.passed else "FAIL"
            lines.append(f"  [{mark}] {gate.name}: {gate.detail}")
            if gate.warning is not None:
                lines.append(f"  warning: {gate.warning}")
    lines += ["", "tokens: " + "; ".join(f"{who} {text}" for who, text in token_parts(run))]
    return lines


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def rule_text(settings: RunSettings) -> str:
    """Which rule the gates judged by: `by estimate`, `by interval at 95 %`."""
    if settings.gate_by == "estimate":
        return "by estimate"
    return f"by interval at {settings.confidence * 100:g} %"


def verdict_lines(run: RunResults) -> list[str]:
    """The run's last lines: why, when it is not a plain pass, then which verdict decides the exit status.

    For example `15 prompts below the threshold; release gates PASSED (exit 0)`.
    """
    verdict = run.verdict
    if verdict is None:
        return []
    summary = run.summary
    prompts = f"{_plural(summary.failed, 'prompt')} below the threshold"
    if summary.errors:
        prompts += f", {summary.errors:,} errored"
    who = "release gates" if verdict.decided_by == "gates" else "AIR-Bench tests"
    partial = " on part of the plan" if verdict.partial else ""
    if verdict.decided_by == "gates" and verdict.status != "incomplete":
        partial += f" {rule_text(run.settings)}"
    lines = ["", *verdict.reasons]
    if verdict.decided_by == "gates" and verdict.status == "passed" and summary.failed:
        lines.append(
            "The release gates decide the exit status; the prompts below the threshold stay failed tests "
            "in the test report and JUnit."
        )
    lines.append(f"{prompts}; {who} {verdict.status.upper()}{partial} (exit {verdict.exit_status})")
    return lines
