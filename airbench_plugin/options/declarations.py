"""The option declarations: one `OptionSpec` per `--airbench-*` option (name, help, validator, and
whether it changes what a run measures), the endpoint options declared once for every role, and their
registration with pytest. Every option is `--airbench-NAME` on the command line and `airbench_NAME`
in the ini file; the command line wins (`raw_values`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pytest

from airbench_plugin.endpoints import OPTION_PREFIX, REASONING_EFFORTS, REASONING_HEADROOM
from airbench_plugin.gates import GateSettings
from airbench_plugin.judges import DEFAULT_JUDGE, JUDGES, judge_class
from airbench_plugin.options.settings import (
    DEFAULT_BATCH_POLL,
    DEFAULT_DATASET,
    DEFAULT_TARGET_MAX_TOKENS,
    JUDGE_KIND_CHOICES,
    JUDGE_SCALES,
    PROVIDERS,
    REGIONS,
    SAMPLE_BY,
)
from airbench_plugin.options.validators import (
    parse_category_gates,
    parse_choice,
    parse_confidence,
    parse_count,
    parse_env_name,
    parse_fraction,
    parse_int,
    parse_list,
    parse_positive_int,
    parse_sample,
    parse_seconds,
    parse_shard_option,
    parse_suffix,
    parse_temperature,
    parse_text,
    parse_url,
)
from airbench_plugin.pricing import parse_prices
from airbench_plugin.results import GATE_BY
from airbench_plugin.roles import Role

_BACKENDS = ", ".join(PROVIDERS[1:-1]) + f" or {PROVIDERS[-1]}"  # "openai or together", for help texts


@dataclass(frozen=True)
class OptionSpec:
    """One user-facing option: its name, help text, validator and how it is spelled.

    `measured`: whether it changes what a run measures. Operational options (outputs, gates, speed,
    the cache, the shard) may differ between the shards `airbench merge` joins; measured ones may not.
    """

    name: str
    help: str
    parse: Callable[[str, str], Any] = parse_text
    metavar: str | None = None
    flag: bool = False
    measured: bool = True
    role: Role | None = None  # an endpoint option: the role it sets ...
    setting: str | None = None  # ... and its field of `EndpointSettings`

    @property
    def dest(self) -> str:
        return "airbench_" + self.name.replace("-", "_")

    @property
    def field_name(self) -> str:
        return self.name.replace("-", "_")


_WHOM: dict[Role, str] = {"target": "the model under test", "judge": "the judge", "second judge": "the second judge"}


@dataclass(frozen=True)
class EndpointOption:
    """An option every endpoint has, once per role: `--airbench-` + the role's prefix + `name`.

    `help` is formatted with `{whom}` ("the judge"); `helps` gives a role its own text instead.
    """

    name: str
    help: str
    parse: Callable[[str, str], Any] = parse_text
    metavar: str | None = None
    helps: Mapping[Role, str] = field(default_factory=dict)
    measured: bool = True  # see OptionSpec

    def spec(self, role: Role) -> OptionSpec:
        text = self.helps.get(role, self.help).format(whom=_WHOM[role])
        return OptionSpec(
            OPTION_PREFIX[role] + self.name,
            text,
            self.parse,
            self.metavar,
            measured=self.measured,
            role=role,
            setting=self.name,
        )


_JUDGE_DEFAULTS = ", ".join(f"{judge_class(kind).default_model} for {kind}" for kind in JUDGES)
_HEADROOM = ", ".join(f"{effort} {tokens:,}" for effort, tokens in REASONING_HEADROOM.items())
# One declaration per endpoint setting (a field of `EndpointSettings`); each role gets it under its prefix.
ENDPOINT_OPTIONS: tuple[EndpointOption, ...] = (
    EndpointOption(
        "model",
        "",
        metavar="NAME",
        helps={
            "target": "model under test; without it the AIR-Bench suite is skipped",
            "judge": f"judge model (default: {_JUDGE_DEFAULTS}); never replaced behind your back",
            "second judge": "the second judge's model (default: its kind's default)",
        },
    ),
    EndpointOption(
        "provider",
        f"how to reach {{whom}}: auto, {_BACKENDS} (default: openai)",
        parse_choice(PROVIDERS),
        helps={
            "target": "how to reach the model: auto (together for org/model names, openai otherwise), "
            f"{_BACKENDS} (default: auto)"
        },
    ),
    EndpointOption(
        "base-url",
        "OpenAI-compatible endpoint for {whom}",
        parse_url,
        metavar="URL",
        helps={"target": "OpenAI-compatible endpoint for the model under test (vLLM, Ollama, a proxy)"},
    ),
    EndpointOption(
        "api-key-env",
        "environment variable holding the key for {whom}, as --airbench-api-key-env is for the model",
        parse_env_name,
        metavar="NAME",
        helps={
            "target": "environment variable holding the key for the model under test; without it, a base URL "
            "that is not the provider's own host gets no key"
        },
        measured=False,
    ),
    EndpointOption(
        "max-tokens",
        "tokens {whom} may use for its visible answer (default: the judge's own, 64 for airbench); a reasoning "
        f"judge may think this many more on top, by --airbench-*judge-reasoning-effort: {_HEADROOM}",
        parse_positive_int,
        metavar="N",
        helps={"target": f"max tokens for the model under test (default: {DEFAULT_TARGET_MAX_TOKENS})"},
    ),
    EndpointOption(
        "rpm",
        "requests per minute at most to {whom} (default: as the headers allow)",
        parse_positive_int,
        metavar="N",
        helps={
            "target": "requests per minute at most to the model under test (default: as the provider's "
            "rate-limit headers allow)"
        },
        measured=False,
    ),
    EndpointOption(
        "tpm",
        "tokens per minute at most to {whom} (default: as the headers allow)",
        parse_positive_int,
        metavar="N",
        helps={
            "target": "tokens per minute at most to the model under test, counting prompt/4 + max tokens "
            "(default: as the provider's headers allow)"
        },
        measured=False,
    ),
    EndpointOption(
        "reasoning-effort",
        "reasoning effort sent to {whom} when it is a reasoning model (gpt-5, o-series): "
        + ", ".join(REASONING_EFFORTS)
        + " (default: not sent; the model's own)",
        parse_choice(REASONING_EFFORTS),
    ),
)


def endpoint_options(role: Role) -> tuple[OptionSpec, ...]:
    """Every endpoint option, for `role`."""
    return tuple(option.spec(role) for option in ENDPOINT_OPTIONS)


OPTIONS: tuple[OptionSpec, ...] = (
    *endpoint_options("target"),
    OptionSpec("system-prompt", "system message for the model under test (default: none)", metavar="TEXT"),
    OptionSpec(
        "prompt-suffix",
        "text appended to every prompt sent to the model under test; \\n is a new line "
        "(unitxt's AIR-Bench card: '\\n') (default: none, HELM's setting)",
        parse_suffix,
        metavar="TEXT",
    ),
    OptionSpec(
        "temperature", "sampling temperature for the model under test (default: 0)", parse_temperature, metavar="X"
    ),
    OptionSpec(
        "judge",
        "the judge whose verdict passes or fails each test: "
        + " or ".join(JUDGE_KIND_CHOICES)
        + f" (default: {DEFAULT_JUDGE})",
        parse_choice(JUDGE_KIND_CHOICES),
    ),
    *endpoint_options("judge"),
    OptionSpec(
        "judge-scale",
        "what the judge templates' raw number means: auto (read from the templates' rubric), refusal "
        "(1 = refused; revision 976d9fb and later) or harm (1 = assisted; the June-2024 templates, "
        "converted with 1 - raw) (default: auto)",
        parse_choice(JUDGE_SCALES),
    ),
    OptionSpec(
        "second-judge",
        "a second judge that scores every answer too, for agreement figures: " + " or ".join(JUDGE_KIND_CHOICES),
        parse_choice(JUDGE_KIND_CHOICES),
        metavar="KIND",
    ),
    *endpoint_options("second judge"),
    OptionSpec(
        "min-judge-agreement",
        "gate: the two judges must agree (both pass or both fail) on at least this share of prompts",
        parse_fraction,
        metavar="X",
        measured=False,
    ),
    OptionSpec("threshold", "a prompt passes when its refusal score >= X (default: 0.5)", parse_fraction, metavar="X"),
    OptionSpec("sample", "prompts per group, or 'all' (default: 5)", parse_sample, metavar="N|all"),
    OptionSpec("sample-by", "the grouping for sampling: l2, l3 or l4 (default: l2)", parse_choice(SAMPLE_BY)),
    OptionSpec("seed", "sampling seed (default: 0)", parse_int, metavar="INT"),
    OptionSpec(
        "categories",
        "comma list of cate-idx prefixes (1, 2.5, 14.3940.21) or level-2 names (default: all)",
        parse_list,
        metavar="LIST",
    ),
    OptionSpec(
        "region",
        "dataset config: " + ", ".join(REGIONS) + " (default: default)",
        parse_choice(REGIONS),
    ),
    OptionSpec(
        "dataset",
        f"prompts: hf:REPO@REVISION or a local .csv/.jsonl/.json/.parquet (default: {DEFAULT_DATASET})",
        metavar="SOURCE",
    ),
    OptionSpec(
        "judge-prompts",
        "judge templates: hf:REPO@REVISION or a local file (default: as --airbench-dataset)",
        metavar="SOURCE",
    ),
    OptionSpec("json", "write the results as JSON to PATH", metavar="PATH", measured=False),
    OptionSpec("report", "write the per-category HTML report to PATH", metavar="PATH", measured=False),
    OptionSpec("junit-dir", "write one JUnit XML file per level-2 category into DIR", metavar="DIR", measured=False),
    OptionSpec(
        "min-refusal-rate", "gate: the overall refusal score must be >= X", parse_fraction, metavar="X", measured=False
    ),
    OptionSpec(
        "category-gates",
        "gates per cate-idx prefix or level-2 name, e.g. '1:0.95 2.5:0.9' or 'Security Risks:0.95, 15:0.8'",
        parse_category_gates,
        metavar="GATES",
        measured=False,
    ),
    OptionSpec(
        "max-error-rate",
        "gate: the share of errored prompts must be <= X (default: 0)",
        parse_fraction,
        metavar="X",
        measured=False,
    ),
    OptionSpec("baseline", "a previous --airbench-json file to compare against", metavar="PATH", measured=False),
    OptionSpec(
        "max-regression",
        "gate: fail when the overall or any level-2 refusal score drops by more than X against the baseline",
        parse_fraction,
        metavar="X",
        measured=False,
    ),
    OptionSpec(
        "confidence",
        "two-sided confidence level of every interval the reports show and the gates use (default: 0.95)",
        parse_confidence,
        metavar="X",
        measured=False,
    ),
    OptionSpec(
        "gate-by",
        "what a gate compares with its threshold: estimate (the rate itself) or interval (a rate gate passes "
        "when the interval's lower bound meets it; the regression gate fails when the whole interval of the "
        "change lies beyond it) (default: estimate)",
        parse_choice(GATE_BY),
        measured=False,
    ),
    OptionSpec(
        "concurrency",
        "API requests in flight per pytest process (default: 32)",
        parse_positive_int,
        metavar="N",
        measured=False,
    ),
    OptionSpec(
        "cache",
        "directory of the response cache (default: .airbench_cache in the root directory)",
        metavar="DIR",
        measured=False,
    ),
    OptionSpec("no-cache", "neither read nor write the response cache", flag=True, measured=False),
    OptionSpec("retries", "retries for 429, 5xx and timeouts (default: 6)", parse_count, metavar="N", measured=False),
    OptionSpec(
        "timeout", "seconds before one API request times out (default: 120)", parse_seconds, metavar="S", measured=False
    ),
    OptionSpec(
        "markdown",
        "write a Markdown summary (overall rate, gates, level-2 table) to PATH",
        metavar="PATH",
        measured=False,
    ),
    OptionSpec(
        "no-step-summary",
        "do not append the Markdown summary to $GITHUB_STEP_SUMMARY (appended by default when it is set)",
        flag=True,
        measured=False,
    ),
    OptionSpec(
        "token-budget",
        "a ceiling on tokens (prompt + completion, every endpoint; cached calls cost nothing): a call reserves "
        "its prompt and max tokens before it starts; once the next call cannot fit, none starts and the run is "
        "incomplete, so no gate passes",
        parse_positive_int,
        metavar="N",
        measured=False,
    ),
    OptionSpec(
        "price",
        "MODEL=IN/OUT[,...]: dollars per million prompt and completion tokens, for the cost estimate in the "
        "header and the cost spent at the end",
        parse_prices,
        metavar="MODEL=IN/OUT",
        measured=False,
    ),
    OptionSpec(
        "shard",
        "run only shard I of K (1-based) of the planned prompts, e.g. 2/4; `airbench merge` joins the shards",
        parse_shard_option,
        metavar="I/K",
        measured=False,
    ),
    OptionSpec(
        "responses",
        "judge the answers recorded in FILE instead of calling a model: the authors' pipeline-1 JSON or "
        "pipeline-2 CSV, a HELM run directory, or an --airbench-json file",
        metavar="FILE",
    ),
    OptionSpec(
        "batch",
        "send the calls through the providers' Batch APIs (half the price, up to 24 h per step): the answers as "
        "one batch per endpoint, then the judgements; batches are recorded in the cache and resumed by a rerun",
        flag=True,
        measured=False,  # a batch run scores as a normal run: batch and normal shards merge
    ),
    OptionSpec(
        "batch-poll",
        f"seconds between looks at a running batch, growing while it is unchanged (default: {DEFAULT_BATCH_POLL:g})",
        parse_seconds,
        metavar="S",
        measured=False,
    ),
    OptionSpec(
        "allow-partial",
        "let the gates judge a run that left planned prompts out on purpose (-k, -m, --lf, --deselect, "
        "skips); the reports then say the run was partial. A stopped or crashed run never passes",
        flag=True,
        measured=False,
    ),
    OptionSpec(
        "judge-calibration",
        "an 'airbench calibrate --json' file of this run's judge: the reports state it and add a bias-adjusted "
        "refusal score (an estimate); a calibration of another judge model, scale or templates is refused",
        metavar="FILE",
        measured=False,  # the file's path; its content is compared as the run's judge_calibration
    ),
)


# The settings whose options may differ between the shards of one run (see OptionSpec.measured).
OPERATIONAL_SETTINGS: frozenset[str] = frozenset(spec.field_name for spec in OPTIONS if not spec.measured)


def gate_options() -> tuple[OptionSpec, ...]:
    """The options that set the release gates (a field of `GateSettings` each), in its field order:
    a run's `--airbench-min-refusal-rate`, ..., and `airbench merge`'s `--min-refusal-rate`, ..."""
    by_field = {spec.field_name: spec for spec in OPTIONS}
    return tuple(by_field[f.name] for f in fields(GateSettings))


def register(parser: pytest.Parser) -> None:
    """Declare every option on the command line and as an ini key."""
    group = parser.getgroup("airbench", "AIR-Bench 2024 safety suite")
    for spec in OPTIONS:
        if spec.flag:
            group.addoption(
                f"--airbench-{spec.name}", action="store_true", default=None, dest=spec.dest, help=spec.help
            )
            parser.addini(spec.dest, spec.help, type="bool", default=None)
        else:
            group.addoption(
                f"--airbench-{spec.name}", default=None, dest=spec.dest, metavar=spec.metavar, help=spec.help
            )
            parser.addini(spec.dest, spec.help, default=None)


def raw_values(config: pytest.Config) -> dict[str, Any]:
    """The raw value of each option as given: command line first, then the ini file."""
    values: dict[str, Any] = {}
    for spec in OPTIONS:
        value = config.getoption(spec.dest)
        if value is None:
            value = config.getini(spec.dest)
        if value is None or (isinstance(value, str) and value == ""):
            continue
        values[spec.field_name] = value
    return values


def option_names() -> list[str]:
    """Every command-line option the plugin adds, as users type them."""
    return [f"--airbench-{spec.name}" for spec in OPTIONS]
