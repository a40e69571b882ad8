"""What a run may spend and did spend: the API calls and tokens before the run (the header's
estimates) and the tokens each endpoint paid, with their price, at the end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airbench_plugin.judges import JudgeSetup, judge_class
from airbench_plugin.options import DEFAULT_TARGET_MAX_TOKENS
from airbench_plugin.pricing import EndpointEstimate, spent_line
from airbench_plugin.roles import ROLE_NAMES, Role
from airbench_plugin.run.session import AirbenchRun
from airbench_plugin.scoring import target_messages
from airbench_plugin.tokens import counter_for


def token_estimates(run: AirbenchRun) -> list[EndpointEstimate]:
    """Each endpoint's tokens before the run: the prompts as they will be sent, counted as
    `tokens.counter_for` counts the model's text, and at most max tokens of completion per call.
    A judge's prompt holds the answer: recorded answers as they are, else at most the model's
    max tokens each."""
    s = run.settings
    assert s.model is not None
    cases = run.cases
    answer_tokens = s.target.max_tokens or DEFAULT_TARGET_MAX_TOKENS
    estimates = []
    if run.recorded is None:
        counter = counter_for(s.model)
        sent = (target_messages(case.prompt + s.prompt_suffix, s.system_prompt) for case in cases)
        prompt = sum(counter.count(messages) for messages in sent)
        name = f"model under test {s.model}"
        estimates.append(EndpointEstimate(name, s.model, prompt, len(cases) * answer_tokens, counter, len(cases)))
    judges = [(s.judge_endpoint, s.judge)]
    if s.second_judge is not None:
        judges.append((s.second_judge_endpoint, s.second_judge))
    for settings, kind in judges:
        model = settings.model or ""
        judge = judge_class(kind)(model, JudgeSetup(run.templates, s.judge_scale))
        counter = counter_for(model)
        recorded = run.recorded
        try:
            prompt = sum(
                counter.count(judge.request(case, recorded.answer(case.prompt) if recorded else "").messages)
                for case in cases
            )
        except (KeyError, ValueError):  # a template the run refuses anyway: no estimate
            continue
        if recorded is None:
            prompt += len(cases) * answer_tokens
        completion = len(cases) * (settings.max_tokens or judge.max_tokens)
        name = f"{settings.role_name} {model}"
        estimates.append(EndpointEstimate(name, model, prompt, completion, counter, len(cases)))
    return estimates


def endpoint_models(run: AirbenchRun) -> dict[Role, str]:
    """The model behind each endpoint of the run, by role."""
    return {settings.role: settings.model or "" for settings in run.settings.called}


def spent_tokens(run: AirbenchRun, snapshots: Iterable[Mapping[str, Any]]) -> dict[Role, tuple[int, int]]:
    """Prompt and completion tokens this run paid per endpoint, over every process's engine."""
    spent: dict[Role, list[int]] = {}
    for snapshot in snapshots:
        tokens = snapshot.get("tokens")
        for role in endpoint_models(run):
            pair = tokens.get(role) if isinstance(tokens, Mapping) else None
            if isinstance(pair, list) and len(pair) == 2:
                totals = spent.setdefault(role, [0, 0])
                totals[0] += int(pair[0])
                totals[1] += int(pair[1])
    return {role: (pair[0], pair[1]) for role, pair in spent.items()}


def spent_lines(run: AirbenchRun, snapshots: Iterable[Mapping[str, Any]]) -> list[str]:
    """With --airbench-price, one line per priced endpoint: what its calls cost this run."""
    if not run.settings.price:
        return []
    models = endpoint_models(run)
    lines = []
    for role, (prompt, completion) in spent_tokens(run, snapshots).items():
        line = spent_line(ROLE_NAMES[role], models[role], prompt, completion, run.settings.price)
        if line is not None:
            lines.append(line)
    return lines


def max_calls(run: AirbenchRun) -> int:
    """The most API calls this run can start: one to the model and two to each judge (an
    unreadable reply is asked once more) for every planned prompt, before retries of failed calls."""
    judges = 1 if run.settings.second_judge is None else 2
    model = 0 if run.recorded is not None else 1  # recorded answers need no call to the model
    per_prompt = model + 2 * judges
    return len(run.cases) * per_prompt
