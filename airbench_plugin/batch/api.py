"""A provider's Files and Batches endpoints, through its own SDK's clients.

OpenAI: `files.create(purpose="batch")`, `batches.create(completion_window="24h",
endpoint="/v1/chat/completions")`, `batches.retrieve`, `files.content`, `batches.cancel`.
Together has the same shape through `files.upload(purpose="batch-api")` (its upload manager:
a redirect to an upload URL, a PUT, then `preprocess`) and `batches.create` answering
`{"job": ...}`. Both are read into one `BatchState` with the same status words.
"""

from __future__ import annotations

import urllib.parse
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airbench_plugin.batch.journal import FINAL, Status
from airbench_plugin.batch.lines import LIMITS, Flavour, Limits
from airbench_plugin.providers.base import ChatProvider, display_url, redact
from airbench_plugin.providers.sdk import SDKProvider
from airbench_plugin.text import clip

CONTROL_RETRIES = 3  # the SDK's own retries for the small control calls (upload, create, status)
_STATUSES: frozenset[str] = frozenset(
    {"validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"}
)


class BatchAPIError(Exception):
    """A Files or Batches call failed; the message is one sentence, without secrets."""


@dataclass(frozen=True)
class BatchState:
    """What the provider says of a batch."""

    batch_id: str
    status: Status
    completed: int = 0
    failed: int = 0
    total: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    note: str | None = None  # the provider's reason for a failed batch (validation errors)

    @property
    def final(self) -> bool:
        return self.status in FINAL


def status_of(raw: object) -> Status:
    """A provider's status word in our spelling; an unknown word is read as still in progress."""
    word = str(raw or "").lower()
    return word if word in _STATUSES else "in_progress"  # type: ignore[return-value]


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class BatchAPI(ABC):
    """One endpoint's Files and Batches clients."""

    flavour: Flavour

    def __init__(self, provider: SDKProvider) -> None:
        self.provider = provider
        self._client: Any = None

    @property
    def limits(self) -> Limits:
        return LIMITS[self.flavour]

    @property
    def where(self) -> str:
        return display_url(self.provider.base_url or self.provider.default_base_url) or ""

    def client(self) -> Any:
        if self._client is None:
            sdk = self.provider.load_sdk()
            self._client = sdk.client(
                api_key=self.provider.api_key or "unused",
                base_url=self.provider.base_url or self.provider.default_base_url,
                timeout=max(self.provider.timeout, 60.0),  # an upload of 100 MB takes its time
                max_retries=CONTROL_RETRIES,
                http_client=sdk.http_client(),
            )
        return self._client

    async def call(self, what: str, coroutine: Any) -> Any:
        """Await one SDK call; any failure becomes one sentence naming `what` failed."""
        try:
            return await coroutine
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            reason = f"{status} " if status else ""
            message = redact(f"{reason}{type(exc).__name__}: {exc}", self.provider.secrets)
            raise BatchAPIError(clip(f"{what} at {self.where} failed ({message})", 300)) from None

    @abstractmethod
    async def upload(self, path: Path) -> str:
        """Upload an input file; its file id."""

    @abstractmethod
    async def create(self, file_id: str) -> BatchState:
        """Start a batch over an uploaded file."""

    @abstractmethod
    async def retrieve(self, batch_id: str) -> BatchState: ...

    @abstractmethod
    async def cancel(self, batch_id: str) -> BatchState: ...

    @abstractmethod
    async def content(self, file_id: str) -> bytes: ...

    async def probe(self) -> bool:
        """Whether the server answers the Batches API (a local vLLM or Ollama does not)."""
        try:
            await self.client().batches.list()
        except Exception:
            return False
        return True

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class OpenAIBatches(BatchAPI):
    flavour: Flavour = "openai"

    async def upload(self, path: Path) -> str:
        with path.open("rb") as handle:
            created = await self.call(
                "uploading the batch file",
                self.client().files.create(file=(path.name, handle, "application/jsonl"), purpose="batch"),
            )
        return str(created.id)

    async def create(self, file_id: str) -> BatchState:
        batch = await self.call(
            "creating the batch",
            self.client().batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
            ),
        )
        return self.state(batch)

    async def retrieve(self, batch_id: str) -> BatchState:
        return self.state(await self.call("reading the batch's status", self.client().batches.retrieve(batch_id)))

    async def cancel(self, batch_id: str) -> BatchState:
        return self.state(await self.call("cancelling the batch", self.client().batches.cancel(batch_id)))

    async def content(self, file_id: str) -> bytes:
        response = await self.call("downloading a batch file", self.client().files.content(file_id))
        return bytes(response.content)

    @staticmethod
    def state(batch: Any) -> BatchState:
        counts = getattr(batch, "request_counts", None)
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        note = "; ".join(str(getattr(e, "message", "") or getattr(e, "code", "")) for e in errors[:3]) or None
        return BatchState(
            batch_id=str(batch.id),
            status=status_of(batch.status),
            completed=_count(getattr(counts, "completed", 0)),
            failed=_count(getattr(counts, "failed", 0)),
            total=_count(getattr(counts, "total", 0)),
            output_file_id=_text(getattr(batch, "output_file_id", None)),
            error_file_id=_text(getattr(batch, "error_file_id", None)),
            note=clip(note, 300) if note else None,
        )


class TogetherBatches(BatchAPI):
    flavour: Flavour = "together"

    async def upload(self, path: Path) -> str:
        # check=False: the SDK's local check applies its fine-tuning rules to every JSONL file.
        created = await self.call(
            "uploading the batch file", self.client().files.upload(file=path, purpose="batch-api", check=False)
        )
        return str(created.id)

    async def create(self, file_id: str) -> BatchState:
        created = await self.call(
            "creating the batch",
            self.client().batches.create(
                input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
            ),
        )
        if created.job is None or not created.job.id:
            raise BatchAPIError(f"creating the batch at {self.where} failed (the answer names no batch)")
        return self.state(created.job)

    async def retrieve(self, batch_id: str) -> BatchState:
        return self.state(await self.call("reading the batch's status", self.client().batches.retrieve(batch_id)))

    async def cancel(self, batch_id: str) -> BatchState:
        return self.state(await self.call("cancelling the batch", self.client().batches.cancel(batch_id)))

    async def content(self, file_id: str) -> bytes:
        response = await self.call("downloading a batch file", self.client().files.content(file_id))
        return bytes(await response.read())

    @staticmethod
    def state(job: Any) -> BatchState:
        note = _text(getattr(job, "error", None))
        return BatchState(
            batch_id=str(job.id),
            status=status_of(job.status),
            output_file_id=_text(getattr(job, "output_file_id", None)),
            error_file_id=_text(getattr(job, "error_file_id", None)),
            note=clip(note, 300) if note else None,
        )


_APIS: dict[str, type[BatchAPI]] = {"openai": OpenAIBatches, "together": TogetherBatches}


def batch_api(provider: ChatProvider) -> BatchAPI | None:
    """The Batches client of `provider`'s endpoint, or None when it has none (a callable, recorded answers)."""
    kind = _APIS.get(provider.name)
    if kind is None or not isinstance(provider, SDKProvider):
        return None
    return kind(provider)


def provider_host(provider: ChatProvider) -> bool:
    """Whether `provider` is reached at its provider's own host (no probe needed)."""
    if provider.base_url is None:
        return True
    host = urllib.parse.urlsplit(provider.base_url).hostname or ""
    return host in provider.key_hosts
