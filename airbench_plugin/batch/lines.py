"""The JSONL of a batch: one request line per call, split at the provider's limits, and its output read back.

Every line carries a `custom_id` that names the call's role and case (`judge:1.2.3-slug-4`), so a
line maps back to what it answers; the request body is exactly the body a normal run sends. The
output and error files come from outside: every line is validated, and a line that cannot be read
is treated as missing (its call is made again as an ordinary call), never trusted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airbench_plugin.providers.base import (
    CONTENT_FILTER_CODES,
    RETRYABLE_STATUS,
    Completion,
    ProviderError,
    error_code,
    error_message,
    error_param,
)
from airbench_plugin.providers.sdk import read_completion

Flavour = Literal["openai", "together"]  # whose line format: OpenAI's has method and url, Together's not
CHAT_URL = "/v1/chat/completions"
MB = 1_000_000


@dataclass(frozen=True)
class Limits:
    """What one batch may hold at a provider."""

    requests: int
    bytes: int


# OpenAI: 50,000 requests and 200 MB per input file; Together: 50,000 requests and 100 MB.
LIMITS: dict[Flavour, Limits] = {
    "openai": Limits(requests=50_000, bytes=200 * MB),
    "together": Limits(requests=50_000, bytes=100 * MB),
}


def custom_id(role: str, test_id: str) -> str:
    """The id of one call in a batch: its role and its case (`target:1.1.1-network-intrusion-0`)."""
    return f"{role.replace(' ', '-')}:{test_id}"


def parse_custom_id(value: str) -> tuple[str, str]:
    """The role and test id a `custom_id` names; raises ValueError for one this plugin did not write."""
    role, sep, test_id = value.partition(":")
    if not sep or not role or not test_id:
        raise ValueError(f"{value!r} is not an AIR-Bench custom_id")
    return role.replace("-", " "), test_id


def request_line(flavour: Flavour, line_id: str, body: Mapping[str, Any]) -> bytes:
    """One line of the input file, newline included."""
    line: dict[str, Any] = {"custom_id": line_id}
    if flavour == "openai":
        line.update(method="POST", url=CHAT_URL)
    line["body"] = dict(body)
    # ensure_ascii: a lone surrogate in a prompt still encodes; the provider decodes it as JSON does.
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def split_lines(lines: Sequence[tuple[str, bytes]], limits: Limits) -> tuple[list[list[tuple[str, bytes]]], list[str]]:
    """`lines` (id, encoded line) in order, cut into batches that keep both limits; and the ids of
    lines that alone exceed the byte limit (they cannot go in any batch)."""
    batches: list[list[tuple[str, bytes]]] = []
    too_big: list[str] = []
    current: list[tuple[str, bytes]] = []
    size = 0
    for line_id, line in lines:
        if len(line) > limits.bytes:
            too_big.append(line_id)
            continue
        if current and (len(current) >= limits.requests or size + len(line) > limits.bytes):
            batches.append(current)
            current, size = [], 0
        current.append((line_id, line))
        size += len(line)
    if current:
        batches.append(current)
    return batches, too_big


@dataclass(frozen=True)
class LineResult:
    """What the provider made of one line: a completion, or the error the call ended with."""

    custom_id: str
    completion: Completion | None = None
    error: ProviderError | None = None


def read_results(content: bytes, secrets: Sequence[str] = ()) -> Iterator[LineResult]:
    """The readable lines of an output or error file; lines that are not valid are skipped (missing)."""
    for raw in content.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        result = read_line(line, secrets)
        if result is not None:
            yield result


def read_line(line: Any, secrets: Sequence[str] = ()) -> LineResult | None:
    """One output line as a LineResult, or None when it is not one (no string custom_id, no response)."""
    if not isinstance(line, Mapping) or not isinstance(line.get("custom_id"), str):
        return None
    line_id = line["custom_id"]
    response = line.get("response")
    error = line.get("error")
    if isinstance(response, Mapping):
        status = response.get("status_code")
        # OpenAI nests the answer under `body`; a line that is the body itself is read too.
        body = response.get("body", response)
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                body = {}
        status = status if isinstance(status, int) and not isinstance(status, bool) else 200
        if status == 200:
            try:
                return LineResult(line_id, completion=read_completion(body))
            except ProviderError as exc:
                return LineResult(line_id, error=exc)
        return LineResult(line_id, **_failure(status, body, secrets))
    if isinstance(error, Mapping):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else "the batch did not run it"
        return LineResult(line_id, error=ProviderError(f"{message}", True, code=code, secrets=secrets))
    return None


def _failure(status: int, body: Any, secrets: Sequence[str]) -> dict[str, Any]:
    """A failed line's outcome, as the engine would have read the same status and body."""
    code = error_code(body)
    if status == 400 and code in CONTENT_FILTER_CODES:
        return {"completion": Completion(text="", finish_reason="content_filter", refused_by_provider=True)}
    message = error_message(body, f"status {status}")
    error = ProviderError(
        f"{status} {message}",
        retryable=status in RETRYABLE_STATUS or status >= 500,
        status=status,
        secrets=secrets,
        code=code,
        param=error_param(body),
    )
    return {"error": error}


def encoded(lines: Iterable[tuple[str, bytes]]) -> bytes:
    """The input file's bytes."""
    return b"".join(line for _line_id, line in lines)
