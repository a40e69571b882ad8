"""What the endpoints' answers held that could not be right, for one warning line per endpoint at the end.

The engine notes every `Suspect` number (providers/numbers.py) and every answer without usage by
endpoint; each process publishes its `to_json()`, the controller merges them and prints at most
one line per endpoint and kind, however many answers it concerned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airbench_plugin.providers.numbers import Suspect
from airbench_plugin.wording import plural


@dataclass
class EndpointNotes:
    """One endpoint's bad numbers and answers without usage."""

    suspect: int = 0
    first: str | None = None  # the first bad number, as `usage.prompt_tokens negative`
    no_usage: int = 0


@dataclass
class SuspectNumbers:
    """Bad numbers and missing usage, by endpoint (`the judge (judge-model)`)."""

    endpoints: dict[str, EndpointNotes] = field(default_factory=dict)
    budget: bool = False  # a token budget is set: missing usage means it counts estimates

    def note(self, endpoint: str, suspect: Iterable[Suspect], usage_reported: bool = True) -> None:
        notes = list(suspect)
        if not notes and usage_reported:
            return
        entry = self.endpoints.setdefault(endpoint, EndpointNotes())
        entry.suspect += len(notes)
        if notes and entry.first is None:
            entry.first = str(notes[0])
        if not usage_reported:
            entry.no_usage += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "endpoints": {
                name: {"suspect": e.suspect, "first": e.first, "no_usage": e.no_usage}
                for name, e in self.endpoints.items()
            },
        }

    @classmethod
    def merged(cls, snapshots: Iterable[Mapping[str, Any]]) -> SuspectNumbers:
        """The notes of every process of a run, from their `to_json()`."""
        total = cls()
        for data in snapshots:
            total.budget = total.budget or bool(data.get("budget"))
            endpoints = data.get("endpoints")
            for name, entry in (endpoints if isinstance(endpoints, Mapping) else {}).items():
                mine = total.endpoints.setdefault(str(name), EndpointNotes())
                mine.suspect += int(entry.get("suspect") or 0)
                mine.no_usage += int(entry.get("no_usage") or 0)
                mine.first = mine.first or entry.get("first")
        return total

    def warnings(self) -> list[str]:
        """At most two lines per endpoint: its bad numbers; its missing usage when a budget counts on it."""
        lines = []
        for name, entry in self.endpoints.items():
            if entry.suspect:
                lines.append(
                    f"airbench: WARNING: the {name} answered {plural(entry.suspect, 'number')} that cannot be right "
                    f"(first: {entry.first}); they were treated as missing."
                )
            if entry.no_usage and self.budget:
                lines.append(
                    f"airbench: WARNING: the {name} reported no token usage in "
                    f"{plural(entry.no_usage, 'answer')}; --airbench-token-budget cannot be enforced on what it "
                    "reports, so those answers counted estimated tokens (prompt characters / 4 + max tokens)."
                )
        return lines
