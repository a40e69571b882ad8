"""A run's batch mode in one process: who drives the batches, and waiting until a step is settled.

One process of a run drives: it holds a lease in the cache (a claim, renewed while it works,
released by its death), submits each step's batches, collects them into the cache and marks the
step settled in the journal. Every process (xdist workers included) runs its tests as usual,
and each call of a batched step first waits for that mark: then its answer is in the cache, or
it was not batched and is made as an ordinary call. A driver that dies leaves its lease behind;
the first process to look takes it over and resumes from the journal, so no batch is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airbench_plugin.batch.api import BatchAPI
from airbench_plugin.batch.driver import BatchItem, StepOutcome, StepProgress, Submitter
from airbench_plugin.batch.journal import STEPS, Journal, Step
from airbench_plugin.providers.base import ProviderError
from airbench_plugin.store import CLAIM_TTL, CallStore

LEASE = "airbench-batch-driver:"  # + the run's id: the claim key of the driving process


@dataclass
class EndpointBatch:
    """One endpoint's calls for a step, and how to learn from the lines it refused."""

    api: BatchAPI
    role: str
    model: str
    items: Sequence[BatchItem]
    # A 400 that refused a setting (a reasoning model's max_tokens): True when learned, so
    # the refused lines go again in one more batch, reshaped, as a normal run would send them.
    adapt: Callable[[ProviderError], bool] = lambda _e: False
    on_tokens: Callable[[int, int], None] = lambda _p, _c: None


Plan = Callable[[Step, frozenset[str] | None], Awaitable[list[EndpointBatch]]]
Fallback = Callable[[Sequence[str]], Awaitable[list[str]]]  # ordinary calls for these keys; the keys stored


async def _no_fallback(_keys: Sequence[str]) -> list[str]:
    return []


@dataclass
class BatchSession:
    """Batch mode for the engine of one process."""

    journal: Journal
    store: CallStore
    run_id: str
    poll: float
    plan: Plan  # the engine's: what each endpoint sends for a step (only keys in the set, when given)
    allow: Callable[[Sequence[BatchItem]], Sequence[BatchItem]] = lambda items: items
    # The calls a step's batches did not answer, made as ordinary calls before the step is settled,
    # so the next step sees every answer and the tests find them all in the cache.
    fallback: Fallback = _no_fallback
    progress: StepProgress = field(default_factory=StepProgress)
    notes: list[str] = field(default_factory=list)
    delivered: dict[Step, frozenset[str]] = field(default_factory=dict)
    roles: dict[Step, frozenset[str]] = field(default_factory=dict)  # the endpoints each step batches
    _driver: asyncio.Task[None] | None = None
    # One watcher per step and process reads the journal; every waiting call waits on its events.
    _watchers: dict[Step, asyncio.Task[None]] = field(default_factory=dict)
    _planned: dict[Step, asyncio.Event] = field(default_factory=dict)
    _done: dict[Step, asyncio.Event] = field(default_factory=dict)

    async def settled(self, step: Step, role: str) -> frozenset[str]:
        """Wait until `step` is settled for `role`'s endpoint; the keys its batches delivered to the cache
        in this run. An endpoint the step does not batch (it cannot) waits only for the step's plan."""
        if step in self.delivered:
            return self.delivered[step]
        if step not in self._watchers:
            self._planned[step], self._done[step] = asyncio.Event(), asyncio.Event()
            self._watchers[step] = asyncio.ensure_future(self._watch(step))
        await self._planned[step].wait()
        if step not in self.delivered and role not in self.roles.get(step, ()):
            return frozenset()
        await self._done[step].wait()
        return self.delivered[step]

    async def _watch(self, step: Step) -> None:
        """Read the journal until `step` is settled; take the lease over from a driver that died."""
        while True:
            entry = (await asyncio.to_thread(self.journal.run_state, self.run_id)).get(step)
            if isinstance(entry, dict):
                if step not in self.roles:
                    self.roles[step] = frozenset(str(role) for role in entry.get("roles", ()))
                    self._planned[step].set()
                if "delivered" in entry:
                    self.delivered[step] = frozenset(str(key) for key in entry["delivered"])
                    self._planned[step].set()
                    self._done[step].set()
                    return
            idle = self._driver is None or self._driver.done()
            if idle and await asyncio.to_thread(self.store.claim, LEASE + self.run_id):
                self._driver = asyncio.ensure_future(self._drive())
            await asyncio.sleep(self.poll)

    def start(self) -> None:
        """Begin driving at once (the batches need not wait for the first test)."""
        if self._driver is None and self.store.claim(LEASE + self.run_id):
            self._driver = asyncio.ensure_future(self._drive())

    async def _drive(self) -> None:
        renewal = asyncio.ensure_future(self._renew())
        try:
            for step in STEPS:
                entry = self.journal.run_state(self.run_id).get(step)
                if isinstance(entry, dict) and "delivered" in entry:
                    continue  # settled by a driver before this one
                delivered: list[str] = []
                notes: list[str] = []
                try:
                    await self._step(step, delivered, notes)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # never leave the tests waiting: they make their calls
                    notes.append(f"batch mode stopped at the {step} ({type(exc).__name__}: {exc}); calls made as usual")
                self.notes.extend(notes)
                self.journal.settle(self.run_id, step, delivered, notes)
        finally:
            renewal.cancel()
            with contextlib.suppress(Exception):
                self.store.release(LEASE + self.run_id)

    async def _step(self, step: Step, delivered: list[str], notes: list[str]) -> None:
        self.progress.step = step
        retry: frozenset[str] | None = None
        planned: list[str] = []
        # Later rounds only for lines a learned setting lets go again: a reasoning model refuses
        # max_tokens, then the temperature, each learned from one round's error lines.
        for _round in range(3):
            endpoints = await self.plan(step, retry)
            if retry is None:  # the processes waiting on this step learn which endpoints it batches
                self.journal.begin(self.run_id, step, [e.role for e in endpoints if e.items])
                planned = [item.key for endpoint in endpoints for item in endpoint.items]
            outcomes = await asyncio.gather(*(self._submit(step, endpoint) for endpoint in endpoints))
            again: set[str] = set()
            for endpoint, outcome in zip(endpoints, outcomes, strict=True):
                delivered.extend(outcome.stored)
                notes.extend(outcome.notes)
                learned = [key for key, error in outcome.failed.items() if endpoint.adapt(error)]
                if learned:
                    again.update(key for key, error in outcome.failed.items() if error.status == 400)
            if not again:
                break
            retry = frozenset(again)
        stored = set(delivered)
        missing = [key for key in planned if key not in stored]
        if missing:
            delivered.extend(await self.fallback(missing))

    async def _submit(self, step: Step, endpoint: EndpointBatch) -> StepOutcome:
        submitter = Submitter(
            api=endpoint.api,
            journal=self.journal,
            store=self.store,
            role=endpoint.role,
            model=endpoint.model,
            step=step,
            poll=self.poll,
            progress=self.progress,
            on_tokens=endpoint.on_tokens,
            allow=self.allow,
        )
        return await submitter.run(endpoint.items)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(CLAIM_TTL / 3)
            await asyncio.to_thread(self.store.renew, LEASE + self.run_id)

    def snapshot(self) -> dict[str, Any]:
        return self.progress.to_json()

    async def aclose(self) -> None:
        """Stop driving (the batches run on at the provider: the journal has them)."""
        if self._driver is not None and not self._driver.done():
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._driver
