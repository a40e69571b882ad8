"""What the official OpenAI and Together SDKs share: response reading and error translation.

Both SDKs are generated from the same toolkit, so their exception classes have the same shape;
each provider module hands its own classes over in an `SDK`. Retrying is the engine's job, so the
SDK clients are built with `max_retries=0`.

An SDK is imported on a provider's first call, not when the provider is chosen: `openai` alone is
~500 modules (0.4 s of CPU), which a run answered from the cache, an xdist controller (its workers
make the calls) or a `--collect-only` never needs.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import sys
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from airbench_plugin.providers import numbers
from airbench_plugin.providers.base import (
    CONTENT_FILTER_CODES,
    RETRYABLE_STATUS,
    SDK_IMPORT_FAILED,
    ChatProvider,
    ChatRequest,
    Completion,
    ConnectionCause,
    ProviderError,
    TokenLogprob,
    display_url,
    error_code,
    error_message,
    error_param,
    parse_retry_after,
)
from airbench_plugin.providers.limits import RateLimits
from airbench_plugin.providers.numbers import Suspect


def read_logprobs(choice: Any, notes: list[Suspect]) -> tuple[TokenLogprob, ...] | None:
    """`choices[0].logprobs.content`: every position with its top alternatives; None when absent.

    One logprob that is not a finite number of at most 0 (NaN, Infinity, 1000, a string) makes the
    whole list missing: a distribution with one impossible entry says nothing reliable.
    """
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list):
        return None
    positions = []
    for position in content:
        chosen = numbers.logprob(position["logprob"])
        top = [(str(entry["token"]), numbers.logprob(entry["logprob"])) for entry in position.get("top_logprobs") or ()]
        if chosen is None or any(value is None for _token, value in top):
            notes.append(Suspect("logprobs", "hold a value that is not a log-probability"))
            return None
        positions.append(
            TokenLogprob(
                str(position["token"]), chosen, tuple((token, value) for token, value in top if value is not None)
            )
        )
    return tuple(positions)


def read_completion(response: Any, limits: RateLimits | None = None) -> Completion:
    """The text, finish reason, token counts and logprobs of a chat-completions response body.

    A usage count or logprob that cannot be right is missing (see providers/numbers.py); the
    completion lists it in `suspect`, as it lists the headers' bad values.
    """
    try:
        choice = response["choices"][0]
        text = choice["message"].get("content") or ""
        finish_reason = choice.get("finish_reason")
        usage = response.get("usage")
        notes: list[Suspect] = list(limits.suspect) if limits is not None else []
        prompt_tokens = completion_tokens = None
        if isinstance(usage, dict):
            prompt_tokens = numbers.token_count(usage.get("prompt_tokens"), "usage.prompt_tokens", notes)
            completion_tokens = numbers.token_count(usage.get("completion_tokens"), "usage.completion_tokens", notes)
        elif usage is not None:
            notes.append(Suspect("usage", "not an object"))
        logprobs = read_logprobs(choice, notes)
        return Completion(
            text=text if isinstance(text, str) else str(text),
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            prompt_tokens=prompt_tokens or 0,
            completion_tokens=completion_tokens or 0,
            refused_by_provider=finish_reason == "content_filter",
            logprobs=logprobs,
            limits=limits,
            usage_reported=prompt_tokens is not None and completion_tokens is not None,
            suspect=tuple(notes),
        )
    except (AttributeError, IndexError, TypeError, KeyError, ValueError):
        raise ProviderError(
            "the server's answer is not a chat completion (no choices[0].message)",
            retryable=True,
            kind="malformed",
        ) from None


def connection_cause(exc: BaseException) -> ConnectionCause | None:
    """Why an SDK connection error happened, when its OS error says: "refused" or "unknown host"."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "refused"
        if isinstance(current, socket.gaierror):
            return "unknown host"
        text = str(current)
        if "Connection refused" in text or "[Errno 111]" in text:
            return "refused"
        if "Name or service not known" in text or "nodename nor servname" in text or "[Errno -2]" in text:
            return "unknown host"
        current = current.__cause__ or current.__context__
    return None


def translate(
    exc: Exception,
    *,
    status_error: type[Exception],
    timeout_error: type[Exception],
    connection_error: type[Exception],
    base_url: str,
    timeout: float,
    secrets: Sequence[str],
) -> Completion | ProviderError:
    """A provider content-filter refusal as a Completion; every other failure as a ProviderError."""
    if isinstance(exc, status_error):
        status = int(getattr(exc, "status_code", 0))
        body = getattr(exc, "body", None)
        code = error_code(body)
        if status == 400 and code in CONTENT_FILTER_CODES:
            return Completion(text="", finish_reason="content_filter", refused_by_provider=True)
        message = error_message(body, str(getattr(exc, "message", exc)))
        if code == "insufficient_quota":
            # A 429 that waiting cannot fix.
            return ProviderError(f"{status} quota exhausted: {message}", False, status, secrets=secrets)
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        return ProviderError(
            f"{status} {message}",
            retryable=status in RETRYABLE_STATUS or status >= 500,
            status=status,
            retry_after=parse_retry_after(headers),
            secrets=secrets,
            limits=RateLimits.from_headers(headers),
            code=code,
            param=error_param(body),
        )
    # A refused connection or an unknown host is that, whatever the class: the SDKs' aiohttp
    # transport raises it as a timeout, with the OS error further down the chain.
    cause = connection_cause(exc) if isinstance(exc, (timeout_error, connection_error)) else None
    if isinstance(exc, timeout_error) and cause is None:
        return ProviderError(f"no answer from {base_url} within {timeout:g} s", True, kind="timeout", secrets=secrets)
    if isinstance(exc, (timeout_error, connection_error)):
        reason = {"refused": " (connection refused)", "unknown host": " (unknown host)"}.get(cause or "", "")
        where = f"cannot connect to {base_url}{reason}"
        return ProviderError(where, True, kind="connection", secrets=secrets, cause=cause)
    return ProviderError(
        f"the server's answer could not be read ({type(exc).__name__}: {exc})",
        True,
        kind="malformed",
        secrets=secrets,
    )


@functools.cache
def shared_tls_context(http: ModuleType) -> ssl.SSLContext:
    """One TLS context per HTTP library (httpx, httpx2) and process, made as that library makes it.

    Left to itself, httpx builds a context and loads the CA bundle into it for every client: 17 ms
    of CPU each, twice per run (model and judge), and for every run of a process that runs several.
    """
    context: ssl.SSLContext = http.create_ssl_context()
    return context


@dataclass(frozen=True)
class SDK:
    """What a provider takes from its SDK: the async client and the classes its answers come in."""

    client: Callable[..., Any]  # the async client class, called with api_key, base_url, timeout, max_retries
    http_client: Callable[[], Any]  # the SDK's default HTTP client, on the process's shared TLS context
    status_error: type[Exception]
    timeout_error: type[Exception]
    connection_error: type[Exception]
    raw_response: type[Any]  # the SDK's HTTP response class: `post` returns it unread
    omit: type[Any]  # the SDK's `Omit` marker: drops a default header from a request


class SDKProvider(ChatProvider):
    """A provider backed by one of the generated SDKs; subclasses say how to import theirs."""

    default_base_url: str = ""
    chat_path: str = "/chat/completions"  # relative to the base URL
    models_path: str = "/models"  # `GET {base}{models_path}/{id}`: the model object (its shutdown date)

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float) -> None:
        super().__init__(api_key=api_key, base_url=base_url, timeout=timeout)
        self._client: Any = None
        self._sdk: SDK | None = None

    @staticmethod
    @abstractmethod
    def load_sdk() -> SDK:
        """Import the SDK (slow: called on the provider's first call) and name its parts."""

    async def complete(self, request: ChatRequest) -> Completion:
        if self._client is None:
            # Built on first use so that it belongs to the engine's event loop. A local
            # OpenAI-compatible server usually needs no key, but the SDKs insist on one.
            try:
                self._sdk = self.load_sdk()
            except ImportError as exc:  # a broken install: every call would fail the same way
                raise ProviderError(
                    f"the {self.name} SDK cannot be imported ({exc})", retryable=False, code=SDK_IMPORT_FAILED
                ) from None
            self._client = self._sdk.client(
                api_key=self.api_key or "unused",
                base_url=self.base_url or self.default_base_url,
                timeout=self.timeout,
                max_retries=0,
                http_client=self._sdk.http_client(),
            )
        sdk = self._sdk
        assert sdk is not None
        body = request.body()
        try:
            # The SDK's timeout bounds each read, so a body that trickles in a byte at a time
            # would never time out: the deadline covers the whole request.
            data, headers = await self._post_within(body)
        except asyncio.TimeoutError:
            raise ProviderError(
                f"no answer from {display_url(self.base_url or self.default_base_url)} within {self.timeout:g} s",
                True,
                kind="timeout",
            ) from None
        except Exception as exc:
            outcome = translate(
                exc,
                status_error=sdk.status_error,
                timeout_error=sdk.timeout_error,
                connection_error=sdk.connection_error,
                base_url=display_url(self.base_url or self.default_base_url) or "",
                timeout=self.timeout,
                secrets=self.secrets,
            )
            if isinstance(outcome, ProviderError):
                raise outcome from None
            return outcome
        return read_completion(data, RateLimits.from_headers(headers))

    async def _post_within(self, body: dict[str, Any]) -> tuple[Any, Any]:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(self.timeout):
                return await self._post(body)
        return await asyncio.wait_for(self._post(body), self.timeout)  # pragma: no cover - Python 3.10

    async def _post(self, body: dict[str, Any]) -> tuple[Any, Any]:
        """The parsed body and the headers of one chat-completions call."""
        # The client's plain `post` keeps its auth, base URL, timeouts and error classes but skips
        # the typed request and response models, which cost ~1 ms of CPU per call; the raw
        # response also carries the rate-limit headers.
        assert self._sdk is not None
        response = await self._client.post(
            self.chat_path, cast_to=self._sdk.raw_response, body=body, options=self._options(self._sdk)
        )
        return response.json(), response.headers

    def _options(self, sdk: SDK) -> dict[str, Any]:
        # Without a key, send no Authorization header at all (the SDKs would send a placeholder).
        return {} if self.api_key else {"headers": {"Authorization": sdk.omit()}}

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
