"""The model under test replaced by recorded answers (`--airbench-responses`): no network, no key."""

from __future__ import annotations

from collections.abc import Mapping

from airbench_plugin.providers.base import ChatProvider, ChatRequest, Completion


class RecordedTarget(ChatProvider):
    """Answers each prompt with the answer recorded for it; nothing to cache."""

    name = "recorded"

    def __init__(self, answers: Mapping[str, str]) -> None:
        super().__init__(api_key=None, base_url=None, timeout=0.0)
        self.answers = answers  # by prompt text

    async def complete(self, request: ChatRequest) -> Completion:
        return Completion(text=self.answers[request.messages[-1]["content"]])
