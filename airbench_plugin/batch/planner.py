"""Batch mode's side of the engine: what each step sends (the calls not in the cache yet), what
the token budget lets it send, what a batch line's 400 teaches an endpoint's request shape, and the
calls a step's batches left unanswered, made as ordinary calls."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence

from airbench_plugin.batch.api import BatchAPI, batch_api, provider_host
from airbench_plugin.batch.driver import BatchItem
from airbench_plugin.batch.journal import Step
from airbench_plugin.batch.lines import custom_id
from airbench_plugin.batch.session import EndpointBatch
from airbench_plugin.caller import Caller
from airbench_plugin.dataset import Case
from airbench_plugin.endpoints import Endpoint, JudgeEndpoint
from airbench_plugin.judges.base import Judge
from airbench_plugin.pacing import estimate_tokens
from airbench_plugin.providers.base import ChatRequest, Completion, ProviderError
from airbench_plugin.providers.callable import CallableTarget
from airbench_plugin.roles import Role
from airbench_plugin.scoring import CaseError
from airbench_plugin.store import CallStore, request_key
from airbench_plugin.text import valid_unicode

Keep = Callable[[Completion], bool]  # which answers a call keeps (a judge's: those it can read)
# The engine's call that stores its answer under a key: (endpoint, request, key, keep, order).
CallAndStore = Callable[[Endpoint, ChatRequest, str, Keep, int], Awaitable[Completion]]


def batch_step(endpoint: Endpoint) -> Step:
    """Which step of a batch run sends `endpoint`'s calls: the model's answers, then the judgements."""
    return "answers" if endpoint.role == "target" else "judgements"


def _always(_completion: Completion) -> bool:
    return True


class BatchPlanner:
    """What one engine's batches send, step by step; its methods are the `BatchSession`'s callbacks."""

    def __init__(
        self,
        *,
        target: Endpoint | None,
        judges: Sequence[JudgeEndpoint],
        cases: Sequence[Case],
        store: CallStore,
        caller: Caller,
        request_for: Callable[[Case], ChatRequest],
        call_and_store: CallAndStore,
    ) -> None:
        self.target = target
        self.judges = tuple(judges)
        self.cases = list(cases)
        self.store = store
        self.caller = caller
        self.stats = caller.stats
        self.token_budget = caller.token_budget
        self._request_for = request_for
        self._call_and_store = call_and_store
        self._apis: dict[int, BatchAPI | None] = {}
        self._reserved = 0
        # What each batched call's key stands for: its endpoint, request and what a judge keeps.
        self._requests: dict[str, tuple[Endpoint, ChatRequest, Keep]] = {}

    async def aclose(self) -> None:
        """Close the Batches clients (the batches run on at the provider: the journal has them)."""
        for api in self._apis.values():
            if api is not None:
                await api.aclose()

    async def _api(self, endpoint: Endpoint) -> BatchAPI | None:
        """`endpoint`'s Batches client, or None: a callable, recorded answers, or a server without the
        Batches API (vLLM, Ollama: asked once) is called as usual."""
        if id(endpoint) not in self._apis:
            api = batch_api(endpoint.provider) if endpoint.cacheable else None
            if api is not None and not provider_host(endpoint.provider) and not await api.probe():
                await api.aclose()
                api = None
            self._apis[id(endpoint)] = api
        return self._apis[id(endpoint)]

    async def plan(self, step: Step, only: frozenset[str] | None) -> list[EndpointBatch]:
        """Each batchable endpoint's calls for `step` not in the cache yet (with `only`: just those keys)."""
        self._reserved = 0  # what the last step reserved is now spent or released
        plans: list[EndpointBatch] = []
        target = self.target
        if target is None:  # judging recorded answers one by one (calibrate): nothing to batch
            return plans
        roles: list[tuple[Endpoint, Judge | None]] = (
            [(target, None)] if step == "answers" else [(j.endpoint, j.judge) for j in self.judges]
        )
        for endpoint, judge in roles:
            api = await self._api(endpoint)
            if api is None:
                continue
            items = await self._items(target, endpoint, judge, only)
            plans.append(
                EndpointBatch(
                    api=api,
                    role=endpoint.role,
                    model=endpoint.model,
                    items=items,
                    adapt=functools.partial(self._adapt, endpoint),
                    on_tokens=functools.partial(self._tokens, endpoint.role),
                )
            )
        return plans

    async def _items(
        self, target: Endpoint, endpoint: Endpoint, judge: Judge | None, only: frozenset[str] | None
    ) -> list[BatchItem]:
        store = self.store
        assert store is not None
        shape = self.caller.shape(endpoint)
        items: dict[str, BatchItem] = {}
        for case in self.cases:
            request = self._request_for(case)
            keep: Callable[[Completion], bool] = _always
            if judge is not None:
                answer = await self._answer(target, request)
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
            self._requests[key] = (endpoint, request, keep)
            body = shape.apply(request).body()
            cost = estimate_tokens(request.messages, request.max_tokens)
            items[key] = BatchItem(custom_id(endpoint.role, case.test_id), key, body, keep, cost)
        return list(items.values())

    async def _answer(self, target: Endpoint, request: ChatRequest) -> Completion | None:
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

    async def fallback(self, keys: Sequence[str]) -> list[str]:
        """Make the calls a step's batches did not answer as ordinary calls; the keys now in the cache.

        A call that fails is left to its test, which makes it again and errors with its own sentence.
        """
        store = self.store
        assert store is not None

        async def call(order: int, key: str) -> str | None:
            endpoint, request, keep = self._requests[key]
            try:
                await self._call_and_store(endpoint, request, key, keep, order)
            except CaseError:
                return None
            stored = await asyncio.to_thread(store.get, key)
            return key if stored is not None and keep(stored) else None

        made = await asyncio.gather(*(call(order, key) for order, key in enumerate(keys)))
        return [key for key in made if key is not None]

    def allow(self, items: Sequence[BatchItem]) -> Sequence[BatchItem]:
        """The items whose worst case the token budget still covers, in test order."""
        if self.token_budget is None:
            return items
        room = self.token_budget - self.stats.spent() - self._reserved
        allowed: list[BatchItem] = []
        for item in items:
            if item.cost > room:
                break
            room -= item.cost
            allowed.append(item)
        self._reserved += sum(item.cost for item in allowed)
        return allowed

    def _adapt(self, endpoint: Endpoint, error: ProviderError) -> bool:
        """Learn from a batch line's 400 as from an ordinary call's (a reasoning model's settings)."""
        shape = self.caller.shape(endpoint)
        probe = shape.apply(ChatRequest(endpoint.model, (), endpoint.temperature, endpoint.max_tokens))
        if not shape.adapt(error, probe):
            return False
        self.stats.reshaped += 1
        self.stats.sent[endpoint.role] = shape.sent(endpoint.temperature, endpoint.max_tokens)
        return True

    def _tokens(self, role: Role, prompt: int, completion: int) -> None:
        self.stats.tokens[role][0] += prompt
        self.stats.tokens[role][1] += completion
