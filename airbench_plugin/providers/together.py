"""The model under test or the judge through the official `together` SDK."""

from __future__ import annotations

from airbench_plugin.providers.sdk import SDK, SDKProvider, shared_tls_context


class TogetherProvider(SDKProvider):
    """Chat completions through `together.AsyncTogether`."""

    name = "together"
    key_env = ("TOGETHER_API_KEY",)
    dotenv_aliases = ("TOGETHERAI_KEY",)
    key_hosts = ("api.together.xyz", "api.together.ai")
    default_base_url = "https://api.together.ai"
    chat_path = "/v1/chat/completions"  # Together's base URL has no /v1
    models_path = "/v1/models"

    @staticmethod
    def load_sdk() -> SDK:
        import httpx
        import together

        return SDK(
            client=together.AsyncTogether,
            http_client=lambda: together.DefaultAsyncHttpxClient(verify=shared_tls_context(httpx)),
            status_error=together.APIStatusError,
            timeout_error=together.APITimeoutError,
            connection_error=together.APIConnectionError,
            raw_response=httpx.Response,
            omit=together.Omit,
        )
