"""The options: declared once, validated once, resolved into one `Settings`.

One module per concern: `declarations` (one `OptionSpec` per `--airbench-*` option, and their
registration with pytest), `validators` (the `parse_*` functions every option and command checks its
values with), `settings` (the resolved `Settings` and the views a run takes of it) and `resolve` (raw
values to `Settings`: `resolve_settings`, the one place where option values are read and validated).
Every public name is importable from here.
"""

from __future__ import annotations

from airbench_plugin.endpoints import resolve_provider as resolve_provider  # re-exported: its first home
from airbench_plugin.options.declarations import (
    ENDPOINT_OPTIONS,
    OPERATIONAL_SETTINGS,
    OPTIONS,
    EndpointOption,
    OptionSpec,
    endpoint_options,
    gate_options,
    option_names,
    raw_values,
    register,
)
from airbench_plugin.options.resolve import (
    check_judges,
    check_values_given_apart,
    judge_endpoint,
    parse_values,
    resolve_settings,
)
from airbench_plugin.options.settings import (
    DEFAULT_BATCH_POLL,
    DEFAULT_DATASET,
    DEFAULT_JUDGE_MODEL,
    DEFAULT_TARGET_MAX_TOKENS,
    HELM_REVISION,
    HF_REPO,
    JUDGE_KIND_CHOICES,
    JUDGE_SCALES,
    PROVIDERS,
    REGIONS,
    SAMPLE_BY,
    Settings,
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
    parse_number,
    parse_positive_int,
    parse_sample,
    parse_seconds,
    parse_shard_option,
    parse_suffix,
    parse_temperature,
    parse_text,
    parse_url,
)

__all__ = [
    "DEFAULT_BATCH_POLL",
    "DEFAULT_DATASET",
    "DEFAULT_JUDGE_MODEL",
    "DEFAULT_TARGET_MAX_TOKENS",
    "ENDPOINT_OPTIONS",
    "HELM_REVISION",
    "HF_REPO",
    "JUDGE_KIND_CHOICES",
    "JUDGE_SCALES",
    "OPERATIONAL_SETTINGS",
    "OPTIONS",
    "PROVIDERS",
    "REGIONS",
    "SAMPLE_BY",
    "EndpointOption",
    "OptionSpec",
    "Settings",
    "check_judges",
    "check_values_given_apart",
    "endpoint_options",
    "gate_options",
    "judge_endpoint",
    "option_names",
    "parse_category_gates",
    "parse_choice",
    "parse_confidence",
    "parse_count",
    "parse_env_name",
    "parse_fraction",
    "parse_int",
    "parse_list",
    "parse_number",
    "parse_positive_int",
    "parse_sample",
    "parse_seconds",
    "parse_shard_option",
    "parse_suffix",
    "parse_temperature",
    "parse_text",
    "parse_url",
    "parse_values",
    "raw_values",
    "register",
    "resolve_provider",
    "resolve_settings",
]
