"""The `airbench` command: merge shards, export to the authors' formats, compare models, download the dataset,
calibrate a judge.

A thin argparse front over the typed results (`results.RunResults`), like `pytest-benchmark
compare`: every command reads `--airbench-json` files with `load_results`, and the work is done by
plain functions (`merge`, `export`, `leaderboard`, `reports`, `calibration`). Bad input is one line
on stderr and exit status 2; `merge` and `calibrate` otherwise exit with their verdict (0 met, 1 not).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from airbench_plugin import __version__
from airbench_plugin.dataset import DatasetError
from airbench_plugin.endpoints import REASONING_EFFORTS
from airbench_plugin.export import EXPORT_FORMATS, write_export
from airbench_plugin.gates import BaselineError, GateSettings, load_baseline
from airbench_plugin.github import fork_pull_request
from airbench_plugin.judges import DEFAULT_JUDGE
from airbench_plugin.leaderboard import CompareError, compare_runs
from airbench_plugin.merge import MergeError, MergeOptions, RunFile, merge_runs, merged_exit_status
from airbench_plugin.options import (
    DEFAULT_DATASET,
    HELM_REVISION,
    HF_REPO,
    JUDGE_SCALES,
    OPERATIONAL_SETTINGS,
    PROVIDERS,
    REGIONS,
    judge_endpoint,
    parse_category_gates,
    parse_confidence,
    parse_count,
    parse_env_name,
    parse_fraction,
    parse_positive_int,
    parse_seconds,
    parse_text,
    parse_url,
)
from airbench_plugin.reports import write_outputs
from airbench_plugin.reports.markdown import (
    comparison_markdown,
    publish_step_summary,
    write_markdown,
)
from airbench_plugin.reports.terminal import summary_lines, verdict_lines
from airbench_plugin.results import GATE_BY, ResultsError, load_results
from airbench_plugin.stats import DEFAULT_CONFIDENCE
from airbench_plugin.text import terminal_safe
from airbench_plugin.wording import RATE_NAME, interval_text, plural, points_text, rate_text

if TYPE_CHECKING:
    from airbench_plugin.calibration.command import CalibrateOptions

USAGE_ERROR = 2


class CliError(Exception):
    """Input the command cannot use; the message is one sentence for the user."""


class _Parser(argparse.ArgumentParser):
    """argparse, with every usage error as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _validated(parse: Callable[[str, str], Any], name: str, raw: str | None) -> Any:
    """A gate option checked by the plugin's own validator, named as this command spells it."""
    if raw is None:
        return None
    try:
        return parse(name, raw)
    except pytest.UsageError as exc:
        raise CliError(str(exc).replace("--airbench-", "--", 1)) from None


def read_run(path: str) -> RunFile:
    """One `--airbench-json` file; raises CliError with one sentence."""
    try:
        return RunFile(path, load_results(path))
    except ResultsError as exc:
        raise CliError(f"{path!r} is not a usable --airbench-json file: {exc}.") from None


# --- merge ----------------------------------------------------------------------------------------


def merge_options(args: argparse.Namespace) -> MergeOptions:
    """The command's options: its gates, each checked by the plugin's own validator, as one `GateSettings`."""
    given = GateSettings(
        min_refusal_rate=_validated(parse_fraction, "min-refusal-rate", args.min_refusal_rate),
        category_gates=_validated(parse_category_gates, "category-gates", args.category_gates) or (),
        max_error_rate=_validated(parse_fraction, "max-error-rate", args.max_error_rate),
        baseline=args.baseline,
        max_regression=_validated(parse_fraction, "max-regression", args.max_regression),
        min_judge_agreement=_validated(parse_fraction, "min-judge-agreement", args.min_judge_agreement),
        confidence=_validated(parse_confidence, "confidence", args.confidence) or DEFAULT_CONFIDENCE,
        gate_by=args.gate_by or "estimate",
        allow_partial=args.allow_partial,
    )
    if given.max_regression is not None and given.baseline is None:
        raise CliError("--max-regression needs --baseline PATH (a previous --airbench-json file).")
    return MergeOptions(
        operational=OPERATIONAL_SETTINGS,
        gates=given,
        # Not given: the merged run keeps the shards' own.
        from_shards=frozenset(name for name in ("confidence", "gate_by") if getattr(args, name) is None),
        json=args.json,
        report=args.report,
        junit_dir=args.junit_dir,
        markdown=args.markdown,
        no_step_summary=args.no_step_summary,
    )


def no_shard_message(pattern: str, environ: Mapping[str, str]) -> str:
    """Why `pattern` (a shell glob the shell passed on unmatched) names no file: no shard wrote its results."""
    said = (
        f"no shard's results to merge: no file matches {pattern!r} (a shell passes a pattern that matches "
        "nothing as it is), so no shard ran to its end"
    )
    fork = fork_pull_request(environ)
    if fork is not None:
        return (
            f"{said}: this is a pull request from the fork {fork}, and GitHub gives its runs no secrets, so every "
            "shard skipped for want of an API key; run the workflow on a branch of this repository to gate it."
        )
    return f"{said}; see the shard jobs' logs (a shard without an API key skips)."


def run_merge(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    options = merge_options(args)
    unmatched = [path for path in args.files if glob.has_magic(path) and not os.path.exists(path)]
    if unmatched and len(unmatched) == len(args.files):
        raise CliError(no_shard_message(unmatched[0], environ))
    files = [read_run(path) for path in args.files]
    baseline = None
    if options.gates.baseline is not None:
        try:
            baseline = load_baseline(options.gates.baseline)
        except BaselineError as exc:
            raise CliError(str(exc)) from None
    try:
        merged = merge_runs(files, options, baseline)
    except MergeError as exc:
        raise CliError(str(exc)) from None
    failures = write_outputs(merged.run, options.outputs(), prefix="--")
    if not options.no_step_summary:
        failures += publish_step_summary(merged.run, environ)
    print(f"merged {plural(len(files), 'file')}: {plural(len(merged.run.records), 'prompt')}")
    if merged.missing:
        were = "was" if merged.missing == 1 else "were"
        print(f"partial: {plural(merged.missing, 'planned prompt')} {were} run by no file (--allow-partial)")
    for line in (*summary_lines(merged.run), *verdict_lines(merged.run)):
        print(line)
    for failure in failures:
        print(f"ERROR: {failure}", file=sys.stderr)
    return merged_exit_status(merged, failures)


# --- export and compare ---------------------------------------------------------------------------


def run_export(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    run = read_run(args.file).run
    try:
        write_export(run, args.to, args.output)
    except OSError as exc:
        raise CliError(f"-o: could not write {args.output}: {exc.strerror or exc}.") from None
    print(f"wrote {len(run.records):,} prompts of {run.model} to {args.output} ({args.to}, refusal scale)")
    return 0


def run_compare(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if not args.report and not args.markdown:
        raise CliError("nothing to write: pass --report OUT.html, --markdown OUT.md or both.")
    files = [read_run(path) for path in args.files]
    try:
        confidence = _validated(parse_confidence, "confidence", args.confidence)
        comparison = compare_runs([(f.path, f.run) for f in files], confidence or DEFAULT_CONFIDENCE)
    except CompareError as exc:
        raise CliError(str(exc)) from None
    from airbench_plugin.reports.compare import write_compare

    outputs: list[tuple[str, str | None, Callable[[str], object]]] = [
        ("--report", args.report, lambda p: write_compare(comparison, p)),
        ("--markdown", args.markdown, lambda p: write_markdown(comparison_markdown(comparison), p)),
    ]
    for option, path, write in outputs:
        if path:
            try:
                write(path)
            except OSError as exc:
                raise CliError(f"{option}: could not write {path}: {exc.strerror or exc}.") from None
    print(f"compared {plural(len(files), 'run')} over {plural(comparison.shared_prompts, 'shared prompt')}")
    first = comparison.runs[0]
    for run in comparison.runs:
        estimate = run.overall_estimate
        interval = None if estimate is None else (estimate.ci_low, estimate.ci_high)
        line = f"  {run.label}: {RATE_NAME} {rate_text(run.overall)} {interval_text(interval)}"
        difference = run.difference
        if difference is not None and difference.mean is not None:
            line += f"; against {first.label} {points_text(difference.mean)}"
            if difference.ci_low is not None and difference.ci_high is not None:
                line += f" [{difference.ci_low * 100:+.1f}, {difference.ci_high * 100:+.1f}]"
            line += " (significant)" if difference.significant() else " (within noise)"
        print(terminal_safe(line, one_line=True))
    confidence = f"{comparison.confidence * 100:g} %"
    print(f"intervals at {confidence}; each run after the first is paired with it, prompt by prompt")
    return 0


def run_download(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from airbench_plugin.download import download

    try:
        saved = download(Path(args.directory), args.region, args.revision, args.repo)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"could not write to {args.directory}: {exc.strerror or exc}.") from None
    print(
        f"saved {saved.prompt_count:,} prompts ({saved.region}) and {saved.template_count:,} judge templates "
        f"of {saved.source} to {args.directory}"
    )
    print(f"run with: {saved.options()}")
    return 0


# --- calibrate ------------------------------------------------------------------------------------


def calibrate_options(args: argparse.Namespace) -> CalibrateOptions:
    """The command's options, each checked by the plugin's own validator."""
    from airbench_plugin.calibration.command import CalibrateOptions

    def count(name: str, raw: str | None) -> int | None:
        value: int | None = _validated(parse_positive_int, name, raw)
        return value

    given = {
        "model": _validated(parse_text, "judge-model", args.judge_model),
        "provider": args.judge_provider,
        "base_url": _validated(parse_url, "judge-base-url", args.judge_base_url),
        "api_key_env": _validated(parse_env_name, "judge-api-key-env", args.judge_api_key_env),
        "rpm": count("judge-rpm", args.judge_rpm),
        "tpm": count("judge-tpm", args.judge_tpm),
        "max_tokens": count("judge-max-tokens", args.judge_max_tokens),
        "reasoning_effort": args.judge_reasoning_effort,
    }
    return CalibrateOptions(
        references=tuple(args.references),
        # The candidate judge is one endpoint value, built as a run builds its judge's.
        judge=judge_endpoint(
            "judge", DEFAULT_JUDGE, {name: value for name, value in given.items() if value is not None}
        ),
        judge_prompts=_validated(parse_text, "judge-prompts", args.judge_prompts),
        judge_scale=args.judge_scale,
        threshold=_validated(parse_fraction, "threshold", args.threshold),
        concurrency=count("concurrency", args.concurrency) or 32,
        retries=_validated(parse_count, "retries", args.retries),
        timeout=_validated(parse_seconds, "timeout", args.timeout),
        cache=args.cache,
        no_cache=args.no_cache,
        json=args.json,
        html=args.html,
        min_agreement=_validated(parse_fraction, "min-agreement", args.min_agreement),
        max_bias=_validated(parse_fraction, "max-bias", args.max_bias),
    )


def run_calibrate(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from airbench_plugin.calibration.command import CalibrateError, calibrate, stderr_progress
    from airbench_plugin.reports.calibration import (
        calibration_lines,
        write_calibration_html,
        write_calibration_json,
    )

    options = calibrate_options(args)
    try:
        calibration = calibrate(options, environ, Path.cwd(), progress=stderr_progress(sys.stderr))
    except CalibrateError as exc:
        raise CliError(str(exc)) from None
    outputs: list[tuple[str, str | None, Callable[[str], object]]] = [
        ("--json", options.json, lambda p: write_calibration_json(calibration, p)),
        ("--html", options.html, lambda p: write_calibration_html(calibration, p)),
    ]
    failures = []
    for option, path, write in outputs:
        if path:
            try:
                write(path)
            except OSError as exc:
                failures.append(f"{option}: could not write {path}: {exc.strerror or exc}.")
    for line in calibration_lines(calibration):
        print(line)
    for failure in failures:
        print(f"airbench calibrate: {failure}", file=sys.stderr)
    return USAGE_ERROR if failures else calibration.exit_status


# --- batch ---------------------------------------------------------------------------------------


def run_batch(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from pathlib import Path

    from airbench_plugin.batch.commands import BatchCommandError, cancel_lines, status_lines
    from airbench_plugin.credentials import CredentialsError

    lines = status_lines if args.action == "status" else cancel_lines
    try:
        for line in lines(Path(args.cache), environ, Path.cwd()):
            print(line)
    except (BatchCommandError, CredentialsError) as exc:
        raise CliError(f"{exc}.") from None
    return 0


# --- the parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="airbench",
        description="Merge, export and compare AIR-Bench 2024 runs of pytest-airbench; download the dataset.",
    )
    parser.add_argument("--version", action="version", version=f"pytest-airbench {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{merge,export,compare,download,calibrate,batch}"
    )

    merge = commands.add_parser(
        "merge",
        help="join the --airbench-json files of a run's shards, gate them and write the reports",
        description="Join the --airbench-json files of one run's shards (--airbench-shard or pytest-split), "
        "evaluate the gates and write the reports. Exit status: the gates' verdict (0 met, 1 not), 2 for "
        "files that cannot be merged.",
    )
    merge.add_argument("files", nargs="+", metavar="SHARD.json", help="the --airbench-json file of every shard")
    merge.add_argument("--json", required=True, metavar="OUT", help="write the merged results here")
    merge.add_argument("--report", metavar="OUT.html", help="write the self-contained HTML report")
    merge.add_argument("--junit-dir", metavar="DIR", help="write one JUnit XML file per level-2 category")
    merge.add_argument("--markdown", metavar="OUT.md", help="write the Markdown summary")
    merge.add_argument("--min-refusal-rate", metavar="X", help="gate: the overall refusal score must be >= X")
    merge.add_argument("--category-gates", metavar="GATES", help="gates per cate-idx prefix, e.g. '1:0.95 2.5:0.9'")
    merge.add_argument("--max-error-rate", metavar="X", help="gate: the share of errored prompts must be <= X")
    merge.add_argument("--baseline", metavar="PATH", help="a previous --airbench-json file to compare against")
    merge.add_argument("--max-regression", metavar="X", help="gate: the largest allowed drop against the baseline")
    merge.add_argument(
        "--min-judge-agreement",
        metavar="X",
        help="gate: the two judges must agree on at least X of the prompts (runs with --airbench-second-judge)",
    )
    merge.add_argument(
        "--confidence",
        metavar="X",
        help="confidence level of the intervals and of gates judged by interval (default: the shards')",
    )
    merge.add_argument(
        "--gate-by",
        choices=GATE_BY,
        help="what a gate compares with its threshold: estimate or interval (default: the shards')",
    )
    merge.add_argument(
        "--allow-partial", action="store_true", help="gate on the shards given even when some are missing"
    )
    merge.add_argument(
        "--no-step-summary", action="store_true", help="do not append the summary to $GITHUB_STEP_SUMMARY"
    )
    merge.set_defaults(handler=run_merge)

    export = commands.add_parser(
        "export",
        help="write a run in the benchmark authors' pipeline-1 JSON or pipeline-2 CSV",
        description="Write a run in the benchmark authors' step-2 formats, scores on the refusal scale "
        "(1 = refused). --airbench-responses reads both back.",
    )
    export.add_argument("file", metavar="RUN.json", help="an --airbench-json file")
    export.add_argument("--to", required=True, choices=EXPORT_FORMATS, help="the format")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write it")
    export.set_defaults(handler=run_export)

    compare = commands.add_parser(
        "compare",
        help="compare runs of several models: heat map page and Markdown table",
        description="Compare runs (one --airbench-json file per model) over the prompts they all scored.",
    )
    compare.add_argument("files", nargs="+", metavar="RUN.json", help="the --airbench-json file of each run")
    compare.add_argument("--report", metavar="OUT.html", help="write the self-contained comparison page")
    compare.add_argument("--markdown", metavar="OUT.md", help="write the comparison as Markdown")
    compare.add_argument(
        "--confidence", metavar="X", help="confidence level of the intervals and significance marks (default: 0.95)"
    )
    compare.set_defaults(handler=run_compare)

    fetch = commands.add_parser(
        "download",
        help="save the prompts and judge prompts of one dataset revision as local files",
        description="Save one revision's prompts (of one region) and judge templates as Parquet files in DIR, "
        "for runs without access to the Hugging Face Hub (--airbench-dataset=FILE --airbench-judge-prompts=FILE).",
    )
    fetch.add_argument("directory", metavar="DIR", help="the folder to write (created if missing)")
    fetch.add_argument("--region", choices=REGIONS, default="default", help="dataset config (default: default)")
    fetch.add_argument("--revision", default=HELM_REVISION, metavar="REV", help="commit (default: HELM's, 976d9fb)")
    fetch.add_argument("--repo", default=HF_REPO, metavar="OWNER/NAME", help=f"hub repository (default: {HF_REPO})")
    fetch.set_defaults(handler=run_download)
    add_calibrate(commands)

    batch = commands.add_parser(
        "batch",
        help="list or cancel the Batch-API batches recorded in a cache directory (--airbench-batch)",
        description="List the batches a --airbench-batch run recorded in its cache directory, with their status at "
        "the provider, or cancel those not collected yet (a run with the same cache collects what they finished).",
    )
    batch.add_argument("action", choices=("status", "cancel"), help="list them, or cancel the running ones")
    batch.add_argument("--cache", default=".airbench_cache", metavar="DIR", help="the cache (default: .airbench_cache)")
    batch.set_defaults(handler=run_batch)
    return parser


def add_calibrate(commands: Any) -> None:
    """`airbench calibrate`: its options, named as the run's judge options without `--airbench-`."""
    calibrate = commands.add_parser(
        "calibrate",
        help="measure a candidate judge against answers the official judge already scored",
        description="Judge answers that a reference judge (the official gpt-4o-2024-05-13, or people) already "
        "scored, with a candidate judge, through the same engine, templates and scale rules as a run, and report "
        "how far apart they are. References are recognised by content; with none, the calibration set shipped "
        "in the package is used. Exit status: 0 when every gate is met and every answer was scored, 1 otherwise, "
        "2 for input that cannot be used.",
    )
    calibrate.add_argument(
        "references",
        nargs="*",
        metavar="REFERENCE",
        help="--airbench-json files, the authors' step-2 JSON or CSV, HELM run directories, or CSV/JSONL files of "
        "cate-idx, prompt, response, score (refusal scale); none: the shipped calibration set",
    )
    calibrate.add_argument("--judge-model", required=True, metavar="M", help="the candidate judge model")
    calibrate.add_argument("--judge-provider", choices=PROVIDERS, help="its provider (default openai)")
    calibrate.add_argument("--judge-base-url", metavar="URL", help="an OpenAI-compatible endpoint serving it")
    calibrate.add_argument("--judge-api-key-env", metavar="NAME", help="the variable holding its key, for any host")
    calibrate.add_argument("--judge-rpm", metavar="N", help="requests per minute to send it at most")
    calibrate.add_argument("--judge-tpm", metavar="N", help="tokens per minute to send it at most")
    calibrate.add_argument(
        "--judge-max-tokens", metavar="N", help="its visible-answer allowance, as --airbench-judge-max-tokens"
    )
    calibrate.add_argument(
        "--judge-reasoning-effort",
        choices=REASONING_EFFORTS,
        help="sent as reasoning_effort, as --airbench-judge-reasoning-effort (default: not sent)",
    )
    calibrate.add_argument(
        "--judge-prompts",
        metavar="SOURCE",
        default=DEFAULT_DATASET,
        help="judge templates: hf:REPO@REVISION or a local file, as --airbench-judge-prompts (default: %(default)s)",
    )
    calibrate.add_argument(
        "--judge-scale", choices=JUDGE_SCALES, default="auto", help="as --airbench-judge-scale (default auto)"
    )
    calibrate.add_argument("--threshold", default="0.5", metavar="X", help="pass at refusal score >= X (default 0.5)")
    calibrate.add_argument("--json", metavar="PATH", help="write the calibration document (airbench-calibration/1)")
    calibrate.add_argument("--html", metavar="PATH", help="write the self-contained HTML page")
    calibrate.add_argument("--min-agreement", metavar="X", help="gate: pass/fail agreement must be >= X")
    calibrate.add_argument("--max-bias", metavar="X", help="gate: |mean of candidate - official| must be <= X")
    calibrate.add_argument("--concurrency", default="32", metavar="N", help="calls in flight at most (default 32)")
    calibrate.add_argument("--retries", default="6", metavar="N", help="retries of a failed call (default 6)")
    calibrate.add_argument("--timeout", default="120", metavar="S", help="seconds per call (default 120)")
    calibrate.add_argument("--cache", metavar="DIR", help="the response cache (default ./.airbench_cache)")
    calibrate.add_argument("--no-cache", action="store_true", help="neither read nor write the response cache")
    calibrate.set_defaults(handler=run_calibrate)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the `airbench` command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Mapping[str, str]], int] = args.handler
    try:
        return handler(args, os.environ if environ is None else environ)
    except CliError as exc:
        print(f"airbench {args.command}: {exc}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":  # pragma: no cover - `python -m airbench_plugin.cli`
    sys.exit(main())
