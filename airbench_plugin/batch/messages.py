"""What batch mode tells the user: the header's lines and the end of the run's (notes, batches left running)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from airbench_plugin.batch.journal import STEPS, BatchRecord, Journal
from airbench_plugin.wording import plural

SHOWN_IDS = 5


class _BatchSettings(Protocol):
    @property
    def batch(self) -> bool: ...

    @property
    def batch_poll(self) -> float: ...


def header_lines(settings: _BatchSettings, cache_dir: Path) -> list[str]:
    """`airbench: batch mode: answers, then judgements; up to 24 h per step (...)`, and what is resumed."""
    if not settings.batch:
        return []
    lines = [
        "airbench: batch mode: answers, then judgements; up to 24 h per step (a look every "
        f"{settings.batch_poll:g} s, less often while a batch is unchanged)"
    ]
    owed = Journal(cache_dir).open_records()
    if owed:
        lines.append(
            f"airbench: batch mode: resuming {plural(len(owed), 'batch', 'batches')} recorded in {cache_dir} "
            "(their calls are not sent again)"
        )
    return lines


def end_lines(cache_dir: Path, run_id: str) -> list[str]:
    """What the batches did that the user must know, and the batches left running, with the way on."""
    journal = Journal(cache_dir)
    lines: list[str] = []
    state: dict[str, Any] = journal.run_state(run_id)
    for step in STEPS:
        notes = state.get(step, {}).get("notes", []) if isinstance(state.get(step), dict) else []
        lines += [f"airbench: batch mode: {note}." for note in notes if isinstance(note, str)]
    owed = journal.open_records()
    if owed:
        lines.append(left_running(owed, cache_dir))
    return lines


def left_running(records: list[BatchRecord], cache_dir: Path) -> str:
    ids = [record.batch_id or f"file {record.input_file_id}" for record in records]
    shown = ", ".join(ids[:SHOWN_IDS]) + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")
    return (
        f"airbench: batch mode: {plural(len(records), 'batch', 'batches')} still running at the provider ({shown}), "
        f"recorded in {cache_dir}: run again with the same cache to collect them (nothing is sent twice), or stop "
        f"them with `airbench batch cancel --cache {cache_dir}`."
    )
