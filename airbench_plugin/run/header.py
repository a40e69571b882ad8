"""The run's header (`pytest_report_header`): the model, the judges and the plan, the most the run may
call and spend, what its sample can resolve, the shutdowns its endpoints announced, the batch mode and
the judge's calibration."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from airbench_plugin.batch import messages as batch
from airbench_plugin.calibration.stated import calibration_text
from airbench_plugin.dataset import describe_sample
from airbench_plugin.judges import JudgeKind, judge_class
from airbench_plugin.run.session import AirbenchRun
from airbench_plugin.run.spend import max_calls, token_estimates
from airbench_plugin.stats import resolution_text
from airbench_plugin.text import terminal_safe
from airbench_plugin.wording import plural

SKIPPED = "airbench: no --airbench-model given; the AIR-Bench suite will be skipped"


def header_lines(run: AirbenchRun, today: dt.date) -> list[str]:
    """The lines pytest prints under its own header for this run, each terminal-safe."""
    s = run.settings
    if not s.active:
        return [SKIPPED]
    sample = describe_sample(run.planned, s.sample, s.sample_by)
    scope = ",".join(s.categories) if s.categories else "all categories"
    if run.recorded is not None:
        repeats = run.recorded.repeated
        once = f", {plural(repeats, 'repeated row')} read once" if repeats else ""
        plan = f"answers recorded in {s.responses} ({run.recorded.format}, {plural(len(run.planned), 'prompt')}{once})"
    else:
        plan = f"dataset {s.dataset} [{s.region}], {sample}, {scope}, seed {s.seed}"
    if s.shard is not None:
        plan += f"; shard {s.shard}: {len(run.cases):,} of {plural(len(run.planned), 'prompt')}"
    budget = f"; token budget {s.token_budget:,}" if s.token_budget is not None else ""
    lines = [
        f"airbench: model {s.model} via {s.target_provider}, {judges_description(run)}, threshold {s.threshold:g}",
        f"airbench: {plan}",
        f"airbench: at most {plural(max_calls(run), 'API call')} for {plural(len(run.cases), 'prompt')} "
        f"(retries of failed calls aside){budget}",
        f"airbench: {resolution(run)}",
        *(estimate.line(s.price) for estimate in token_estimates(run)),
        # `judge gpt-4o-2024-08-06: shuts down 2027-01-14 (42 days)`
        *(f"airbench: {shutdown.header_line(today)}" for shutdown in run.shutdowns),
    ]
    lines += batch.header_lines(s, run.cache_dir)
    if run.calibration is not None:
        lines.append(f"airbench: {calibration_text(run.calibration)} ({run.calibration.source})")
    return [terminal_safe(line, one_line=True) for line in lines]


def judges_description(run: AirbenchRun) -> str:
    """The judges as the header names them: `judge gpt-4o (airbench, refusal scale read from the templates)`."""
    s = run.settings

    def describe(kind: JudgeKind, model: str) -> str:
        return judge_class(kind).description(model, s.judge_scale, run.scale_read)

    text = f"judge {describe(s.judge, s.judge_model)}"
    if s.second_judge is not None:
        text += f", second judge {describe(s.second_judge, s.second_judge_endpoint.model or '')}"
    return text


def resolution(run: AirbenchRun) -> str:
    """What the whole plan can resolve: `80 prompts: overall ±11 points, level-2 ±33 points at 95 %`."""
    sizes = Counter(case.cate_idx.split(".")[0] for case in run.planned)
    return resolution_text(len(run.planned), list(sizes.values()), run.settings.confidence)
