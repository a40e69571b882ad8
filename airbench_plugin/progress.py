"""The live progress line: prompts done, rate and ETA, calls in flight, retried, errored, tokens. Pure
formatting and pacing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

PROGRESS_EVERY = 5.0  # seconds between lines


def _count(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:,}"


def merge(snapshots: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """The engine counters of every process, added up."""
    total = {"calls": 0, "cached": 0, "in_flight": 0, "retried": 0, "errored": 0, "tokens": 0}
    for snapshot in snapshots.values():
        for name in ("calls", "cached", "in_flight", "retried", "errored"):
            total[name] += int(snapshot.get(name, 0))
        for pair in snapshot.get("tokens", {}).values():
            total["tokens"] += int(sum(pair))
    return total


def duration(seconds: float) -> str:
    """`45 s`, `7 min 40 s`, `2 h 05 min`: whole seconds, two units at most."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def pace(done: int, total: int | None, elapsed: float | None) -> str:
    """`12.5 prompts/s · ETA 7 min 20 s` from the prompts done since the first test started; empty
    before there is a rate to speak of (nothing done yet)."""
    if elapsed is None or elapsed <= 0 or done <= 0:
        return ""
    rate = done / elapsed
    text = f"{rate:.1f} prompts/s" if rate >= 1 else f"{rate * 60:.1f} prompts/min"
    if total and done < total:
        text += f" · ETA {duration((total - done) / rate)}"
    return f"{text} · "


def progress_line(done: int, total: int | None, counters: Mapping[str, int], elapsed: float | None = None) -> str:
    """One line such as `airbench: 120/5694 prompts · 12.5 prompts/s · ETA 7 min 26 s · 64 in flight · ...`;
    `elapsed` is the time since the first test started (no rate and ETA without it)."""
    of = f"/{total}" if total else ""
    return (
        f"airbench: {done}{of} prompts · {pace(done, total, elapsed)}{counters['in_flight']} in flight · "
        f"{_count(counters['calls'])} calls "
        f"({_count(counters['cached'])} cached) · {counters['retried']} retried · {counters['errored']} errored · "
        f"{_count(counters['tokens'])} tokens"
    )


def batch_part(snapshots: Mapping[str, Mapping[str, Any]]) -> str:
    """` · batch answers: in_progress, 120/5,694 calls`: the driving process's batches, or nothing."""
    for snapshot in snapshots.values():
        batch = snapshot.get("batch")
        if isinstance(batch, Mapping) and batch.get("step"):
            status = batch.get("status") or "sending"
            done, total = int(batch.get("done", 0)), int(batch.get("total", 0))
            return f" · batch {batch['step']}: {status}, {done:,}/{total:,} calls"
    return ""


class Pacer:
    """Says when the next progress line is due."""

    def __init__(self, every: float | None = None) -> None:
        self.every = PROGRESS_EVERY if every is None else every  # read late, so a test can shorten it
        self.last: float | None = None

    def due(self, now: float) -> bool:
        if self.last is None:
            self.last = now
            return False
        if now - self.last >= self.every:
            self.last = now
            return True
        return False


class _Terminal(Protocol):
    """The part of pytest's TerminalReporter that `write_progress` uses."""

    currentfspath: Any

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


def write_progress(terminal: _Terminal, line: str) -> None:
    """Write `line` on a line of its own, also after the `-q` dot row.

    `ensure_newline()` ends the line only when pytest wrote a file name on it; with `-q` the dots
    are written without one, so the open row is read from the writer's column instead.
    """
    column = getattr(getattr(terminal, "_tw", None), "width_of_current_line", 0)
    if column and not terminal.currentfspath:
        terminal.write("\n")
    terminal.write_line(line)  # ends a line that holds a file name, then writes ours
