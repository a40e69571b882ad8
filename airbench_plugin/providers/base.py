"""The one small interface every model backend implements, and the errors it raises."""

from __future__ import annotations

import math
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airbench_plugin import decode
from airbench_plugin.providers.limits import RateLimits
from airbench_plugin.providers.limits import parse_retry_after as parse_retry_after  # its first home
from airbench_plugin.providers.numbers import TOKEN_CEILING, Suspect
from airbench_plugin.redaction import redact as redact  # re-exported: callers import it from here
from airbench_plugin.redaction import url_secrets
from airbench_plugin.text import clip, valid_unicode

Message = Mapping[str, str]

# Status codes worth another try: rate limits, server faults, gateway timeouts.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
# Error codes providers use when their own content policy blocks a prompt.
CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation", "content_filtered"})


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions call: what is sent, and everything that changes its answer.

    `extra` holds body parameters beyond the common four (for a judge: `logprobs`,
    `top_logprobs`, `chat_template_kwargs`); they are sent as given and are part of the cache key.
    """

    model: str
    messages: tuple[Message, ...]
    temperature: float
    max_tokens: int
    extra: Mapping[str, Any] = field(default_factory=dict)
    # How the endpoint wants the settings (see providers/quirks.py); not part of the cache key.
    token_field: str = "max_tokens"  # or "max_completion_tokens" (OpenAI's reasoning models)
    send_temperature: bool = True

    def body(self) -> dict[str, Any]:
        """The JSON body of the call, as an OpenAI-compatible server reads it."""
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in self.messages]}
        if self.send_temperature:
            body["temperature"] = self.temperature
        body[self.token_field] = self.max_tokens
        body.update(self.extra)
        return body


@dataclass(frozen=True)
class TokenLogprob:
    """One generated position: its token, log-probability and the top alternatives there."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob, "top": [list(pair) for pair in self.top]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenLogprob:
        """A position as `to_json` wrote it; raises decode.DecodeError on a value that is not a logprob."""
        return cls(
            decode.text(data["token"], "logprobs.token"),
            decode.number(data["logprob"], "logprobs.logprob", -math.inf, 0.0),
            tuple(
                (decode.text(t, "logprobs.top.token"), decode.number(lp, "logprobs.top.logprob", -math.inf, 0.0))
                for t, lp in data.get("top", ())
            ),
        )


@dataclass(frozen=True)
class Completion:
    """One chat completion, reduced to what the benchmark needs."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    refused_by_provider: bool = False
    logprobs: tuple[TokenLogprob, ...] | None = None  # None: the server returned none
    # What the answer's headers said about the endpoint's rate limits; never cached or compared.
    limits: RateLimits | None = field(default=None, compare=False, repr=False)
    # Read from the response cache: the token counts are what the answer cost when it was made,
    # not what this run paid. Set by the engine, never stored.
    from_cache: bool = field(default=False, compare=False)
    # False when the server's answer had no readable usage: the counts are 0, not what it cost.
    usage_reported: bool = field(default=True, compare=False)
    # Numbers of the answer (usage, logprobs, headers) that could not be right and were treated as
    # missing; counted by the engine for one warning per endpoint, never stored.
    suspect: tuple[Suspect, ...] = field(default=(), compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "refused_by_provider": self.refused_by_provider,
        }
        if self.logprobs is not None:
            data["logprobs"] = [position.to_json() for position in self.logprobs]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Completion:
        """A completion as `to_json` wrote it; raises decode.DecodeError (a cache miss) on any bad value."""
        logprobs = data.get("logprobs")
        return cls(
            text=decode.text(data["text"], "text"),
            finish_reason=decode.opt_text(data.get("finish_reason"), "finish_reason"),
            prompt_tokens=decode.integer(data.get("prompt_tokens", 0), "prompt_tokens", 0, TOKEN_CEILING),
            completion_tokens=decode.integer(data.get("completion_tokens", 0), "completion_tokens", 0, TOKEN_CEILING),
            refused_by_provider=decode.boolean(data.get("refused_by_provider", False), "refused_by_provider"),
            logprobs=None
            if logprobs is None
            else tuple(TokenLogprob.from_json(decode.obj(p, "logprobs")) for p in decode.array(logprobs, "logprobs")),
        )


SDK_IMPORT_FAILED = "sdk_import_failed"  # ProviderError.code when a provider's SDK cannot be imported
ConnectionCause = Literal["refused", "unknown host"]  # why a connection failed, when the OS says
ErrorKind = Literal["api", "timeout", "connection", "malformed"]  # what failed: the API, the clock, the wire, the body


@dataclass
class ProviderError(Exception):
    """A failed call, classified: can retrying help, and how long the server asked us to wait."""

    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    kind: ErrorKind = "api"
    secrets: Sequence[str] = field(default=(), repr=False)
    limits: RateLimits | None = field(default=None, repr=False)
    cause: ConnectionCause | None = None  # for connection errors
    code: str | None = None  # the error body's `code`, e.g. "unsupported_parameter"
    param: str | None = None  # the error body's `param`, e.g. "max_tokens"

    @property
    def rate_limited(self) -> bool:
        """A 429 that waiting fixes (an exhausted quota is not retryable)."""
        return self.status == 429 and self.retryable

    def __post_init__(self) -> None:
        # A server's error body is text no one controls: no secrets, valid Unicode, a bounded length.
        self.message = clip(valid_unicode(redact(self.message, self.secrets)))
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ChatProvider(ABC):
    """A chat-completions backend. Implementations translate their SDK's errors to ProviderError."""

    name: str = ""
    key_env: tuple[str, ...] = ()
    dotenv_aliases: tuple[str, ...] = ()
    # Hosts that may receive the key from `key_env`: any other host gets a key only from a
    # variable the user names (--airbench-api-key-env), so a real key never reaches a proxy.
    key_hosts: tuple[str, ...] = ()

    def __init__(self, *, api_key: str | None, base_url: str | None, timeout: float) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.timeout = timeout

    @property
    def secrets(self) -> list[str]:
        """What no error message may show: the key and the base URL's credentials."""
        return [self.api_key or "", *url_secrets(self.base_url)]

    @abstractmethod
    async def complete(self, request: ChatRequest) -> Completion:
        """One chat completion; raises ProviderError."""

    async def aclose(self) -> None:  # noqa: B027 - most providers hold nothing to release
        """Release connections."""


def display_url(url: str | None) -> str | None:
    """`url` without user, password, query or fragment: what may be shown in reports and logs."""
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def error_code(body: object) -> str | None:
    """The `code` (or `type`) of an OpenAI-style error body, if any."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            for key in ("code", "type"):
                value = inner.get(key)
                if isinstance(value, str):
                    return value
    return None


def error_param(body: object) -> str | None:
    """The `param` of an OpenAI-style error body: the request field it is about."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("param"), str):
            return str(inner["param"])
    return None


def error_message(body: object, fallback: str) -> str:
    """The human message of an OpenAI-style error body."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return fallback
