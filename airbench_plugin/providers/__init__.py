"""Model backends by name. Each module holds one provider behind `ChatProvider`.

Provider modules import their SDK, which takes most of a second: they are imported only when
a run names them, so a plain `pytest` pays nothing.
"""

from __future__ import annotations

import importlib

from airbench_plugin.providers.base import ChatProvider, Completion, ProviderError

PROVIDERS = {
    "openai": "airbench_plugin.providers.openai:OpenAIProvider",
    "together": "airbench_plugin.providers.together:TogetherProvider",
}


def provider_class(name: str) -> type[ChatProvider]:
    """The provider registered under `name`."""
    module, _, attribute = PROVIDERS[name].partition(":")
    provider: type[ChatProvider] = getattr(importlib.import_module(module), attribute)
    return provider


__all__ = ["PROVIDERS", "ChatProvider", "Completion", "ProviderError", "provider_class"]
