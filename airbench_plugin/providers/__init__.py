"""Model backends by name. Each module holds one provider behind `ChatProvider`."""

from __future__ import annotations

from airbench_plugin.providers.base import ChatProvider, Completion, ProviderError
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.together import TogetherProvider

REGISTRY: dict[str, type[ChatProvider]] = {
    OpenAIProvider.name: OpenAIProvider,
    TogetherProvider.name: TogetherProvider,
}

__all__ = ["REGISTRY", "ChatProvider", "Completion", "OpenAIProvider", "ProviderError", "TogetherProvider"]
