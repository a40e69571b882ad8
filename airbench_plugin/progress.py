"""The live progress line: calls done, in flight, retried, errored, tokens. Pure formatting and pacing."""

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


def progress_line(done: int, total: int | None, counters: Mapping[str, int]) -> str:
    """One line such as `airbench: 120/5694 prompts · 64 in flight · 250 calls (10 cached) · ...`."""
    of = f"/{total}" if total else ""
    return (
        f"airbench: {done}{of} prompts · {counters['in_flight']} in flight · {_count(counters['calls'])} calls "
        f"({_count(counters['cached'])} cached) · {counters['retried']} retried · {counters['errored']} errored · "
        f"{_count(counters['tokens'])} tokens"
    )


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
