"""The model under test or the judge through the official `openai` SDK (OpenAI, vLLM, Ollama, ...)."""

from __future__ import annotations

from airbench_plugin.providers.sdk import SDK, SDKProvider, shared_tls_context


class OpenAIProvider(SDKProvider):
    """Chat completions through `openai.AsyncOpenAI`."""

    name = "openai"
    key_env = ("OPENAI_API_KEY",)
    dotenv_aliases = ("OPENAI_KEY",)
    key_hosts = ("api.openai.com",)
    default_base_url = "https://api.openai.com/v1"

    @staticmethod
    def load_sdk() -> SDK:
        import openai

        try:  # openai 3 moved to httpx2
            import httpx2 as http
        except ImportError:  # pragma: no cover - older SDKs
            import httpx as http  # type: ignore[no-redef]

        return SDK(
            client=openai.AsyncOpenAI,
            http_client=lambda: openai.DefaultAsyncHttpxClient(verify=shared_tls_context(http)),
            status_error=openai.APIStatusError,
            timeout_error=openai.APITimeoutError,
            connection_error=openai.APIConnectionError,
            raw_response=http.Response,
            omit=openai.Omit,
        )
