"""The on-disk cache of completed calls: every finished response and judgement, kept as it arrives.

Keys hash everything that changes a call's output (provider, endpoint, model, messages,
generation settings, extra body parameters, and for a judge's call the judge's kind) and
nothing secret. `diskcache` stores entries in SQLite transactions, so
several xdist workers can write at once and a run killed at any moment loses only calls that
had not finished.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import diskcache

from airbench_plugin.providers.base import ChatRequest, Completion

CACHE_FORMAT = 1


def call_key(
    *,
    provider: str,
    base_url: str | None,
    model: str,
    messages: Sequence[Mapping[str, str]],
    temperature: float,
    max_tokens: int,
    extra: Mapping[str, Any] | None = None,
    judge: str | None = None,
) -> str:
    """A stable hash of one chat call's inputs (never the API key).

    `extra` and `judge` enter the hash only when given, so the model under test's keys stay
    those of earlier versions and its cached answers stay valid.
    """
    payload: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "provider": provider,
        "base_url": base_url,
        "model": model,
        "messages": [dict(m) for m in messages],
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    if extra:
        payload["extra"] = dict(extra)
    if judge is not None:
        payload["judge"] = judge
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def request_key(provider: str, base_url: str | None, request: ChatRequest, judge: str | None = None) -> str:
    """The cache key of `request` sent through `provider` at `base_url`; `judge` is the asking judge's kind."""
    return call_key(
        provider=provider,
        base_url=base_url,
        model=request.model,
        messages=request.messages,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        extra=request.extra,
        judge=judge,
    )


class CallStore:
    """Completions by call key, in a directory shared by every process of a run."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        # No size limit and no eviction: an entry is a paid-for API call.
        self._cache = diskcache.Cache(str(self.directory), size_limit=2**62, eviction_policy="none")

    def get(self, key: str) -> Completion | None:
        value: Any = self._cache.get(key)
        if not isinstance(value, str):
            return None
        return Completion.from_json(json.loads(value))

    def put(self, key: str, completion: Completion) -> None:
        self._cache.set(key, json.dumps(completion.to_json(), ensure_ascii=False))

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()
