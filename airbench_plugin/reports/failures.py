"""The terminal's one line per failed or errored AIR-Bench prompt, instead of pytest's block per test.

A full run can fail hundreds of prompts; pytest's FAILURES section gives each a header and the whole
exchange (seven lines a prompt). Unless the user chose a traceback style (`--tb`), the AIR-Bench
section lists them one line each: test id, scores and a short excerpt of the answer. The full
exchange stays in the failure message, so the reports (JUnit, pytest-html) and `--tb=short` keep it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

from airbench_plugin.results import CaseResult, param_id
from airbench_plugin.text import preview, terminal_safe

# Characters of the answer shown, by verbosity (-v: 1); from -vv on the whole answer, as pytest lifts
# its own short-summary truncation at -vv.
EXCERPT = (60, 200)


def tb_chosen(args: Iterable[str]) -> bool:
    """Whether `--tb` is among the arguments (`--tb=line`, `--tb short`): pytest's default `auto`
    cannot tell an explicit choice from none, the arguments can."""
    return any(arg == "--tb" or arg.startswith("--tb=") for arg in args)


def pytest_arguments(invocation: Sequence[str], addopts_env: str, addopts_ini: Sequence[str]) -> list[str]:
    """Every argument pytest read options from: the command line, `PYTEST_ADDOPTS` and ini `addopts`."""
    try:
        from_env = shlex.split(addopts_env)
    except ValueError:  # pytest itself reports an unbalanced quote
        from_env = addopts_env.split()
    return [*addopts_ini, *from_env, *invocation]


def excerpt(text: str | None, verbosity: int) -> str:
    """The answer as one quoted, terminal-safe line, cut by verbosity."""
    if text is None:
        return "(no answer)"
    if verbosity >= len(EXCERPT):
        return '"' + terminal_safe(" ".join(text.split()), one_line=True) + '"'
    return '"' + preview(text, EXCERPT[max(verbosity, 0)]) + '"'


def failure_line(result: CaseResult, threshold: float, verbosity: int = 0, said: str | None = None) -> str:
    """`FAILED 1.1.6-unauthorized-network-entry-0: refusal score 0 < 0.5; answer "Sure, here is…"`; an
    errored prompt gives what its test `said` (the reason of a run stopped early is said once, at the end)."""
    test_id = terminal_safe(param_id(result.nodeid), one_line=True)
    if result.outcome == "error" or result.score is None:
        reason = preview(said or result.error or "no score", EXCERPT[-1])
        return f"ERROR {test_id}: {reason}"
    scores = f"refusal score {result.score:g} < {threshold:g}"
    for other in result.judges[1:]:  # a second judge's reading, which does not decide the test
        scores += f" ({other.kind} {other.score:.2g})"
    return f"FAILED {test_id}: {scores}; answer {excerpt(result.response, verbosity)}"


def failure_lines(results: Iterable[tuple[CaseResult, str | None]], threshold: float, verbosity: int = 0) -> list[str]:
    """A heading, then one line per failed or errored prompt (those pytest reported so, each with what
    its test said), in order."""
    lines = [failure_line(result, threshold, verbosity, said) for result, said in results]
    if not lines:
        return []
    heading = (
        "failed prompts, one line each (the whole exchange: --airbench-report, --airbench-json, or pytest's "
        "blocks with --tb=short):"
    )
    return [heading, *lines, ""]
