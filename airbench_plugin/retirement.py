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
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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


def _named(role: Role, model: str) -> str:
    """`the judge model X`, `the model under test X` (not `the model under test model X`)."""
    return f"the {ROLE_NAMES[role]} {model}" if role == "target" else f"the {ROLE_NAMES[role]} model {model}"


def gone_message(role: Role, model: str, where: str, reason: str, option_prefix: str) -> str:
    """The sentence that stops a run whose `role` endpoint answered that `model` is gone; `reason`: its words."""
    return (
        f"AIR-Bench stopped: {_named(role, model)} is not served by {where} ({reason}). {way_out(role, option_prefix)}"
    )


def shut_down_message(role: Role, model: str, where: str, date: dt.date, option_prefix: str) -> str:
    """The sentence that stops a run before any call: the endpoint announced `model` shut down on `date`."""
    return (
        f"AIR-Bench stopped before any call: {_named(role, model)} was shut down on "
        f"{date.isoformat()}, as {where} says. {way_out(role, option_prefix)}"
    )


# --- shutdown dates announced ahead: `GET {base}/models/{id}` ---------------------------------------

LOOKUP_TIMEOUT = 2.0  # seconds for every endpoint's look-up together: start-up must not wait on it
MAX_MODEL_OBJECT = 64 * 1024  # bytes read of a model object; more is not one
_EARLIEST, _LATEST = dt.date(2020, 1, 1), dt.date(2100, 1, 1)  # a shutdown date outside these is not one


@dataclass(frozen=True)
class Lookup:
    """One endpoint's model look-up: where to ask and with which key (never shown anywhere)."""

    role: Role
    model: str
    url: str  # the model object's URL: `{base}/models/{id}`
    key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Shutdown:
    """A shutdown date an endpoint announced for the model of `role`."""

    role: Role
    model: str
    date: dt.date

    def days_left(self, today: dt.date) -> int:
        return (self.date - today).days

    def header_line(self, today: dt.date) -> str:
        """`judge gpt-4o-2024-08-06: shuts down 2027-01-14 (42 days)`."""
        days = self.days_left(today)
        left = "today" if days == 0 else f"{days} day{'s' if days != 1 else ''}"
        return f"{ROLE_NAMES[self.role]} {self.model}: shuts down {self.date.isoformat()} ({left})"

    def to_json(self) -> dict[str, str]:
        return {"model": self.model, "shutdown_date": self.date.isoformat()}


def model_url(base_url: str, models_path: str, model: str) -> str:
    """`GET` this for `model`'s object: the base URL, the provider's models path, the id escaped."""
    return f"{base_url.rstrip('/')}{models_path}/{urllib.parse.quote(model, safe='')}"


def parse_shutdown_date(value: object) -> dt.date | None:
    """A model object's `shutdown_date`: `YYYY-MM-DD`, an ISO date-time or Unix seconds; None when it is none
    of them or not a plausible date (the server's word is input: a hostile value is ignored, never a crash)."""
    date: dt.date | None = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            date = dt.date.fromisoformat(value)
        except ValueError:
            try:
                date = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
            except ValueError:
                return None
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 4_102_444_800:
        date = dt.datetime.fromtimestamp(value, dt.timezone.utc).date()  # Unix seconds before 2100
    if date is None or not _EARLIEST <= date < _LATEST:
        return None
    return date


def read_shutdown(body: bytes, model: str) -> dt.date | None:
    """The `shutdown_date` of a model object answered for `model`; None when there is none or it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("id", model) != model:
        return None
    return parse_shutdown_date(data.get("shutdown_date"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: the key would go to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_shutdown(lookup: Lookup, timeout: float = LOOKUP_TIMEOUT) -> dt.date | None:
    """One look-up; None on any failure (unsupported, 404, a refused connection, garbage)."""
    headers = {"Accept": "application/json"}
    if lookup.key:
        headers["Authorization"] = f"Bearer {lookup.key}"
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(lookup.url, headers=headers), timeout=timeout) as response:
            if response.status != 200:
                return None
            return read_shutdown(response.read(MAX_MODEL_OBJECT + 1)[:MAX_MODEL_OBJECT], lookup.model)
    except Exception:  # every failure means the same: no date announced
        return None


def look_up_shutdowns(lookups: Sequence[Lookup], timeout: float = LOOKUP_TIMEOUT) -> list[Shutdown]:
    """The shutdown dates the endpoints announce, asked all at once and waited for `timeout` seconds at most.

    A look-up still running then is abandoned (its thread is a daemon): start-up goes on without it.
    """
    found: dict[int, dt.date] = {}

    def ask(index: int, lookup: Lookup) -> None:
        date = fetch_shutdown(lookup, timeout)
        if date is not None:
            found[index] = date

    threads = [
        threading.Thread(target=ask, args=(index, lookup), name="airbench-model-lookup", daemon=True)
        for index, lookup in enumerate(lookups)
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [Shutdown(lookups[i].role, lookups[i].model, date) for i, date in sorted(dict(found).items())]


def check_not_shut_down(shutdowns: Sequence[Shutdown], today: dt.date, where: Mapping[Role, tuple[str, str]]) -> None:
    """Raise ShutDown with one sentence when a model's announced date has passed; `where`: URL and option prefix."""
    for shutdown in shutdowns:
        if shutdown.days_left(today) < 0:
            url, prefix = where[shutdown.role]
            raise ShutDown(shut_down_message(shutdown.role, shutdown.model, url, shutdown.date, prefix))


class ShutDown(Exception):
    """A model of the run was shut down already; the message is one sentence for the user."""


def today() -> dt.date:
    """Today's date in UTC, as providers date their shutdowns."""
    return dt.datetime.now(dt.timezone.utc).date()
