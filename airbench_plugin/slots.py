"""Concurrency slots served by priority, so cases finish roughly in test order."""

from __future__ import annotations

import asyncio
import heapq


class OrderedSlots:
    """A semaphore whose waiters are served by priority (lowest first), not by arrival.

    The engine gives every case the order in which it was submitted, so the judge call of an
    early case goes before the model calls of later ones: cases finish roughly in test order.
    """

    def __init__(self, value: int) -> None:
        self._free = value
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = 0

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._counter += 1
        heapq.heappush(self._waiters, (priority, self._counter, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # it was handed a slot just as it was cancelled
            raise

    def release(self) -> None:
        while self._waiters:
            _priority, _count, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # the slot passes straight to the next waiter
                return
        self._free += 1
