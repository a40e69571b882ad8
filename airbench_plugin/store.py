"""The on-disk cache of completed calls: every finished response and judgement, kept as it arrives.

Keys hash everything that changes a call's output (provider, endpoint, model, messages,
generation settings, extra body parameters, and for a judge's call the judge's kind) and
nothing secret. `diskcache` stores entries in SQLite transactions, so
several xdist workers can write at once and a run killed at any moment loses only calls that
had not finished.

A process about to make a call first claims its key. While another live process holds the claim,
the call is on its way there and the answer will land in the store: wait for it rather than pay
twice (xdist's worksteal can hand a case to a second worker while the first is still calling).
A claim names its holder (host and pid) and expires unless renewed, so one left behind by a
killed process never blocks a rerun: at once on the same host, after `CLAIM_TTL` elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import diskcache

from airbench_plugin.providers.base import ChatRequest, Completion

CACHE_FORMAT = 1
CLAIM_TTL = 30.0  # seconds a claim outlives its last renewal; holders renew it while their call runs


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
    # surrogatepass: a lone surrogate (an undecodable byte of a command line) still hashes; valid
    # text hashes exactly as before, so existing caches stay valid.
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
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
        # Claims live apart, so that the store's length counts answers only.
        self._claims = diskcache.Cache(str(self.directory / "claims"), eviction_policy="none")
        self._holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex})

    def get(self, key: str) -> Completion | None:
        value: Any = self._cache.get(key)
        if not isinstance(value, str):
            return None
        return Completion.from_json(json.loads(value))

    def put(self, key: str, completion: Completion) -> None:
        self._cache.set(key, json.dumps(completion.to_json(), ensure_ascii=False))

    def claim(self, key: str, ttl: float = CLAIM_TTL) -> bool:
        """Take the right to make the call `key`; False while another live holder has it."""
        if self._claims.add(key, self._holder, expire=ttl):
            return True
        with self._claims.transact():
            held: Any = self._claims.get(key)
            if held is None or _abandoned(held):
                self._claims.set(key, self._holder, expire=ttl)
                return True
        return False

    def renew(self, key: str, ttl: float = CLAIM_TTL) -> None:
        """Keep this holder's claim on `key` alive for another `ttl` seconds."""
        self._claims.touch(key, expire=ttl)

    def release(self, key: str) -> None:
        """Give up this holder's claim on `key` (the answer is stored, or the call failed)."""
        with self._claims.transact():
            if self._claims.get(key) == self._holder:
                self._claims.delete(key)

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()
        self._claims.close()


def _abandoned(held: Any) -> bool:
    """Whether a claim's holder is a process of this host that no longer exists."""
    try:
        holder = json.loads(held)
        if holder["host"] != socket.gethostname():
            return False
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, KeyError, TypeError):
        return False  # alive under another user, or not ours to judge: wait for the expiry
    return False
