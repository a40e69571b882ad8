"""From raw option values to one `Settings`: `resolve_settings` is the one place where option values
are read and validated, and every problem is a `pytest.UsageError` whose message is one sentence
that says what to do.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.endpoints import OPTION_PREFIX, EndpointSettings, field_name
from airbench_plugin.endpoints import fields as endpoint_fields
from airbench_plugin.judges import DEFAULT_JUDGE, JudgeKind, judge_class
from airbench_plugin.options.declarations import OPTIONS, raw_values
from airbench_plugin.options.settings import DEFAULT_TARGET_MAX_TOKENS, JUDGE_KIND_CHOICES, Settings
from airbench_plugin.roles import ROLES, Role


def parse_values(raw: dict[str, Any]) -> Settings:
    """Validate raw option values into `Settings`; raises `pytest.UsageError` on the first bad one."""
    parsed: dict[str, Any] = {}
    endpoints: dict[Role, dict[str, Any]] = {role: {} for role in ROLES}
    for spec in OPTIONS:
        if spec.field_name not in raw:
            continue
        value = raw[spec.field_name]
        value = bool(value) if spec.flag else spec.parse(spec.name, str(value))
        if spec.role is not None and spec.setting is not None:
            endpoints[spec.role][spec.setting.replace("-", "_")] = value
        else:
            parsed[spec.field_name] = value
    check_judges(parsed, endpoints)
    judge: JudgeKind = parsed.get("judge", DEFAULT_JUDGE)
    parsed["target"] = EndpointSettings("target", **{"max_tokens": DEFAULT_TARGET_MAX_TOKENS, **endpoints["target"]})
    parsed["judge_endpoint"] = judge_endpoint("judge", judge, endpoints["judge"])
    second = parsed.get("second_judge")
    parsed["second_judge_endpoint"] = (
        EndpointSettings("second judge", provider="openai")
        if second is None
        else judge_endpoint("second judge", second, endpoints["second judge"])
    )
    settings = Settings(**parsed)
    if "judge_prompts" not in parsed and "dataset" in parsed:
        dataset = parsed["dataset"]
        if str(dataset).startswith("hf:"):
            settings = dataclasses.replace(settings, judge_prompts=dataset)
        elif settings.needs_templates:
            raise pytest.UsageError(
                "--airbench-judge-prompts: a local --airbench-dataset needs its judge templates too; "
                "pass --airbench-judge-prompts=FILE (a file with cate-idx and judge_prompt columns)."
            )
    if settings.batch and settings.no_cache:
        raise pytest.UsageError(
            "--airbench-batch keeps its batches and their answers in the response cache; drop --airbench-no-cache."
        )
    if settings.max_regression is not None and settings.baseline is None:
        raise pytest.UsageError(
            "--airbench-max-regression needs --airbench-baseline=PATH (a previous --airbench-json file)."
        )
    if settings.baseline is not None and not Path(settings.baseline).is_file():
        raise pytest.UsageError(
            f"--airbench-baseline: cannot read {settings.baseline!r}; pass a file written by --airbench-json."
        )
    return settings


def judge_endpoint(role: Role, kind: JudgeKind, given: Mapping[str, Any]) -> EndpointSettings:
    """A judge's endpoint: the options given for `role`, else the defaults of a judge of `kind`."""
    judge = judge_class(kind)
    defaults = {"model": judge.default_model, "provider": "openai", "max_tokens": judge.max_tokens}
    return EndpointSettings(role, **{**defaults, **given})


def check_judges(parsed: dict[str, Any], endpoints: Mapping[Role, Mapping[str, Any]]) -> None:
    """The judge options fit together; raises `pytest.UsageError` with one sentence when not."""
    judge = parsed.get("judge", DEFAULT_JUDGE)
    second = parsed.get("second_judge")
    if second is None:
        for setting in (f.name for f in endpoint_fields()):
            if setting in endpoints["second judge"]:
                option = "--airbench-" + field_name("second judge", setting).replace("_", "-")
                raise pytest.UsageError(f"{option} needs --airbench-second-judge KIND (the second judge).")
        if "min_judge_agreement" in parsed:
            raise pytest.UsageError(
                "--airbench-min-judge-agreement needs --airbench-second-judge KIND (the second judge)."
            )
    elif second == judge:
        raise pytest.UsageError(
            f"--airbench-second-judge: the second judge must be of another kind than the first "
            f"(--airbench-judge {judge}); pass one of {', '.join(k for k in JUDGE_KIND_CHOICES if k != judge)}."
        )
    if parsed.get("responses") is not None and parsed.get("prompt_suffix"):
        raise pytest.UsageError(
            "--airbench-prompt-suffix changes what the model under test is sent, and --airbench-responses "
            "replaces that model by recorded answers; drop one of them."
        )
    # A judge no provider's default endpoint serves says so on its class.
    for kind, role in ((judge, "judge"), (second, "second judge")):
        needed = None if kind is None else judge_class(kind).base_url_needed
        if needed is not None and endpoints[role].get("base_url") is None:  # type: ignore[index]
            prefix = "--airbench-" + OPTION_PREFIX[role]  # type: ignore[index]
            raise pytest.UsageError(f"{prefix[:-1]} {kind} needs {prefix}base-url URL: {needed}.")


def resolve_settings(config: pytest.Config) -> Settings:
    """The one place where option values are read and validated."""
    if not hasattr(config, "workerinput"):  # xdist workers get the controller's arguments
        check_values_given_apart(config.invocation_params.args, config.invocation_params.dir)
    return parse_values(raw_values(config))


def check_values_given_apart(args: Sequence[str], invocation_dir: Path) -> None:
    """Stop a run whose root directory an `--airbench-*` path value moved.

    pytest picks the rootdir and the ini file before plugins are loaded, so it takes the value of
    `--airbench-dataset /elsewhere/x.csv` for a test path: a path outside the directory pytest was
    started in moves the rootdir up to a common parent, the ini file (`testpaths`, ...) is missed,
    and everything below that parent is collected. `--airbench-dataset=PATH` is never read so.
    """
    with_value = {f"--airbench-{spec.name}" for spec in OPTIONS if not spec.flag}
    for option, value in itertools.pairwise(args):
        if option not in with_value or value.startswith("-"):
            continue
        path = Path(invocation_dir, value)
        if path.exists() and not path.resolve().is_relative_to(invocation_dir.resolve()):
            raise pytest.UsageError(
                f"{option}: write {option}={value}, with '=': pytest takes a path given as a separate argument "
                f"for a test path, and one outside {str(invocation_dir)!r} moves the root directory and skips "
                "your ini file."
            )
