"""The record of a run's batches in the cache directory: what was sent, where, and what came back.

A record is written the moment its input file is uploaded and again the moment its batch is
created, so a run killed between any two calls leaves nothing paid for unrecorded: the next run
with the same cache finds the batch and collects it instead of sending its lines again. Records
are one small JSON file each (written whole, then renamed), so processes never see half a record;
a file that cannot be read is skipped, never trusted.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

Step = Literal["answers", "judgements"]
STEPS: tuple[Step, ...] = ("answers", "judgements")
# A batch's life, the same words for every provider (OpenAI writes them in lower case, Together in upper).
Status = Literal[
    "uploaded", "validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"
]
FINAL: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
FOLDER = "batches"


@dataclass(frozen=True)
class BatchRecord:
    """One batch: its files, its endpoint, its lines (custom id -> cache key) and what is known of it."""

    local_id: str
    provider: str
    base_url: str | None  # shown without credentials: the record is on disk
    model: str
    role: str
    step: Step
    lines: Mapping[str, str]  # custom id -> the cache key its answer is stored under
    input_file_id: str
    input_bytes: int
    batch_id: str | None = None
    status: Status = "uploaded"
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    collected: bool = False  # its outputs are in the cache (or known lost)
    created_at: float = field(default_factory=time.time)
    note: str | None = None  # why it failed, as the provider said

    @property
    def open(self) -> bool:
        """Still owed: running at the provider, or finished but not yet collected."""
        return not self.collected

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lines"] = dict(self.lines)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchRecord:
        lines = data["lines"]
        if not isinstance(lines, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in lines.items()
        ):
            raise ValueError("lines is not a map of strings")
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        record = cls(**{**known, "lines": dict(lines)})
        for name in ("local_id", "provider", "model", "role", "input_file_id"):
            if not isinstance(getattr(record, name), str):
                raise ValueError(f"{name} is not a string")
        if record.step not in STEPS:
            raise ValueError(f"unknown step {record.step!r}")
        return record


class Journal:
    """The batch records of one cache directory, and each run's step marks."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.folder = Path(cache_dir) / FOLDER

    def new_id(self) -> str:
        return uuid.uuid4().hex[:16]

    def input_path(self, local_id: str) -> Path:
        """Where a batch's input file is written before it is uploaded."""
        return self.folder / f"{local_id}.jsonl"

    def save(self, record: BatchRecord) -> None:
        self._write(self.folder / f"{record.local_id}.json", record.to_json())

    def update(self, record: BatchRecord, **changes: Any) -> BatchRecord:
        changed = replace(record, **changes)
        self.save(changed)
        return changed

    def records(self) -> Iterator[BatchRecord]:
        """Every readable record, oldest first."""
        found = []
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            if path.name.startswith("run-"):
                continue
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                found.append(BatchRecord.from_json(json.loads(path.read_text(encoding="utf-8"))))
        yield from sorted(found, key=lambda record: record.created_at)

    def open_records(self) -> list[BatchRecord]:
        return [record for record in self.records() if record.open]

    # --- a run's steps: settled once their batches are collected, for every process of the run ----

    def begin(self, run: str, step: Step, roles: list[str]) -> None:
        """Mark `step` of `run` planned: the roles whose calls it sends as batches."""
        state = self.run_state(run)
        state[step] = {"roles": roles}
        self._write(self.folder / f"run-{run}.json", state)

    def settle(self, run: str, step: Step, delivered: list[str], notes: list[str]) -> None:
        """Mark `step` of `run` settled: its batches' answers are in the cache (`delivered` keys)."""
        state = self.run_state(run)
        roles = state.get(step, {}).get("roles", []) if isinstance(state.get(step), dict) else []
        state[step] = {"roles": roles, "delivered": delivered, "notes": notes}
        self._write(self.folder / f"run-{run}.json", state)

    def run_state(self, run: str) -> dict[str, Any]:
        path = self.folder / f"run-{run}.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _write(self, path: Path, data: Mapping[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}")
        temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, path)
