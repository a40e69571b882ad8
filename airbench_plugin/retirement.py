"""A model that is gone: what an endpoint's answer says about it, and the one sentence that stops a run.

Providers retire models: OpenAI shut down `gpt-4o-2024-05-13` (the benchmark's judge) and
`gpt-4-turbo` on 2026-10-23. A call to a retired or unknown model is answered 404: OpenAI's body
has `"code": "model_not_found"` and says "The model `X` has been deprecated, learn more here: ..."
or "The model `X` does not exist or you do not have access to it."; Together's has
`"code": "model_not_available"`. Every later call would be answered the same, so the first such
answer stops the run with one sentence that names the role, the model and the way out.
"""

from __future__ import annotations

import datetime as dt

from airbench_plugin.providers.base import ProviderError
from airbench_plugin.roles import ROLE_NAMES, Role

GONE_CODES = frozenset({"model_not_found", "model_not_available"})
_GONE_PHRASES = ("does not exist or you do not have access to it", "has been deprecated", "Unable to access model")


def model_gone(error: ProviderError) -> bool:
    """Whether `error` says the model is retired or unknown at that endpoint (a 404 about the model)."""
    if error.status != 404:
        return False
    return error.code in GONE_CODES or any(phrase in error.message for phrase in _GONE_PHRASES)


def way_out(role: Role, option_prefix: str) -> str:
    """What to do when the model of `role` is gone; `option_prefix` is its options' (`--airbench-judge-`)."""
    if role == "target":
        return f"Pass {option_prefix}model with a model the endpoint serves, then run again."
    return (
        f"Pass {option_prefix}model with a model the endpoint serves (nothing replaces a judge behind your back), "
        "and measure how far its scores move from the official judge's with `airbench calibrate --judge-model "
        "NAME` first (see the README's opening section)."
    )


def gone_message(role: Role, model: str, where: str, reason: str, option_prefix: str) -> str:
    """The sentence that stops a run whose `role` endpoint answered that `model` is gone; `reason`: its words."""
    return (
        f"AIR-Bench stopped: the {ROLE_NAMES[role]} model {model} is not served by {where} ({reason}). "
        f"{way_out(role, option_prefix)}"
    )


def shut_down_message(role: Role, model: str, where: str, date: dt.date, option_prefix: str) -> str:
    """The sentence that stops a run before any call: the endpoint announced `model` shut down on `date`."""
    return (
        f"AIR-Bench stopped before any call: the {ROLE_NAMES[role]} model {model} was shut down on "
        f"{date.isoformat()}, as {where} says. {way_out(role, option_prefix)}"
    )
