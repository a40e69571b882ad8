"""Which tests this process will run next, so their API calls can start before their turn.

Without xdist every collected test runs here, in order. An xdist worker only learns its tests
as the controller sends them; it must not start cases another worker will run, so it looks at
its own queue of assigned test indices. That queue is xdist's internal `WorkerInteractor.torun`
(a lock-protected deque); if a future xdist changes it, we fall back to the next test only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest


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
