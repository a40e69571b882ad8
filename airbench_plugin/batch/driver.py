"""Send one step's calls to one endpoint as batches, wait for them, and put their answers in the cache.

Resuming comes first: a batch recorded in the journal and not yet collected (a run killed or
interrupted while it ran) is polled and collected, and its lines are not sent again. What is
left is split at the provider's limits and sent; every batch is polled with back-off until it
ends. Completed lines are stored under their cache keys; a line in the error file, a line
missing from an expired or cancelled batch, and every line of a batch that failed validation
are simply not stored, so the test that needs it makes the call as an ordinary one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airbench_plugin.batch.api import BatchAPI, BatchAPIError, BatchState
from airbench_plugin.batch.journal import BatchRecord, Journal, Step
from airbench_plugin.batch.lines import encoded, read_results, request_line, split_lines
from airbench_plugin.providers.base import Completion, ProviderError, display_url
from airbench_plugin.store import CallStore

BACKOFF = 1.5  # each look at an unchanged batch waits this much longer than the last
BACKOFF_CAP = 300.0  # seconds: the longest wait between two looks at a batch
DEFAULT_POLL = 10.0  # seconds before the first look (`--airbench-batch-poll`)


@dataclass(frozen=True)
class BatchItem:
    """One call to send in a batch: exactly the body of the ordinary call, and where its answer goes."""

    custom_id: str
    key: str  # its cache key
    body: dict[str, Any]
    keep: Callable[[Completion], bool] = lambda _c: True  # a judge keeps only replies it can read
    cost: int = 0  # the most tokens it may use: its prompt's estimate and its max tokens


@dataclass
class StepProgress:
    """What the live progress line shows of the batches: their step, status and counts."""

    step: Step | None = None
    status: str = ""
    batches: int = 0
    done: int = 0
    total: int = 0
    states: dict[str, BatchState] = field(default_factory=dict)

    def seen(self, record: BatchRecord, state: BatchState) -> None:
        self.states[record.local_id] = state
        self.batches = len(self.states)
        self.done = sum(s.completed + s.failed for s in self.states.values())
        statuses = sorted({s.status for s in self.states.values()})
        self.status = "/".join(statuses)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "batches": self.batches,
            "done": self.done,
            "total": self.total,
        }


@dataclass
class StepOutcome:
    """What one endpoint's batches of a step gave: keys stored, lines failed, and what to tell the user."""

    stored: list[str] = field(default_factory=list)
    failed: dict[str, ProviderError] = field(default_factory=dict)  # by cache key
    notes: list[str] = field(default_factory=list)


class Backoff:
    """Seconds before the next look at a batch: `poll` at first and after a change, longer while nothing changes."""

    def __init__(self, poll: float) -> None:
        self.poll = poll
        self.delay = poll
        self.last: tuple[Any, ...] | None = None

    def next(self, state: BatchState) -> float:
        seen = (state.status, state.completed, state.failed)
        if seen != self.last:
            self.last, self.delay = seen, self.poll
        else:
            self.delay = min(max(self.poll, BACKOFF_CAP), self.delay * BACKOFF)
        return self.delay


@dataclass
class Submitter:
    """One endpoint's batches for one step."""

    api: BatchAPI
    journal: Journal
    store: CallStore
    role: str
    model: str
    step: Step
    poll: float
    progress: StepProgress
    on_tokens: Callable[[int, int], None] = lambda _p, _c: None
    allow: Callable[[Sequence[BatchItem]], Sequence[BatchItem]] = lambda items: items
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def _mine(self, record: BatchRecord) -> bool:
        return (
            record.provider == self.api.provider.name
            and record.base_url == self.where
            and record.role == self.role
            and record.step == self.step
        )

    @property
    def where(self) -> str | None:
        return display_url(self.api.provider.base_url)

    async def run(self, items: Sequence[BatchItem]) -> StepOutcome:
        outcome = StepOutcome()
        resumed = [record for record in self.journal.open_records() if self._mine(record)]
        covered = {key for record in resumed for key in record.lines.values()}
        wanted = {item.key: item for item in items}
        to_send = [item for item in items if item.key not in covered]
        allowed = list(self.allow(to_send))
        if len(allowed) < len(to_send):
            outcome.notes.append(
                f"{len(to_send) - len(allowed):,} {self.role} calls were left out of the batch: their worst case "
                "would pass --airbench-token-budget"
            )
        records = list(resumed)
        lines = [(item.custom_id, request_line(self.api.flavour, item.custom_id, item.body)) for item in allowed]
        chunks, too_big = split_lines(lines, self.api.limits)
        if too_big:
            outcome.notes.append(f"{len(too_big)} {self.role} calls are larger than a batch may be; called as usual")
        by_id = {item.custom_id: item for item in allowed}
        for chunk in chunks:
            try:
                records.append(await self._send(chunk, by_id))
            except BatchAPIError as exc:
                outcome.notes.append(f"a {self.role} batch could not be sent ({exc}); its calls were made as usual")
        self.progress.total += sum(len(record.lines) for record in records)
        await asyncio.gather(*(self._follow(record, wanted, outcome) for record in records))
        return outcome

    async def _send(self, chunk: list[tuple[str, bytes]], by_id: dict[str, BatchItem]) -> BatchRecord:
        local_id = self.journal.new_id()
        path = self.journal.input_path(local_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        content = encoded(chunk)
        path.write_bytes(content)
        try:
            file_id = await self.api.upload(path)
        finally:
            # Uploaded, the provider holds it (the record keeps its id and size); not uploaded, its
            # lines are made as ordinary calls. Either way the cache need not keep ~25 MB per step.
            path.unlink(missing_ok=True)
        record = BatchRecord(
            local_id=local_id,
            provider=self.api.provider.name,
            base_url=self.where,
            model=self.model,
            role=self.role,
            step=self.step,
            lines={line_id: by_id[line_id].key for line_id, _line in chunk},
            input_file_id=file_id,
            input_bytes=len(content),
        )
        self.journal.save(record)  # the file is paid for storage: recorded before anything else
        state = await self.api.create(file_id)
        return self.journal.update(record, batch_id=state.batch_id, status=state.status)

    async def _follow(self, record: BatchRecord, wanted: dict[str, BatchItem], outcome: StepOutcome) -> None:
        """Poll `record`'s batch until it ends, then collect it."""
        try:
            if record.batch_id is None:  # uploaded, but the run stopped before the batch was created
                state = await self.api.create(record.input_file_id)
                record = self.journal.update(record, batch_id=state.batch_id, status=state.status)
            batch_id = record.batch_id
            assert batch_id is not None
            backoff = Backoff(self.poll)
            state = await self.api.retrieve(batch_id)
            while not state.final:
                if (state.status, state.completed, state.failed) != (record.status, record.completed, record.failed):
                    record = self.journal.update(
                        record, status=state.status, completed=state.completed, failed=state.failed
                    )
                self.progress.seen(record, state)
                await self.sleep(backoff.next(state))
                state = await self.api.retrieve(batch_id)
            self.progress.seen(record, state)
            await self._collect(record, state, wanted, outcome)
        except BatchAPIError as exc:
            outcome.notes.append(f"a {self.role} batch could not be followed ({exc}); its calls were made as usual")

    async def _collect(
        self, record: BatchRecord, state: BatchState, wanted: dict[str, BatchItem], outcome: StepOutcome
    ) -> None:
        stored = 0
        for file_id in (state.output_file_id, state.error_file_id):
            if file_id is None:
                continue
            content = await self.api.content(file_id)
            for result in read_results(content, self.api.provider.secrets):
                key = record.lines.get(result.custom_id)
                if key is None:
                    continue  # not a line of this batch: never trusted
                if result.completion is not None:
                    item = wanted.get(key)
                    self.on_tokens(result.completion.prompt_tokens, result.completion.completion_tokens)
                    if item is None or item.keep(result.completion):
                        await asyncio.to_thread(self.store.put, key, result.completion)
                        outcome.stored.append(key)
                        stored += 1
                elif result.error is not None:
                    outcome.failed[key] = result.error
        missing = len(record.lines) - stored
        if state.status != "completed" or missing:
            why = f"{state.status}" + (f": {state.note}" if state.note else "")
            outcome.notes.append(
                f"{self.role} batch {state.batch_id} {why}; {missing:,} of its {len(record.lines):,} calls were made "
                "as ordinary calls"
            )
        self.journal.update(
            record,
            status=state.status,
            completed=state.completed,
            failed=state.failed,
            output_file_id=state.output_file_id,
            error_file_id=state.error_file_id,
            note=state.note,
            collected=True,
        )
