"""`airbench calibrate`: the candidate judge scores answers a reference judge already scored, through
the same engine as a run (pacing, cache, retries, circuit breaker), with the same templates and
scale rules as a run. Everything that can fail on input fails here, before any call, with one
sentence (`CalibrateError`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from airbench_plugin import __version__
from airbench_plugin.calibration.model import Calibration, CandidateJudge, Judged, build_calibration
from airbench_plugin.calibration.references import Reference, ReferenceError, read_reference
from airbench_plugin.calibration.stated import template_revision
from airbench_plugin.credentials import (
    CredentialsError,
    find_key,
    missing_key_message,
    read_dotenv,
    unset_key_env_message,
)
from airbench_plugin.dataset import DatasetError, load_templates, require_templates
from airbench_plugin.endpoints import Endpoint, EndpointSettings, JudgeEndpoint
from airbench_plugin.engine import Engine
from airbench_plugin.judges import DEFAULT_JUDGE
from airbench_plugin.judges.airbench import AirbenchJudge, ScaleError, resolve_scale, template_problems
from airbench_plugin.judges.base import JudgeReading, JudgeSetup
from airbench_plugin.options import DEFAULT_DATASET
from airbench_plugin.options import judge_endpoint as judge_endpoint_settings
from airbench_plugin.progress import PROGRESS_EVERY, progress_line
from airbench_plugin.providers import provider_class
from airbench_plugin.providers.base import display_url
from airbench_plugin.redaction import Redactor
from airbench_plugin.scoring import CaseError, CircuitOpen
from airbench_plugin.store import CallStore
from airbench_plugin.text import terminal_safe


class CalibrateError(Exception):
    """Input `airbench calibrate` cannot use, or a judge that stopped answering; one sentence."""


@dataclass(frozen=True)
class CalibrateOptions:
    """The command's options, validated by the parser."""

    references: tuple[str, ...] = ()  # none: the shipped calibration set
    judge: EndpointSettings = field(default_factory=lambda: judge_endpoint_settings("judge", DEFAULT_JUDGE, {}))
    judge_prompts: str = DEFAULT_DATASET
    judge_scale: str = "auto"
    threshold: float = 0.5
    concurrency: int = 32
    retries: int = 6
    timeout: float = 120.0
    cache: str | None = None  # None: ./.airbench_cache
    no_cache: bool = False
    json: str | None = None
    html: str | None = None
    min_agreement: float | None = None
    max_bias: float | None = None


def _cli_words(message: str) -> str:
    """A run's sentence as this command spells its options: `--airbench-judge-scale` is `--judge-scale`."""
    return message.replace("--airbench-", "--")


def read_references(sources: Sequence[str]) -> list[Reference]:
    """Every reference named, or the shipped set; raises CalibrateError."""
    if len({str(Path(source).resolve()) for source in sources}) < len(sources):
        raise CalibrateError("a reference file is named twice; name each once.")
    references = []
    for source in sources or (None,):
        try:
            references.append(read_reference(source))
        except ReferenceError as exc:
            raise CalibrateError(terminal_safe(str(exc), one_line=True)) from None
    judges = {reference.judge for reference in references}
    if len(judges) > 1:
        named = ", ".join(f"{r.source!r} by {r.judge or 'unnamed labels'}" for r in references)
        raise CalibrateError(
            f"the references were scored by different judges ({named}); calibrate against one at a time."
        )
    return references


def prepare_templates(options: CalibrateOptions, references: Sequence[Reference]) -> tuple[dict[str, str], str]:
    """The judge templates and their scale, decided as a run decides them; raises CalibrateError."""
    cate_idxs = [item.case.cate_idx for reference in references for item in reference.items]
    try:
        templates = load_templates(options.judge_prompts)
        require_templates(
            (item.case for reference in references for item in reference.items),
            templates,
            options.judge_prompts,
            "every reference answer needs its category's template (pass --judge-prompts)",
        )
    except DatasetError as exc:
        raise CalibrateError(_cli_words(terminal_safe(str(exc), one_line=True))) from None
    problems = template_problems(templates, cate_idxs)
    if problems:
        raise CalibrateError(
            terminal_safe(
                f"the judge templates in {options.judge_prompts!r} cannot show the judge what it grades: "
                f"{'; '.join(problems[:5])}; fix the file or use the judge prompts of the dataset's revision.",
                one_line=True,
            )
        )
    try:
        scale = resolve_scale(options.judge_scale, templates, options.judge_prompts)
    except ScaleError as exc:
        raise CalibrateError(_cli_words(str(exc))) from None
    return templates, scale


def judge_key(options: CalibrateOptions, environ: Mapping[str, str], workdir: Path) -> str | None:
    """The candidate judge's key, found as a run finds its judge's; raises CalibrateError."""
    settings = options.judge
    provider = provider_class(settings.resolved_provider)
    try:
        dotenv = read_dotenv(workdir)
    except CredentialsError as exc:
        raise CalibrateError(str(exc)) from None
    key = find_key(provider, environ, dotenv, base_url=settings.base_url, key_env=settings.api_key_env)
    if key is None and settings.api_key_env is not None:
        raise CalibrateError(unset_key_env_message("--judge-api-key-env", settings.api_key_env))
    if key is None and settings.base_url is None:
        raise CalibrateError(missing_key_message(provider, "judge", settings.model or ""))
    return key


def judge_endpoint(
    options: CalibrateOptions, templates: Mapping[str, str], scale: str, key: str | None
) -> JudgeEndpoint:
    """The candidate judge and its endpoint, built as a run builds its judge's."""
    settings = options.judge
    model = settings.model or ""
    judge = AirbenchJudge(model, JudgeSetup(templates, scale))
    provider = provider_class(settings.resolved_provider)
    client = provider(api_key=key, base_url=settings.base_url, timeout=options.timeout)
    endpoint = Endpoint(
        "judge",
        client,
        model,
        judge.temperature,
        settings.max_tokens or judge.max_tokens,
        rpm=settings.rpm,
        tpm=settings.tpm,
        option_prefix="--judge-",
        reasoning_effort=settings.reasoning_effort,
        reasoning_headroom=settings.reasoning_headroom,
    )
    return JudgeEndpoint(judge, endpoint)


Progress = Callable[[str], None]


def answers_line(done: int, total: int, snapshot: Mapping[str, Any]) -> str:
    """The run's progress line, counting answers judged instead of prompts."""
    counters = {name: int(snapshot[name]) for name in ("calls", "cached", "in_flight", "retried", "errored")}
    counters["tokens"] = sum(sum(pair) for pair in snapshot["tokens"].values())
    return progress_line(done, total, counters).replace(" prompts ", " answers ", 1)


def judge_items(
    engine: Engine, references: Sequence[Reference], progress: Progress | None, every: float = PROGRESS_EVERY
) -> list[Judged]:
    """Every reference item judged by the engine's judge; raises CalibrateError when the run stops."""
    items = [item for reference in references for item in reference.items]
    futures = [engine.submit_answer(item.case, item.response) for item in items]
    pending: set[concurrent.futures.Future[tuple[JudgeReading, ...]]] = set(futures)
    last = time.monotonic()
    while pending:
        _done, pending = concurrent.futures.wait(pending, timeout=every, return_when=concurrent.futures.FIRST_COMPLETED)
        if progress is not None and time.monotonic() - last >= every:
            last = time.monotonic()
            progress(answers_line(len(futures) - len(pending), len(futures), engine.stats.snapshot()))
    judged = []
    for item, future in zip(items, futures, strict=True):
        try:
            reading = future.result()[0]
        except CircuitOpen as exc:
            raise CalibrateError(str(exc)) from None
        except CaseError as exc:
            judged.append(Judged(item, None, error=str(exc)))
            continue
        judged.append(Judged(item, reading.score, reading.reasoning))
    return judged


def calibrate(
    options: CalibrateOptions,
    environ: Mapping[str, str],
    workdir: Path,
    progress: Progress | None = None,
    created: dt.datetime | None = None,
) -> Calibration:
    """Read the references, judge their answers with the candidate and compute every figure."""
    references = read_references(options.references)
    key = judge_key(options, environ, workdir)
    templates, scale = prepare_templates(options, references)
    judging = judge_endpoint(options, templates, scale, key)
    redactor = Redactor.for_run([key], [options.judge.base_url])
    cache = Path(options.cache) if options.cache else workdir / ".airbench_cache"
    store = None
    if not options.no_cache:
        try:
            store = CallStore(cache)
        except Exception as exc:  # sqlite and the file system raise several types
            raise CalibrateError(
                f"--cache: cannot use {str(cache)!r} as the response cache ({exc}); "
                "pass another directory or --no-cache."
            ) from None
    engine = Engine(
        target=None,
        judges=[judging],
        system_prompt=None,
        concurrency=options.concurrency,
        retries=options.retries,
        store=store,
        stall_timeout=options.timeout,
    )
    try:
        judged = judge_items(engine, references, progress)
        sent: dict[str, Any] = dict(engine.stats.sent.get("judge", {}))
    finally:
        engine.close()
    judged = [dataclasses.replace(j, error=redactor.scrub(j.error)) if j.error else j for j in judged]
    candidate = CandidateJudge(
        model=judging.endpoint.model,
        provider=options.judge.resolved_provider,
        base_url=display_url(options.judge.base_url),
        scale=scale,
        template_source=options.judge_prompts,
        template_revision=template_revision(templates),
        temperature=judging.endpoint.temperature,
        max_tokens=judging.endpoint.max_tokens,
        reasoning_effort=judging.endpoint.reasoning_effort,
        sent=sent,
    )
    return build_calibration(
        plugin_version=__version__,
        created=(created or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        candidate=candidate,
        references=references,
        judged=judged,
        threshold=options.threshold,
        min_agreement=options.min_agreement,
        max_bias=options.max_bias,
    )


def stderr_progress(stream: TextIO) -> Progress:
    def write(line: str) -> None:
        print(line, file=stream, flush=True)

    return write
