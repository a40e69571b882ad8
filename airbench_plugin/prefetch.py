"""Which tests this process will run next, so their API calls can start before their turn.

Without xdist every collected test runs here, in order. An xdist worker only learns its tests
as the controller sends them; it must not start cases another worker will run, so it looks at
its own queue of assigned test indices. That queue is xdist's internal `WorkerInteractor.torun`
(a lock-protected deque); if a future xdist changes it, we fall back to the next test only,
which `Prefetch.deepest` makes visible: a worker publishes it, and the plugin's own tests fail
when it is 1 under `-n 2`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pytest

CaseT = TypeVar("CaseT", bound=Hashable)
DEPTH_KEY = "airbench_prefetch_depth"  # in a worker's `config.workeroutput`


def _worker_interactor(config: pytest.Config) -> Any:
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor" and hasattr(plugin, "torun"):
            return plugin
    return None


def upcoming(item: pytest.Item, nextitem: pytest.Item | None) -> Sequence[pytest.Item]:
    """The tests after `item` that this process is already committed to run, in order."""
    session = item.session
    if not hasattr(session.config, "workerinput"):
        items = session.items
        try:
            start = items.index(item)
        except ValueError:
            return [nextitem] if nextitem is not None else []
        return items[start + 1 :]
    interactor = _worker_interactor(session.config)
    queued: list[int] = []
    try:
        next_index = getattr(interactor, "nextitem_index", None)
        if isinstance(next_index, int):
            queued.append(next_index)
        with interactor.torun.lock() as pending:
            queued.extend(i for i in pending if isinstance(i, int))
    except Exception:  # an xdist without that queue: run one test ahead
        return [nextitem] if nextitem is not None else []
    return [session.items[i] for i in queued if 0 <= i < len(session.items)]


@dataclass
class Prefetch(Generic[CaseT]):
    """Which cases to start and which to cancel as each test begins: the decisions, without pytest.

    Without xdist every case is started at the first test. An xdist worker starts the cases
    queued for it and cancels the ones it started that left its queue; under `worksteal` only
    the head half of the queue, since stealing takes the tail.
    """

    worker: bool
    worksteal: bool = False
    pending: dict[CaseT, None] = field(default_factory=dict)  # started ahead, not yet run here
    all_started: bool = False  # without xdist: everything was started at the first test
    deepest: int = 0  # the most cases started ahead of a running test

    def step(self, current: CaseT, upcoming: Sequence[CaseT]) -> tuple[list[CaseT], list[CaseT]]:
        """As `current` begins with `upcoming` queued after it: the cases to cancel and to start."""
        if not self.worker:
            if self.all_started:
                return [], []
            self.all_started = True
            self.deepest = max(self.deepest, len(upcoming))
            return [], list(upcoming)
        self.pending.pop(current, None)
        ahead = list(upcoming)
        if self.worksteal:
            ahead = ahead[: max(1, len(ahead) // 2)]
        self.deepest = max(self.deepest, len(ahead))
        queued = dict.fromkeys(ahead)
        cancel = [started for started in self.pending if started not in queued]
        for gone in cancel:
            del self.pending[gone]
        start = [case for case in queued if case not in self.pending]
        self.pending.update(dict.fromkeys(start))
        return cancel, start
