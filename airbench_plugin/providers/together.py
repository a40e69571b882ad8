"""The model under test or the judge through the official `together` SDK."""

from __future__ import annotations

from typing import Any

import httpx
import together

from airbench_plugin.providers.sdk import SDKProvider


class TogetherProvider(SDKProvider):
    """Chat completions through `together.AsyncTogether`."""

    name = "together"
    key_env = ("TOGETHER_API_KEY",)
    dotenv_aliases = ("TOGETHERAI_KEY",)
    key_hosts = ("api.together.xyz", "api.together.ai")
    default_base_url = "https://api.together.ai"
    chat_path = "/v1/chat/completions"  # Together's base URL has no /v1
    status_error = together.APIStatusError
    timeout_error = together.APITimeoutError
    raw_response = httpx.Response
    connection_error = together.APIConnectionError
    omit = together.Omit

    def make_client(self, *, api_key: str, base_url: str, timeout: float) -> Any:
        return together.AsyncTogether(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
