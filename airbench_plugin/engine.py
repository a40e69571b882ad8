"""The only place that waits on the network: the loop, the cases' calls and the cache.

An `Engine` owns one asyncio event loop in a background thread. Tests are synchronous: they
`submit` cases (many at once, so up to `concurrency` requests are in flight) and block on the
future of their own case. Each case is one call to the model under test and, unless the answer
is empty or the provider refused, one call to each judge, all judges at once. The engine knows
judges only through `Judge`: they build the requests and read the replies. `submit_answer` judges a
recorded answer without the model under test (`airbench calibrate`, whose engine has no target).

Beside it: `caller.py` makes one call (slots, pace, budget, retries, the breaker), `scoring.py`
says how a case is scored, and `batch/planner.py` says what batch mode sends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from airbench_plugin.batch.journal import Journal
from airbench_plugin.batch.planner import BatchPlanner, batch_step
from airbench_plugin.batch.session import BatchSession
from airbench_plugin.breaker import CircuitBreaker
from airbench_plugin.caller import BACKOFF_BASE, Caller, EngineStats, paid_tokens
from airbench_plugin.dataset import Case
from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.judges.base import JudgeParseError, JudgeReading
from airbench_plugin.pacing import EndpointPacer
from airbench_plugin.providers.base import ChatRequest, Completion
from airbench_plugin.providers.quirks import RequestShape
from airbench_plugin.scoring import (
    CaseError,
    ScoredAnswer,
    empty_at_length_message,
    score_judged,
    score_unjudged,
    target_request,
)
from airbench_plugin.slots import OrderedSlots
from airbench_plugin.store import CLAIM_TTL, CallStore, request_key

DRAIN_TIMEOUT = 8.0  # seconds a closing engine waits for calls other workers wait for
CLAIM_POLL = 0.05  # seconds between looks at the store while another process makes a call


@dataclass(frozen=True)
class BatchSetup:
    """Batch mode's settings for one process: the run it belongs to and how often it looks."""

    run_id: str  # the same in every process of the run (xdist workers): they share its steps
    poll: float


class Engine:
    """Evaluates cases concurrently on a private event loop; safe to call from the test thread."""

    def __init__(
        self,
        *,
        target: Endpoint | None,
        judges: Sequence[JudgeEndpoint],
        system_prompt: str | None,
        prompt_suffix: str = "",
        concurrency: int,
        retries: int,
        store: CallStore | None,
        backoff_base: float = BACKOFF_BASE,
        stall_timeout: float = 120.0,
        token_budget: int | None = None,
        batch: BatchSetup | None = None,
    ) -> None:
        self.target = target
        self.batch_setup = batch if store is not None else None
        self.batch: BatchSession | None = None
        self._planner: BatchPlanner | None = None
        self.judges = tuple(judges)
        self.system_prompt = system_prompt
        self.prompt_suffix = prompt_suffix
        self.concurrency = concurrency
        self.store = store
        self.stats = EngineStats()
        if store is not None:
            self.stats.store = store.problems  # counted by the store, published with the stats
        self._futures: dict[tuple[str, int], concurrent.futures.Future[ScoredAnswer]] = {}
        self._detached: set[asyncio.Future[Completion]] = set()  # calls of cancelled cases, still out
        self._order = itertools.count()
        self._loop = asyncio.new_event_loop()
        # Sync custom targets and cache writes run in threads: as many as there may be calls in
        # flight, not asyncio's default of a few per core.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency + 4, thread_name_prefix="airbench"
        )
        self._loop.set_default_executor(self._executor)
        self._thread = threading.Thread(target=self._loop.run_forever, name="airbench-engine", daemon=True)
        self._thread.start()
        slots = self._run(self._make_slots()).result()
        self.caller = Caller(
            stats=self.stats,
            slots=slots,
            retries=retries,
            backoff_base=backoff_base,
            stall_timeout=stall_timeout,
            token_budget=token_budget,
        )
        self.breaker: CircuitBreaker = self.caller.breaker
        for endpoint in self.endpoints:
            self.shape(endpoint)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint this engine calls: the model under test (when there is one), then each judge's."""
        target = () if self.target is None else (self.target,)
        return (*target, *(judging.endpoint for judging in self.judges))

    async def _make_slots(self) -> OrderedSlots:
        return OrderedSlots(self.concurrency)

    def shape(self, endpoint: Endpoint) -> RequestShape:
        """How `endpoint` wants its generation settings sent, as learned from its 400 answers."""
        return self.caller.shape(endpoint)

    def pacer(self, endpoint: Endpoint) -> EndpointPacer:
        """The pacing of `endpoint`: one per endpoint, so the model under test and the judge keep apart."""
        return self.caller.pacer(endpoint)

    def _target_request(self, case: Case) -> ChatRequest:
        """The call to the model under test for `case`."""
        assert self.target is not None
        return target_request(self.target, case.prompt + self.prompt_suffix, self.system_prompt)

    def _run(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # --- the test thread's side -----------------------------------------------------------------

    def submit(self, case: Case) -> concurrent.futures.Future[ScoredAnswer]:
        """Start evaluating `case` unless it already is; returns its future."""
        key = (case.cate_idx, case.ordinal)
        future = self._futures.get(key)
        if future is None:
            future = self._run(self._evaluate(case, next(self._order)))
            self._futures[key] = future
        return future

    def cancel(self, case: Case) -> None:
        """Stop a started case that this process will not run after all; a finished one stays."""
        future = self._futures.get((case.cate_idx, case.ordinal))
        if future is not None and not future.done():
            future.cancel()
            del self._futures[(case.cate_idx, case.ordinal)]

    def scored(self, case: Case) -> ScoredAnswer:
        """Block until `case` is scored; raises CaseError."""
        return self.submit(case).result()

    def submit_answer(self, case: Case, answer: str) -> concurrent.futures.Future[tuple[JudgeReading, ...]]:
        """Start every judge on a recorded `answer` to `case` (no call to the model under test); its
        future holds their readings, first judge first, or raises CaseError."""
        return self._run(self._judge_recorded(case, answer, next(self._order)))

    def start_batch(self, cases: Sequence[Case]) -> None:
        """Batch mode: these cases' calls go as batches, answers first; each test then waits for its own."""
        if self.batch_setup is None or self.batch is not None:
            return
        self._run(self._start_batch(cases)).result()

    async def _start_batch(self, cases: Sequence[Case]) -> None:
        assert self.store is not None and self.batch_setup is not None
        self._planner = planner = BatchPlanner(
            target=self.target,
            judges=self.judges,
            cases=cases,
            store=self.store,
            caller=self.caller,
            request_for=self._target_request,
            call_and_store=self._call_and_store,
        )
        self.batch = BatchSession(
            journal=Journal(self.store.directory),
            store=self.store,
            run_id=self.batch_setup.run_id,
            poll=self.batch_setup.poll,
            plan=planner.plan,
            allow=planner.allow,
            fallback=planner.fallback,
        )
        self.stats.batch = self.batch.progress
        self.batch.start()

    def close(self) -> None:
        """Cancel what is still pending, close connections and stop the loop."""
        for future in self._futures.values():
            future.cancel()
        if self._loop.is_running():
            with contextlib.suppress(concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                self._run(self._shutdown()).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running():
            self._loop.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.store is not None:
            self.store.close()

    async def _shutdown(self) -> None:
        if self._detached:
            # Other workers wait for these answers: let them land in the store first.
            await asyncio.wait(set(self._detached), timeout=DRAIN_TIMEOUT)
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.batch is not None:
            await self.batch.aclose()  # its batches run on at the provider: the journal has them
        if self._planner is not None:
            await self._planner.aclose()
        for endpoint in {id(e.provider): e for e in self.endpoints}.values():
            await endpoint.provider.aclose()

    # --- the loop's side ------------------------------------------------------------------------

    async def _evaluate(self, case: Case, order: int = 0) -> ScoredAnswer:
        try:
            return await self._score(case, order)
        finally:
            self.stats.cases_done += 1

    async def _score(self, case: Case, order: int = 0) -> ScoredAnswer:
        if self.target is None:
            raise CaseError("this engine has no model under test: it judges recorded answers only")
        answer = await self._call(self.target, self._target_request(case), order=order)
        unjudged = score_unjudged(answer, self.target)
        if unjudged is not None:
            return unjudged
        return score_judged(answer, await self._judge_all(case, answer.text, order))

    async def _judge_recorded(self, case: Case, answer: str, order: int) -> tuple[JudgeReading, ...]:
        try:
            return await self._judge_all(case, answer, order)
        finally:
            self.stats.cases_done += 1

    async def _judge_all(self, case: Case, answer: str, order: int) -> tuple[JudgeReading, ...]:
        """Every judge scores the answer at once; a failure is reported in judge order."""
        outcomes = await asyncio.gather(
            *(self._judge(judging, case, answer, order) for judging in self.judges), return_exceptions=True
        )
        readings: list[JudgeReading] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            readings.append(outcome)
        return tuple(readings)

    async def _judge(self, judging: JudgeEndpoint, case: Case, answer: str, order: int) -> JudgeReading:
        """One judge's reading of `answer`; an unparseable reply is asked for once more."""
        judge, endpoint = judging.judge, judging.endpoint
        request = endpoint.prepared(judge.request(case, answer))
        last_text = ""
        tokens = (0, 0)
        from_cache = True
        for _attempt in range(2):
            reply = await self._call(endpoint, request, keep=judge.parses, order=order, judge=judge.kind)
            tokens = (tokens[0] + reply.prompt_tokens, tokens[1] + reply.completion_tokens)
            from_cache = from_cache and reply.from_cache
            if reply.refused_by_provider:
                raise CaseError(f"the {endpoint.role_name}'s provider refused to grade this answer (content filter)")
            if not reply.text.strip() and reply.finish_reason == "length":
                # Asking again would think as long again: the allowance, not the judge, is at fault.
                raise CaseError(empty_at_length_message(endpoint, self.shape(endpoint).limit(request.max_tokens)))
            last_text = reply.text
            try:
                reading = judge.read(reply)
            except JudgeParseError:
                continue
            return dataclasses.replace(reading, tokens=tokens, from_cache=from_cache)
        raise CaseError(judge.unparseable(last_text))

    async def _call(
        self,
        endpoint: Endpoint,
        request: ChatRequest,
        keep: Callable[[Completion], bool] = lambda _c: True,
        order: int = 0,
        judge: str | None = None,
    ) -> Completion:
        """One completion, from the cache when it holds one that `keep` accepts."""
        delivered: frozenset[str] = frozenset()
        if self.batch is not None:
            # Batch mode: this call may be on its way in a batch; once its step is settled it is
            # in the cache, or it is made as an ordinary call.
            delivered = await self.batch.settled(batch_step(endpoint), endpoint.role)
        key = None
        if self.store is not None and endpoint.cacheable:
            key = request_key(endpoint.provider.name, endpoint.provider.base_url, request, judge)
            cached = await self._stored_or_claim(self.store, key, keep)
            if cached is not None:
                batched = key in delivered
                if batched:
                    self.stats.batched += 1
                else:
                    self.stats.cached += 1
                # The counts stay what the answer cost when it was made; the flag says this run did
                # not pay them (the progress line's counters only add calls actually made). An
                # answer this run's batch brought was paid by this run.
                return dataclasses.replace(cached, from_cache=not batched)
        if key is None:
            return await self._call_and_store(endpoint, request, None, keep, order)
        call = asyncio.ensure_future(self._call_and_store(endpoint, request, key, keep, order))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            # The case left this process (xdist gave it to another worker) while its call was out:
            # the call still lands in the store, where that worker waits for it, instead of being paid twice.
            self._detached.add(call)
            call.add_done_callback(_forget(self._detached))
            raise

    async def _stored_or_claim(
        self, store: CallStore, key: str, keep: Callable[[Completion], bool]
    ) -> Completion | None:
        """The stored completion for `key`, or None once this process holds the claim to make the call."""
        while True:
            cached = store.get(key)
            if cached is not None and keep(cached):
                return cached
            if store.claim(key):
                cached = store.get(key)  # stored between the look-up and the claim
                if cached is not None and keep(cached):
                    store.release(key)
                    return cached
                return None
            await asyncio.sleep(CLAIM_POLL)  # another process is making this call

    async def _call_and_store(
        self,
        endpoint: Endpoint,
        request: ChatRequest,
        key: str | None,
        keep: Callable[[Completion], bool],
        order: int,
    ) -> Completion:
        """Make the call and store a kept answer; with a `key`, hold its claim until then."""
        renewal = None if key is None else asyncio.ensure_future(self._renew_claim(key))

        async def store(completion: Completion) -> None:
            if key is not None and self.store is not None and keep(completion):
                await asyncio.to_thread(self.store.put, key, completion)

        try:
            completion = await self.caller.call(endpoint, request, order, on_answer=store)
            role = endpoint.role
            spent = paid_tokens(request, completion)
            self.stats.tokens[role][0] += spent[0]
            self.stats.tokens[role][1] += spent[1]
            return completion
        finally:
            if renewal is not None and key is not None and self.store is not None:
                renewal.cancel()
                self.store.release(key)

    async def _renew_claim(self, key: str) -> None:
        assert self.store is not None
        while True:
            await asyncio.sleep(CLAIM_TTL / 3)
            self.store.renew(key)


def _forget(pending: set[asyncio.Future[Completion]]) -> Callable[[asyncio.Future[Completion]], None]:
    """A done-callback that drops a detached call from `pending`; its outcome is in the store or nowhere."""

    def done(call: asyncio.Future[Completion]) -> None:
        pending.discard(call)
        if not call.cancelled():
            call.exception()  # retrieved: nobody awaits a detached call's error

    return done
