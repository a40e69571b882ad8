"""The model under test as the user's own function (the `airbench_target` fixture), sync or async."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable
from typing import Any

from airbench_plugin.providers.base import ChatProvider, ChatRequest, Completion, ProviderError


class CallableTarget(ChatProvider):
    """Adapts a user's `respond(prompt) -> str` (sync or async) to the provider interface."""

    name = "custom"

    def __init__(self, respond: Callable[[str], Any], timeout: float) -> None:
        super().__init__(api_key=None, base_url=None, timeout=timeout)
        self.respond = respond

    async def _answer(self, prompt: str) -> Any:
        if inspect.iscoroutinefunction(self.respond):
            return await self.respond(prompt)
        answer = await in_daemon_thread(self.respond, prompt)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    async def complete(self, request: ChatRequest) -> Completion:
        prompt = request.messages[-1]["content"]
        try:
            answer = await asyncio.wait_for(self._answer(prompt), self.timeout)
        except TimeoutError:
            raise ProviderError(
                f"the airbench_target fixture gave no answer within {self.timeout:g} s", True, kind="timeout"
            ) from None
        except Exception as exc:
            raise ProviderError(
                f"the airbench_target fixture raised {type(exc).__name__}: {exc}", retryable=False
            ) from exc
        if isinstance(answer, Completion):
            return answer
        if not isinstance(answer, str):
            raise ProviderError(
                f"the airbench_target fixture returned {type(answer).__name__}, not str", retryable=False
            )
        return Completion(text=answer)


async def in_daemon_thread(function: Callable[[str], Any], argument: str) -> Any:
    """`function(argument)` in a thread of its own that the interpreter does not wait for at exit.

    asyncio's executor threads are joined when Python exits, so a user's function that never
    returns would keep a finished run from ever exiting; a daemon thread is simply abandoned.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the caller gave up waiting
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = function(argument), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed while we ran
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="airbench-target", daemon=True).start()
    return await future
