"""One call to one endpoint under the run's limits: its slot, its endpoint's pace and request
shape, the token budget, retries with backoff and the circuit breaker; the engine's counters.

`Caller` makes a call and nothing else: what is asked (the case, its judges) and where an answer
is kept (the cache) are the engine's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from airbench_plugin.batch.driver import StepProgress
from airbench_plugin.breaker import CircuitBreaker
from airbench_plugin.budget import BudgetSpent, TokenBudget, worst_case
from airbench_plugin.endpoints import Endpoint
from airbench_plugin.pacing import CHARS_PER_TOKEN, EndpointPacer, Stalled, Turn, estimate_tokens
from airbench_plugin.providers.base import ChatRequest, Completion, ProviderError
from airbench_plugin.providers.quirks import RequestShape
from airbench_plugin.retirement import gone_message, model_gone
from airbench_plugin.roles import ROLES, Role
from airbench_plugin.scoring import CaseError, CircuitOpen
from airbench_plugin.slots import OrderedSlots
from airbench_plugin.store import StoreProblems
from airbench_plugin.suspects import SuspectNumbers
from airbench_plugin.text import valid_unicode

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0


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


class Caller:
    """Makes calls for one engine, on its loop: `concurrency` at a time (served in case order), each
    endpoint at its own pace, within the token budget, retried, until the breaker opens."""

    def __init__(
        self,
        *,
        stats: EngineStats,
        slots: OrderedSlots,
        retries: int,
        backoff_base: float = BACKOFF_BASE,
        stall_timeout: float = 120.0,
        token_budget: int | None = None,
    ) -> None:
        self.stats = stats
        self._semaphore = slots
        self.retries = retries
        self.backoff_base = backoff_base
        self.stall_timeout = stall_timeout
        self.token_budget = token_budget
        self.breaker = CircuitBreaker()
        # A ceiling: each call reserves its worst case first (budget.py).
        self.budget = TokenBudget(token_budget) if token_budget is not None else None
        self.stats.suspect.budget = token_budget is not None
        self._pacers: dict[int, EndpointPacer] = {}
        self._shapes: dict[int, RequestShape] = {}

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

    async def reserve(self, endpoint: Endpoint, request: ChatRequest) -> int:
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

    def check_budget(self) -> None:
        """The spend guard: once the budget is spent no new call starts and the run stops."""
        if self.token_budget is not None and self.breaker.reason is None and self.stats.spent() >= self.token_budget:
            self.breaker.reason = budget_message(self.stats.spent(), self.token_budget)

    async def call(
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
            self.check_budget()
            if self.breaker.reason is not None:
                raise CircuitOpen(self.breaker.reason)
            turn: Turn | None = None
            sent: ChatRequest | None = None
            try:
                await self._semaphore.acquire(order)
                try:
                    self.check_budget()  # again: calls finished while this one waited for its slot
                    if self.breaker.reason is not None:
                        raise CircuitOpen(self.breaker.reason)
                    reserved = await self.reserve(endpoint, request)
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


def valid_text(completion: Completion) -> Completion:
    """`completion` with valid Unicode text: a lone surrogate could be neither stored, nor sent to
    the judge, nor written to a report."""
    text = valid_unicode(completion.text)
    return completion if text is completion.text else dataclasses.replace(completion, text=text)
