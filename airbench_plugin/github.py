"""What the plugin reads of GitHub Actions' environment: whether this run is a pull request from a fork.

The event file is input from outside like any other: read defensively, and anything unexpected means
"not known to be a fork".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def fork_pull_request(environ: Mapping[str, str]) -> str | None:
    """The fork's `owner/name` when this GitHub Actions run is for a pull request from a fork (whose
    runs GitHub gives no secrets); None otherwise or when the event cannot be read."""
    if environ.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_review", "pull_request_review_comment"):
        return None
    path = environ.get("GITHUB_EVENT_PATH", "")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, ValueError):
        return None
    head = _get(event, "pull_request", "head", "repo", "full_name")
    base = _get(event, "pull_request", "base", "repo", "full_name")
    if not isinstance(head, str) or not isinstance(base, str) or not head:
        return None
    return head if head != base or _get(event, "pull_request", "head", "repo", "fork") is True else None
