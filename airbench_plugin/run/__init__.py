"""The run: one session object per pytest process and what it builds.

One module per concern: `session` (`AirbenchRun`: settings, the sampled cases, start-up checks, the
engine, and the finish that settles the plan, gates and verdict), `cases` (one test's case, record
and messages), `outputs` (the typed results every output shows, and where they go), `finish` (the
controller's end: outputs written, the verdict final), `spend` (the calls and tokens a run may spend
and did) and `header` (the lines under pytest's header). Every public name is importable from here.
"""

from __future__ import annotations

from airbench_plugin.run.cases import (
    CASE_ARG,
    PREVIEW,
    case_of,
    error_message,
    failure_message,
    iter_cases,
    record,
)
from airbench_plugin.run.finish import finish_and_write
from airbench_plugin.run.header import header_lines, judges_description, resolution
from airbench_plugin.run.outputs import Revisions, build_results, output_paths, sent_settings
from airbench_plugin.run.session import RUN_KEY, AirbenchRun
from airbench_plugin.run.spend import endpoint_models, max_calls, spent_lines, spent_tokens, token_estimates

__all__ = [
    "CASE_ARG",
    "PREVIEW",
    "RUN_KEY",
    "AirbenchRun",
    "Revisions",
    "build_results",
    "case_of",
    "endpoint_models",
    "error_message",
    "failure_message",
    "finish_and_write",
    "header_lines",
    "iter_cases",
    "judges_description",
    "max_calls",
    "output_paths",
    "record",
    "resolution",
    "sent_settings",
    "spent_lines",
    "spent_tokens",
    "token_estimates",
]
