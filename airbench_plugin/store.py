"""The on-disk cache of completed calls: every finished response and judgement, kept as it arrives.

Keys hash everything that changes a call's output (provider, endpoint, model, messages,
generation settings, extra body parameters, and for a judge's call the judge's kind) and
nothing secret. `diskcache` stores entries in SQLite transactions, so
several xdist workers can write at once and a run killed at any moment loses only calls that
had not finished.

Storage can fail: a full disk, a corrupt entry, a damaged database. None of it stops a run: an
entry that cannot be read is a miss (the call is made again), a write that fails leaves the
answer in memory for this run, and `StoreProblems` counts both for one warning line at the end.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache

from airbench_plugin.providers.base import ChatRequest, Completion
from airbench_plugin.text import clip

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


@dataclass
class StoreProblems:
    """What went wrong with the store in one process: counts, and the first reason of each kind."""

    read_errors: int = 0
    write_errors: int = 0
    read_reason: str | None = None
    write_reason: str | None = None

    def read_failed(self, exc: BaseException) -> None:
        self.read_errors += 1
        self.read_reason = self.read_reason or _reason(exc)

    def write_failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        self.write_reason = self.write_reason or _reason(exc)

    def to_json(self) -> dict[str, Any]:
        return {
            "read_errors": self.read_errors,
            "write_errors": self.write_errors,
            "read_reason": self.read_reason,
            "write_reason": self.write_reason,
        }

    @classmethod
    def merged(cls, snapshots: Iterable[Mapping[str, Any]]) -> StoreProblems:
        """The problems of every process of a run, from their `to_json()`."""
        total = cls()
        for data in snapshots:
            total.read_errors += int(data.get("read_errors") or 0)
            total.write_errors += int(data.get("write_errors") or 0)
            total.read_reason = total.read_reason or data.get("read_reason")
            total.write_reason = total.write_reason or data.get("write_reason")
        return total

    def warnings(self, directory: str | Path) -> list[str]:
        """At most one line per kind of problem, for the end of the run."""
        lines = []
        if self.read_errors:
            lines.append(
                f"airbench: WARNING: {_count(self.read_errors, 'cache entry', 'cache entries')} in "
                f"{str(directory)!r} could not be read ({self.read_reason}); they were treated as missing "
                "and asked again."
            )
        if self.write_errors:
            lines.append(
                f"airbench: WARNING: {_count(self.write_errors, 'cache write', 'cache writes')} to "
                f"{str(directory)!r} failed ({self.write_reason}); the run went on with the answers it had, "
                "but a rerun will pay for those again."
            )
        return lines


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _reason(exc: BaseException) -> str:
    return clip(f"{type(exc).__name__}: {exc}".strip().splitlines()[0], 200)


class CallStore:
    """Completions by call key, in a directory shared by every process of a run.

    Only opening the store raises (the run then stops with one sentence, before any call);
    every later failure is recorded in `problems` and the run goes on.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.problems = StoreProblems()
        self._unreadable: set[str] = set()  # keys already counted, so a retried look-up counts once
        # No size limit and no eviction: an entry is a paid-for API call.
        self._cache = diskcache.Cache(str(self.directory), size_limit=2**62, eviction_policy="none")
        # Claims live apart, so that the store's length counts answers only.
        self._claims = diskcache.Cache(str(self.directory / "claims"), eviction_policy="none")
        self._holder = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex})

    def get(self, key: str) -> Completion | None:
        """The stored completion, or None: never stored, or stored but unreadable (a miss, counted)."""
        try:
            value: Any = self._cache.get(key)
            if value is None:
                return None
            if not isinstance(value, str):
                raise TypeError(f"a {type(value).__name__} where a JSON text belongs")
            return Completion.from_json(json.loads(value))
        except Exception as exc:  # sqlite, the file system, JSON and the shape all raise their own types
            if key not in self._unreadable:
                self._unreadable.add(key)
                self.problems.read_failed(exc)
            return None

    def put(self, key: str, completion: Completion) -> None:
        """Store `completion`; a failure (a full disk, a damaged database) is counted, never raised."""
        try:
            self._cache.set(key, json.dumps(completion.to_json(), ensure_ascii=False))
        except Exception as exc:
            self.problems.write_failed(exc)

    def claim(self, key: str, ttl: float = CLAIM_TTL) -> bool:
        """Take the right to make the call `key`; False while another live holder has it.

        A claim that cannot be written is taken anyway: paying twice is better than waiting forever.
        """
        try:
            if self._claims.add(key, self._holder, expire=ttl):
                return True
            with self._claims.transact():
                held: Any = self._claims.get(key)
                if held is None or _abandoned(held):
                    self._claims.set(key, self._holder, expire=ttl)
                    return True
        except Exception as exc:
            self.problems.write_failed(exc)
            return True
        return False

    def renew(self, key: str, ttl: float = CLAIM_TTL) -> None:
        """Keep this holder's claim on `key` alive for another `ttl` seconds."""
        try:
            self._claims.touch(key, expire=ttl)
        except Exception as exc:
            self.problems.write_failed(exc)

    def release(self, key: str) -> None:
        """Give up this holder's claim on `key` (the answer is stored, or the call failed)."""
        try:
            with self._claims.transact():
                if self._claims.get(key) == self._holder:
                    self._claims.delete(key)
        except Exception as exc:
            self.problems.write_failed(exc)

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        for cache in (self._cache, self._claims):
            try:
                cache.close()
            except Exception as exc:
                self.problems.write_failed(exc)


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
