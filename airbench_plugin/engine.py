"""The only place that waits on the network: concurrency, retries, the cache and the circuit breaker.

An `Engine` owns one asyncio event loop in a background thread. Tests are synchronous: they
`submit` cases (many at once, so up to `concurrency` requests are in flight) and block on the
future of their own case. Each case is one call to the model under test and, unless the answer
is empty or the provider refused, one call to each judge, all judges at once. The engine knows
judges only through `Judge`: they build the requests and read the replies. `submit_answer` judges a
recorded answer without the model under test (`airbench calibrate`, whose engine has no target).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import math
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from airbench_plugin.batch.api import BatchAPI, batch_api, provider_host
from airbench_plugin.batch.driver import BatchItem, StepProgress
from airbench_plugin.batch.journal import Journal, Step
from airbench_plugin.batch.lines import custom_id
from airbench_plugin.batch.session import BatchSession, EndpointBatch
from airbench_plugin.breaker import CircuitBreaker
from airbench_plugin.budget import BudgetSpent, TokenBudget, worst_case
from airbench_plugin.dataset import Case
from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.judges.base import Judge, JudgeParseError, JudgeReading
from airbench_plugin.pacing import CHARS_PER_TOKEN, EndpointPacer, Stalled, Turn, estimate_tokens
from airbench_plugin.providers.base import (
    ChatRequest,
    Completion,
    ProviderError,
)
from airbench_plugin.providers.callable import CallableTarget
from airbench_plugin.providers.quirks import RequestShape
from airbench_plugin.retirement import gone_message, model_gone
from airbench_plugin.roles import ROLES, Role
from airbench_plugin.scoring import (
    CaseError,
    CircuitOpen,
    ScoredAnswer,
    empty_at_length_message,
    score_judged,
    score_unjudged,
    target_request,
)
from airbench_plugin.slots import OrderedSlots
from airbench_plugin.store import CLAIM_TTL, CallStore, StoreProblems, request_key
from airbench_plugin.suspects import SuspectNumbers
from airbench_plugin.text import valid_unicode

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0
DRAIN_TIMEOUT = 8.0  # seconds a closing engine waits for calls other workers wait for
CLAIM_POLL = 0.05  # seconds between looks at the store while another process makes a call


@dataclass(frozen=True)
class BatchSetup:
    """Batch mode's settings for one process: the run it belongs to and how often it looks."""

    run_id: str  # the same in every process of the run (xdist workers): they share its steps
    poll: float


@dataclass
class EngineStats:
    """Counters for the progress line and the token summary; touched only on the loop thread."""

    calls: int = 0
    cached: int = 0
    in_flight: int = 0
    retried: int = 0
    rate_limited: int = 0
    reshaped: int = 0  # requests sent again in the shape a reasoning model wants
    errored: int = 0
    cases_done: int = 0
    batched: int = 0  # answers this run received through a batch, read from the cache by their tests
    batch: StepProgress | None = None  # batch mode: the batches' step, status and counts (where they are driven)
    tokens: dict[Role, list[int]] = field(default_factory=lambda: {role: [0, 0] for role in ROLES})
    sent: dict[Role, dict[str, Any]] = field(default_factory=dict)  # generation settings sent, by role
    store: StoreProblems = field(default_factory=StoreProblems)  # the engine's store's, shared
    suspect: SuspectNumbers = field(default_factory=SuspectNumbers)  # bad numbers and missing usage, by endpoint

    def spent(self) -> int:
        """Tokens this process has paid for: prompt and completion, both endpoints, cache hits excluded."""
        return sum(sum(pair) for pair in self.tokens.values())

    def snapshot(self) -> dict[str, Any]:
        return {
            "store": self.store.to_json(),
            "suspect": self.suspect.to_json(),
            "sent": {role: dict(settings) for role, settings in self.sent.items()},
            "calls": self.calls,
            "cached": self.cached,
            "in_flight": self.in_flight,
            "retried": self.retried,
            "rate_limited": self.rate_limited,
            "errored": self.errored,
            "cases_done": self.cases_done,
            "batched": self.batched,
            "batch": None if self.batch is None else self.batch.to_json(),
            "tokens": {role: list(pair) for role, pair in self.tokens.items()},
        }


def budget_message(spent: int, budget: int) -> str:
    """Why the run stopped: its token budget is spent."""
    return (
        f"AIR-Bench stopped: this run spent {spent:,} tokens, its --airbench-token-budget is {budget:,}; no new "
        "call was started and the results are incomplete. Raise the budget and run again: completed calls are "
        "cached and cost nothing the second time."
    )


def stall_message(endpoint: Endpoint, seconds: float) -> str:
    """Why a prompt errored after its endpoint answered nothing but 429s for `seconds`."""
    return (
        f"the {endpoint.role_name} ({endpoint.model}) made no progress for {seconds:g} s: every request was "
        f"rate-limited (429); set {endpoint.option('rpm')} / {endpoint.option('tpm')} below your account's "
        "limits, lower --airbench-concurrency, or raise --airbench-timeout"
    )


def held_message(endpoint: Endpoint, seconds: float) -> str:
    """Why a prompt errored when the endpoint's own rate-limit headers allowed no request for `seconds`."""
    return (
        f"the {endpoint.role_name} ({endpoint.model}) made no progress for {seconds:g} s: its rate-limit headers "
        "(x-ratelimit-*) allowed no request in that time; check the account's limits with the provider, or raise "
        "--airbench-timeout"
    )


def backoff_delay(attempt: int, retry_after: float | None, base: float = BACKOFF_BASE) -> float:
    """Seconds before retry number `attempt` (0-based): the server's Retry-After, else jittered doubling."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_CAP)
    return float(min(BACKOFF_CAP, base * 2.0**attempt) * random.uniform(0.5, 1.0))


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
        self._batch_cases: list[Case] = []
        self._batch_apis: dict[int, BatchAPI | None] = {}
        self._batch_reserved = 0
        # What each batched call's key stands for: its endpoint, request and what a judge keeps.
        self._batch_requests: dict[str, tuple[Endpoint, ChatRequest, Callable[[Completion], bool]]] = {}
        self.judges = tuple(judges)
        self.system_prompt = system_prompt
        self.prompt_suffix = prompt_suffix
        self.concurrency = concurrency
        self.retries = retries
        self.store = store
        self.backoff_base = backoff_base
        self.stats = EngineStats()
        if store is not None:
            self.stats.store = store.problems  # counted by the store, published with the stats
        self.breaker = CircuitBreaker()
        self.stall_timeout = stall_timeout
        self.token_budget = token_budget
        # A ceiling: each call reserves its worst case first (budget.py).
        self.budget = TokenBudget(token_budget) if token_budget is not None else None
        self.stats.suspect.budget = token_budget is not None
        self._pacers: dict[int, EndpointPacer] = {}
        self._shapes: dict[int, RequestShape] = {}
        for endpoint in self.endpoints:
            self.shape(endpoint)
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
        self._semaphore = self._run(self._make_semaphore()).result()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint this engine calls: the model under test (when there is one), then each judge's."""
        target = () if self.target is None else (self.target,)
        return (*target, *(judging.endpoint for judging in self.judges))

    async def _make_semaphore(self) -> OrderedSlots:
        return OrderedSlots(self.concurrency)

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
        self._batch_cases = list(cases)
        self._run(self._start_batch()).result()

    async def _start_batch(self) -> None:
        assert self.store is not None and self.batch_setup is not None
        self.batch = BatchSession(
            journal=Journal(self.store.directory),
            store=self.store,
            run_id=self.batch_setup.run_id,
            poll=self.batch_setup.poll,
            plan=self._batch_plan,
            allow=self._batch_allow,
            fallback=self._batch_fallback,
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
        for api in self._batch_apis.values():
            if api is not None:
                await api.aclose()
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
        request = target_request(self.target, case.prompt + self.prompt_suffix, self.system_prompt)
        answer = await self._call(self.target, request, order=order)
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
            completion = await self._call_with_retries(endpoint, request, order, on_answer=store)
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

    async def _reserve(self, endpoint: Endpoint, request: ChatRequest) -> int:
        """Reserve the worst case of `request` in the token budget; the run stops when it can never fit.

        Recorded answers and the user's own `airbench_target` report no usage and cost the budget
        nothing (they are the endpoints that are not cached): they reserve nothing either.
        """
        if self.budget is None or not endpoint.cacheable:
            return 0
        try:
            return await self.budget.reserve(worst_case(request))
        except BudgetSpent as spent:
            if self.breaker.reason is None:
                self.breaker.reason = budget_message(spent.spent, spent.limit)
            raise CircuitOpen(self.breaker.reason) from None

    def _check_budget(self) -> None:
        """The spend guard: once the budget is spent no new call starts and the run stops."""
        if self.token_budget is not None and self.breaker.reason is None and self.stats.spent() >= self.token_budget:
            self.breaker.reason = budget_message(self.stats.spent(), self.token_budget)

    # --- batch mode: what each step sends, and the budget it may spend ---------------------------

    async def _batch_api(self, endpoint: Endpoint) -> BatchAPI | None:
        """`endpoint`'s Batches client, or None: a callable, recorded answers, or a server without the
        Batches API (vLLM, Ollama: asked once) is called as usual."""
        if id(endpoint) not in self._batch_apis:
            api = batch_api(endpoint.provider) if endpoint.cacheable else None
            if api is not None and not provider_host(endpoint.provider) and not await api.probe():
                await api.aclose()
                api = None
            self._batch_apis[id(endpoint)] = api
        return self._batch_apis[id(endpoint)]

    async def _batch_plan(self, step: Step, only: frozenset[str] | None) -> list[EndpointBatch]:
        """Each batchable endpoint's calls for `step` not in the cache yet (with `only`: just those keys)."""
        self._batch_reserved = 0  # what the last step reserved is now spent or released
        plans: list[EndpointBatch] = []
        target = self.target
        if target is None:  # judging recorded answers one by one (calibrate): nothing to batch
            return plans
        roles: list[tuple[Endpoint, Judge | None]] = (
            [(target, None)] if step == "answers" else [(j.endpoint, j.judge) for j in self.judges]
        )
        for endpoint, judge in roles:
            api = await self._batch_api(endpoint)
            if api is None:
                continue
            items = await self._batch_items(target, endpoint, judge, only)
            plans.append(
                EndpointBatch(
                    api=api,
                    role=endpoint.role,
                    model=endpoint.model,
                    items=items,
                    adapt=functools.partial(self._batch_adapt, endpoint),
                    on_tokens=functools.partial(self._batch_tokens, endpoint.role),
                )
            )
        return plans

    async def _batch_items(
        self, target: Endpoint, endpoint: Endpoint, judge: Judge | None, only: frozenset[str] | None
    ) -> list[BatchItem]:
        store = self.store
        assert store is not None
        shape = self.shape(endpoint)
        items: dict[str, BatchItem] = {}
        for case in self._batch_cases:
            request = target_request(target, case.prompt + self.prompt_suffix, self.system_prompt)
            keep: Callable[[Completion], bool] = _always
            if judge is not None:
                answer = await self._batch_answer(target, request)
                if answer is None or answer.refused_by_provider or not answer.text.strip():
                    continue  # no answer yet, or none a judge is asked about
                request, keep = judge.request(case, valid_unicode(answer.text)), judge.parses
            key = request_key(
                endpoint.provider.name, endpoint.provider.base_url, request, judge.kind if judge else None
            )
            if key in items or (only is not None and key not in only):
                continue
            cached = await asyncio.to_thread(store.get, key)
            if cached is not None and keep(cached):
                continue
            self._batch_requests[key] = (endpoint, request, keep)
            body = shape.apply(request).body()
            cost = estimate_tokens(request.messages, request.max_tokens)
            items[key] = BatchItem(custom_id(endpoint.role, case.test_id), key, body, keep, cost)
        return list(items.values())

    async def _batch_answer(self, target: Endpoint, request: ChatRequest) -> Completion | None:
        """The model's answer to `request` for the judgements step: from the cache, or recorded answers."""
        if target.cacheable:
            assert self.store is not None
            key = request_key(target.provider.name, target.provider.base_url, request)
            return await asyncio.to_thread(self.store.get, key)
        if isinstance(target.provider, CallableTarget):
            return None  # the tests ask the function themselves: their judgements go as usual
        try:
            return await target.provider.complete(request)  # recorded answers: read, not called
        except ProviderError:
            return None

    async def _batch_fallback(self, keys: Sequence[str]) -> list[str]:
        """Make the calls a step's batches did not answer as ordinary calls; the keys now in the cache.

        A call that fails is left to its test, which makes it again and errors with its own sentence.
        """
        store = self.store
        assert store is not None

        async def call(order: int, key: str) -> str | None:
            endpoint, request, keep = self._batch_requests[key]
            try:
                await self._call_and_store(endpoint, request, key, keep, order)
            except CaseError:
                return None
            stored = await asyncio.to_thread(store.get, key)
            return key if stored is not None and keep(stored) else None

        made = await asyncio.gather(*(call(order, key) for order, key in enumerate(keys)))
        return [key for key in made if key is not None]

    def _batch_allow(self, items: Sequence[BatchItem]) -> Sequence[BatchItem]:
        """The items whose worst case the token budget still covers, in test order."""
        if self.token_budget is None:
            return items
        room = self.token_budget - self.stats.spent() - self._batch_reserved
        allowed: list[BatchItem] = []
        for item in items:
            if item.cost > room:
                break
            room -= item.cost
            allowed.append(item)
        self._batch_reserved += sum(item.cost for item in allowed)
        return allowed

    def _batch_adapt(self, endpoint: Endpoint, error: ProviderError) -> bool:
        """Learn from a batch line's 400 as from an ordinary call's (a reasoning model's settings)."""
        shape = self.shape(endpoint)
        probe = shape.apply(ChatRequest(endpoint.model, (), endpoint.temperature, endpoint.max_tokens))
        if not shape.adapt(error, probe):
            return False
        self.stats.reshaped += 1
        self.stats.sent[endpoint.role] = shape.sent(endpoint.temperature, endpoint.max_tokens)
        return True

    def _batch_tokens(self, role: Role, prompt: int, completion: int) -> None:
        self.stats.tokens[role][0] += prompt
        self.stats.tokens[role][1] += completion

    def shape(self, endpoint: Endpoint) -> RequestShape:
        """How `endpoint` wants its generation settings sent, as learned from its 400 answers."""
        shape = self._shapes.get(id(endpoint))
        if shape is None:
            shape = RequestShape.for_endpoint(endpoint.reasoning_effort, endpoint.reasoning_headroom)
            self._shapes[id(endpoint)] = shape
            self.stats.sent[endpoint.role] = shape.sent(
                endpoint.temperature, endpoint.max_tokens, endpoint.reasoning_effort
            )
        return shape

    def pacer(self, endpoint: Endpoint) -> EndpointPacer:
        """The pacing of `endpoint`: one per endpoint, so the model under test and the judge keep apart."""
        pacer = self._pacers.get(id(endpoint))
        if pacer is None:
            pacer = EndpointPacer(rpm=endpoint.rpm, tpm=endpoint.tpm, stall_timeout=self.stall_timeout)
            self._pacers[id(endpoint)] = pacer
        return pacer

    async def _call_with_retries(
        self,
        endpoint: Endpoint,
        request: ChatRequest,
        order: int = 0,
        on_answer: Callable[[Completion], Awaitable[None]] | None = None,
    ) -> Completion:
        """One call, retried: a 429 waits for the endpoint's pace and costs no attempt, as long as
        the endpoint makes progress; other retryable failures use up the `retries` budget.

        `on_answer` (the cache write) runs before the call's slot is freed: an answer is paid for
        when it arrives, so it is on disk before any call that waited for the slot starts, and a
        run killed at any moment has at most `concurrency` answers received but not stored.
        """
        pacer = self.pacer(endpoint)
        shape = self.shape(endpoint)
        tokens = estimate_tokens(request.messages, request.max_tokens)
        attempt = 0
        throttled_since: float | None = None
        # Every wait of this call (the server's headers, a 429's pause, a 5xx's Retry-After) is
        # bounded by what is left of --airbench-timeout from here.
        deadline = pacer.clock() + self.stall_timeout
        while True:
            self._check_budget()
            if self.breaker.reason is not None:
                raise CircuitOpen(self.breaker.reason)
            turn: Turn | None = None
            sent: ChatRequest | None = None
            try:
                await self._semaphore.acquire(order)
                try:
                    self._check_budget()  # again: calls finished while this one waited for its slot
                    if self.breaker.reason is not None:
                        raise CircuitOpen(self.breaker.reason)
                    reserved = await self._reserve(endpoint, request)
                    cost = 0
                    try:
                        turn = await pacer.turn(tokens, throttled_since, waiting_since=pacer.clock())
                        self.stats.in_flight += 1
                        self.stats.calls += 1
                        try:
                            sent = shape.apply(request)
                            completion = valid_text(await endpoint.provider.complete(sent))
                            cost = sum(paid_tokens(request, completion))
                            if on_answer is not None:
                                await on_answer(completion)
                        finally:
                            self.stats.in_flight -= 1
                    finally:
                        if self.budget is not None:
                            self.budget.settle(reserved, cost)  # what it cost is spent, the rest released
                finally:
                    self._semaphore.release()
            except Stalled as stalled:
                self.stats.errored += 1
                message = stall_message if stalled.rate_limited else held_message
                raise CaseError(message(endpoint, pacer.stall_timeout)) from None
            except ProviderError as error:
                if error.limits is not None:
                    self.stats.suspect.note(endpoint.label, error.limits.suspect)
                if error.rate_limited:
                    pacer.throttled(turn, error.limits, error.retry_after)
                    self.stats.retried += 1
                    self.stats.rate_limited += 1
                    if throttled_since is None:
                        throttled_since = pacer.clock()
                    elif pacer.stalled(throttled_since):
                        self.stats.errored += 1
                        raise CaseError(stall_message(endpoint, pacer.stall_timeout)) from None
                    continue
                pacer.failed(turn, error.limits)
                if sent is not None and shape.adapt(error, sent):
                    # A reasoning model refused max_tokens or the temperature: send it their way.
                    self.stats.reshaped += 1
                    self.stats.sent[endpoint.role] = shape.sent(
                        endpoint.temperature, endpoint.max_tokens, endpoint.reasoning_effort
                    )
                    continue
                if model_gone(error):
                    # Retired or unknown: every call would be answered the same, so the first answer says it.
                    self.stats.errored += 1
                    if self.breaker.reason is None:
                        self.breaker.reason = gone_message(
                            endpoint.role, endpoint.model, endpoint.where(), str(error), endpoint.option("")
                        )
                    raise CircuitOpen(self.breaker.reason) from None
                if error.kind == "connection" and self.breaker.armed(endpoint):
                    # Nothing answered yet: a refused connection or an unknown host will not get
                    # better in the minute the retries would take, so every attempt counts.
                    self.breaker.record_failure(endpoint, error)
                    if self.breaker.reason is not None:
                        self.stats.errored += 1
                        raise CircuitOpen(self.breaker.reason) from None
                if error.retryable and attempt < self.retries:
                    self.stats.retried += 1
                    wait = backoff_delay(attempt, error.retry_after, self.backoff_base)
                    await asyncio.sleep(max(0.0, min(wait, deadline - pacer.clock())))
                    attempt += 1
                    continue
                self.stats.errored += 1
                self.breaker.record_failure(endpoint, error)
                if self.breaker.reason is not None:
                    raise CircuitOpen(self.breaker.reason) from None
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise CaseError(f"the {endpoint.role_name} ({endpoint.model}) failed{tries}: {error}") from None
            self.stats.suspect.note(endpoint.label, completion.suspect, completion.usage_reported)
            pacer.answered(turn, completion.limits)
            self.breaker.record_success(endpoint)
            return completion


def paid_tokens(request: ChatRequest, completion: Completion) -> tuple[int, int]:
    """The prompt and completion tokens a call cost: its usage, else (a server that reports none)
    an estimate at four characters a token, so a token budget still counts it."""
    if completion.usage_reported:
        return completion.prompt_tokens, completion.completion_tokens
    prompt = estimate_tokens(request.messages, 0)
    return prompt, math.ceil(len(completion.text) / CHARS_PER_TOKEN)


def batch_step(endpoint: Endpoint) -> Step:
    """Which step of a batch run sends `endpoint`'s calls: the model's answers, then the judgements."""
    return "answers" if endpoint.role == "target" else "judgements"


def _always(_completion: Completion) -> bool:
    return True


def valid_text(completion: Completion) -> Completion:
    """`completion` with valid Unicode text: a lone surrogate could be neither stored, nor sent to
    the judge, nor written to a report."""
    text = valid_unicode(completion.text)
    return completion if text is completion.text else dataclasses.replace(completion, text=text)


def _forget(pending: set[asyncio.Future[Completion]]) -> Callable[[asyncio.Future[Completion]], None]:
    """A done-callback that drops a detached call from `pending`; its outcome is in the store or nowhere."""

    def done(call: asyncio.Future[Completion]) -> None:
        pending.discard(call)
        if not call.cancelled():
            call.exception()  # retrieved: nobody awaits a detached call's error

    return done
