"""Model backends by name. Each module holds one provider behind `ChatProvider`.

A provider module is light: its SDK, which takes most of a second to import, is imported on the
provider's first call (`SDKProvider.load_sdk`), so a plain `pytest`, a `--collect-only`, an xdist
controller and a run answered from the cache never pay for it.
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
