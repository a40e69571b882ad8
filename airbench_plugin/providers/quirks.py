"""What an endpoint refuses in a request, learned from its 400 answers, and how to send instead.

OpenAI's reasoning models (o-series, gpt-5) answer 400 `unsupported_parameter` to `max_tokens`
("Use 'max_completion_tokens' instead.") and 400 `unsupported_value` (newer ones
`unsupported_parameter`) to a temperature other than 1. After the first such answer the endpoint
sends `max_completion_tokens` and/or leaves the temperature out, for every later call too.

`max_completion_tokens` counts the reasoning too: an endpoint with a `headroom` (a judge) is sent its
visible-answer allowance plus that headroom, so thinking cannot eat the answer's tokens. An endpoint
given a reasoning effort is a reasoning model from its first call: it is sent `max_completion_tokens`
at once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from airbench_plugin.providers.base import ChatRequest, ProviderError

TokenField = Literal["max_tokens", "max_completion_tokens"]
REFUSED_CODES = frozenset({"unsupported_parameter", "unsupported_value"})


@dataclass
class RequestShape:
    """How one endpoint wants the generation settings sent."""

    token_field: TokenField = "max_tokens"
    send_temperature: bool = True
    headroom: int = 0  # tokens a reasoning model may think on top of the request's max_tokens

    @classmethod
    def for_endpoint(cls, reasoning_effort: str | None, headroom: int) -> RequestShape:
        """The first shape of an endpoint: a reasoning model's when it was given a reasoning effort."""
        token_field: TokenField = "max_tokens" if reasoning_effort is None else "max_completion_tokens"
        return cls(token_field=token_field, headroom=headroom)

    def limit(self, max_tokens: int) -> int:
        """The number sent in `token_field` for a visible allowance of `max_tokens`."""
        return max_tokens + self.headroom if self.token_field == "max_completion_tokens" else max_tokens

    def apply(self, request: ChatRequest) -> ChatRequest:
        """`request` as this endpoint accepts it."""
        if self.token_field == "max_tokens" and self.send_temperature:
            return request
        return dataclasses.replace(
            request,
            token_field=self.token_field,
            send_temperature=self.send_temperature,
            max_tokens=self.limit(request.max_tokens),
        )

    def adapt(self, error: ProviderError, sent: ChatRequest) -> bool:
        """Learn from a 400 that refused a setting of `sent`; True when it should be sent again, reshaped.

        Calls in flight when the first such answer came back were sent the old way: they are
        sent again too, and the shape is learned only once.
        """
        if error.status != 400:
            return False
        param = refused_parameter(error)
        if param == "max_tokens" and sent.token_field == "max_tokens":
            self.token_field = "max_completion_tokens"
            return True
        if param == "temperature" and sent.send_temperature:
            self.send_temperature = False
            return True
        return False

    def sent(self, temperature: float, max_tokens: int, reasoning_effort: str | None = None) -> dict[str, Any]:
        """The generation settings as this endpoint receives them, for the results."""
        settings: dict[str, Any] = {self.token_field: self.limit(max_tokens)}
        if self.send_temperature:
            settings["temperature"] = temperature
        if reasoning_effort is not None:
            settings["reasoning_effort"] = reasoning_effort
        return settings


def refused_parameter(error: ProviderError) -> str | None:
    """`max_tokens` or `temperature` when the 400 says that parameter (or its value) is unsupported."""
    if error.code in REFUSED_CODES and error.param in ("max_tokens", "temperature"):
        return error.param
    message = error.message
    if "'max_tokens'" in message and "max_completion_tokens" in message:
        return "max_tokens"
    if "'temperature'" in message and ("Unsupported" in message or "not supported" in message):
        return "temperature"
    return None
