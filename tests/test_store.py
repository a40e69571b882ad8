"""The on-disk store: answers by call key, and the claims that keep two processes from paying twice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from airbench_plugin.providers.base import Completion
from airbench_plugin.store import CallStore


def test_a_claim_is_held_until_released(tmp_path: Path) -> None:
    first, second = CallStore(tmp_path), CallStore(tmp_path)
    assert first.claim("k")
    assert not second.claim("k")  # the first holder is alive and making the call
    assert not first.claim("k")  # nor is a second call of the same process let through
    first.release("k")
    assert second.claim("k")
    first.release("k")  # only the holder can release a claim
    assert not first.claim("k")


def test_the_store_counts_answers_not_claims(tmp_path: Path) -> None:
    store = CallStore(tmp_path)
    store.claim("k")
    assert len(store) == 0
    store.put("k", Completion(text="answer"))
    store.release("k")
    assert len(store) == 1
    assert store.get("k") == Completion(text="answer")


def test_a_claim_of_a_killed_process_is_taken_over_at_once(tmp_path: Path) -> None:
    claim_and_die = (
        "import os, sys\n"
        "from airbench_plugin.store import CallStore\n"
        "assert CallStore(sys.argv[1]).claim('k', ttl=3600)\n"
        "os._exit(0)\n"  # no release, no close: as if killed
    )
    subprocess.run([sys.executable, "-c", claim_and_die, str(tmp_path)], check=True)
    assert CallStore(tmp_path).claim("k")


def test_a_claim_that_is_not_renewed_expires(tmp_path: Path) -> None:
    holder, other = CallStore(tmp_path), CallStore(tmp_path)
    assert holder.claim("k", ttl=0.2)
    assert not other.claim("k")
    time.sleep(0.3)
    assert other.claim("k")


def test_a_renewed_claim_stays(tmp_path: Path) -> None:
    holder, other = CallStore(tmp_path), CallStore(tmp_path)
    assert holder.claim("k", ttl=0.2)
    holder.renew("k", ttl=3600)
    time.sleep(0.3)
    assert not other.claim("k")
