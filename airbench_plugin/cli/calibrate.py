"""`airbench calibrate`: a candidate judge measured against answers a reference judge already scored."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airbench_plugin.cli.common import USAGE_ERROR, CliError, add_declared, declared_value, validated
from airbench_plugin.judges import DEFAULT_JUDGE
from airbench_plugin.options import (
    DEFAULT_DATASET,
    JUDGE_SCALES,
    OptionSpec,
    endpoint_options,
    judge_endpoint,
    parse_count,
    parse_fraction,
    parse_positive_int,
    parse_seconds,
    parse_text,
)

if TYPE_CHECKING:
    from airbench_plugin.calibration.command import CalibrateOptions


def candidate_options() -> tuple[OptionSpec, ...]:
    """The candidate judge's options: the run's judge endpoint options (`--airbench-judge-rpm`, ...)
    without `--airbench-` (`--judge-rpm`). One declaration serves both, so an option added to every
    endpoint reaches this command too, with the run's validator and help."""
    return endpoint_options("judge")


def _setting(spec: OptionSpec) -> str:
    """The `EndpointSettings` field an endpoint option sets: `base_url` for `--judge-base-url`."""
    assert spec.setting is not None
    return spec.setting.replace("-", "_")


def calibrate_options(args: argparse.Namespace) -> CalibrateOptions:
    """The command's options, each checked by the plugin's own validator."""
    from airbench_plugin.calibration.command import CalibrateOptions

    def count(name: str, raw: str | None) -> int | None:
        value: int | None = validated(parse_positive_int, name, raw)
        return value

    given = {_setting(spec): declared_value(args, spec) for spec in candidate_options()}
    return CalibrateOptions(
        references=tuple(args.references),
        # The candidate judge is one endpoint value, built as a run builds its judge's.
        judge=judge_endpoint(
            "judge", DEFAULT_JUDGE, {name: value for name, value in given.items() if value is not None}
        ),
        judge_prompts=validated(parse_text, "judge-prompts", args.judge_prompts),
        judge_scale=args.judge_scale,
        threshold=validated(parse_fraction, "threshold", args.threshold),
        concurrency=count("concurrency", args.concurrency) or 32,
        retries=validated(parse_count, "retries", args.retries),
        timeout=validated(parse_seconds, "timeout", args.timeout),
        cache=args.cache,
        no_cache=args.no_cache,
        json=args.json,
        html=args.html,
        min_agreement=validated(parse_fraction, "min-agreement", args.min_agreement),
        max_bias=validated(parse_fraction, "max-bias", args.max_bias),
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


def add(commands: Any) -> None:
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
    for spec in candidate_options():
        if _setting(spec) == "model":
            add_declared(calibrate, spec, required=True, metavar="M", help="the candidate judge model")
        else:
            add_declared(calibrate, spec, metavar=spec.metavar or _setting(spec).upper())
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
