"""The model under test or the judge through the official `openai` SDK (OpenAI, vLLM, Ollama, ...)."""

from __future__ import annotations

from typing import Any

import openai

try:  # openai 3 moved to httpx2
    import httpx2 as http
except ImportError:  # pragma: no cover - older SDKs
    import httpx as http  # type: ignore[no-redef]

from airbench_plugin.providers.sdk import SDKProvider


class OpenAIProvider(SDKProvider):
    """Chat completions through `openai.AsyncOpenAI`."""

    name = "openai"
    key_env = ("OPENAI_API_KEY",)
    dotenv_aliases = ("OPENAI_KEY",)
    key_hosts = ("api.openai.com",)
    default_base_url = "https://api.openai.com/v1"
    status_error = openai.APIStatusError
    timeout_error = openai.APITimeoutError
    raw_response = http.Response
    connection_error = openai.APIConnectionError
    omit = openai.Omit

    def make_client(self, *, api_key: str, base_url: str, timeout: float) -> Any:
        return openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
