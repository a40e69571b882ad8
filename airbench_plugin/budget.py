"""`--airbench-token-budget` as a ceiling: a call reserves its worst case before it starts.

Counting what calls cost after they answer lets every call already in flight overrun the budget
(32 calls at once, each ~700 tokens of judge prompt: a budget of 5,000 became 21,327 tokens). So a
call first reserves its worst case, its prompt's most tokens plus its `max_tokens`; when it ends,
what it cost is spent and the rest released for the next call. A call whose worst case does not fit
waits for calls in flight to release theirs; when none is in flight it can never fit, and the run
stops. Under `-n K` each worker holds its share of the budget (run.share), so each share is a
ceiling too.

A prompt's most tokens: its count by tiktoken where the model's encoding is known and on this
machine (see tokens.py), else its UTF-8 bytes, since a byte-level BPE (GPT, Llama 3, Qwen) never
makes more tokens than bytes. A server that counts more than that (another kind of tokenizer) is
charged what it reports, and no further call starts once the budget is spent.

Batch runs reserve the same way: `reserve(worst_case(request))` for each request of a batch before
it is submitted, `settle(reserved, cost)` when its result is read.
"""

from __future__ import annotations

import asyncio

from airbench_plugin.providers.base import ChatRequest
from airbench_plugin.tokens import MESSAGE_OVERHEAD, REPLY_OVERHEAD, counter_for


class BudgetSpent(Exception):
    """No call is in flight and the next one's worst case does not fit in what is left."""

    def __init__(self, spent: int, limit: int, need: int) -> None:
        super().__init__(f"{spent} of {limit} tokens spent; the next call needs up to {need}")
        self.spent = spent
        self.limit = limit
        self.need = need


def worst_case(request: ChatRequest) -> int:
    """The most tokens `request` can cost: its prompt's most tokens plus its max tokens."""
    counter = counter_for(request.model)
    if counter.why is None:  # tiktoken with the model's own encoding: the count is exact
        prompt = counter.count(request.messages)
    else:
        texts = [str(message.get("content", "")) for message in request.messages]
        prompt = sum(len(text.encode("utf-8")) + MESSAGE_OVERHEAD for text in texts) + REPLY_OVERHEAD
    return prompt + request.max_tokens


class TokenBudget:
    """What one process may spend: tokens spent, tokens reserved by calls in flight, and the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self.reserved = 0
        self._waiters: list[asyncio.Future[None]] = []

    def fits(self, tokens: int) -> bool:
        return self.spent + self.reserved + tokens <= self.limit

    async def reserve(self, tokens: int) -> int:
        """Hold `tokens` for one call, waiting for calls in flight to settle; raises BudgetSpent
        when nothing is in flight and they still do not fit. Returns what was reserved."""
        while not self.fits(tokens):
            if self.reserved == 0:
                raise BudgetSpent(self.spent, self.limit, tokens)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self.reserved += tokens
        return tokens

    def settle(self, reserved: int, cost: int) -> None:
        """A call that reserved `reserved` ended having cost `cost`: spend it, release the rest."""
        self.reserved -= reserved
        self.spent += cost
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
