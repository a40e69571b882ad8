"""The README's GitHub Actions recipe, and what `airbench merge` says when no shard ran."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from airbench_plugin.cli import main
from airbench_plugin.github import fork_pull_request

README = Path(__file__).resolve().parent.parent / "README.md"


def _workflow() -> dict[str, Any]:
    text = README.read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(name: airbench\n.*?)```", text, flags=re.DOTALL)
    workflow: dict[str, Any] = yaml.safe_load(block)
    return workflow


def _steps(job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow()["jobs"][job]["steps"]
    return steps


def test_each_shard_caches_its_answers_under_the_model_and_judge() -> None:
    (cache,) = [step for step in _steps("shard") if str(step.get("uses", "")).startswith("actions/cache@")]
    assert cache["with"]["path"] == ".airbench_cache"
    for part in ("${{ env.AIRBENCH_MODEL }}", "${{ env.AIRBENCH_JUDGE_MODEL }}", "${{ matrix.shard }}"):
        assert part in cache["with"]["key"] and part in cache["with"]["restore-keys"]
    assert cache["with"]["key"].startswith(cache["with"]["restore-keys"])  # the newest earlier cache is restored


def test_shards_run_two_workers_and_skip_in_one_line_without_a_key() -> None:
    steps = _steps("shard")
    (run,) = [step for step in steps if "pytest " in str(step.get("run", ""))]
    assert " -n 2 " in run["run"] and "-n 8" not in run["run"]
    assert '--airbench-model "$AIRBENCH_MODEL" --airbench-judge-model "$AIRBENCH_JUDGE_MODEL"' in run["run"]
    assert "continue-on-error" not in run  # a bad option or a crash fails the shard; only exit 1 is let through
    assert run["run"].rstrip().endswith("|| [ $? -eq 1 ]")
    assert _workflow()["jobs"]["shard"]["env"]["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"
    (skip,) = [step for step in steps if step.get("if") == "${{ env.OPENAI_API_KEY == '' }}"]
    assert skip["run"].strip() == (
        'echo "::notice::AIR-Bench shard ${{ matrix.shard }} skipped: no OPENAI_API_KEY secret '
        '(GitHub gives none to a pull request from a fork)."'
    )
    paid = [
        step for step in steps if "pytest " in str(step.get("run", "")) or ("uses" in step and "cache" in step["uses"])
    ]
    assert all(step["if"] == "${{ env.OPENAI_API_KEY != '' }}" for step in paid)


def test_the_suggested_gitignore_lists_the_shard_files() -> None:
    text = README.read_text(encoding="utf-8")
    (block,) = re.findall(r"```gitignore\n(.*?)```", text, flags=re.DOTALL)
    assert "airbench-*.json" in block.splitlines()


def _event(tmp_path: Path, head: str, base: str, fork: bool) -> dict[str, str]:
    event = {
        "pull_request": {"head": {"repo": {"full_name": head, "fork": fork}}, "base": {"repo": {"full_name": base}}}
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path)}


def test_a_fork_is_read_from_the_event_file(tmp_path: Path) -> None:
    assert fork_pull_request(_event(tmp_path, "someone/app", "acme/app", True)) == "someone/app"
    assert fork_pull_request(_event(tmp_path, "acme/app", "acme/app", False)) is None
    assert fork_pull_request({"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(tmp_path / "event.json")}) is None
    (tmp_path / "event.json").write_text('{"pull_request": ["not", "a", "mapping"]}', encoding="utf-8")
    assert (
        fork_pull_request({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(tmp_path / "event.json")})
        is None
    )
    assert fork_pull_request({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(tmp_path / "none")}) is None


SAID = (
    "airbench merge: no shard's results to merge: no file matches 'airbench-*.json' (a shell passes a pattern "
    "that matches nothing as it is), so no shard ran to its end"
)


@pytest.mark.parametrize("fork", [True, False], ids=["fork", "no-fork"])
def test_merge_with_no_shard_file_says_no_shard_ran_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fork: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    environ = _event(tmp_path, "someone/app", "acme/app", True) if fork else {}
    assert main(["merge", "airbench-*.json", "--json", "airbench.json"], environ) == 2
    captured = capsys.readouterr()
    why = (
        ": this is a pull request from the fork someone/app, and GitHub gives its runs no secrets, so every shard "
        "skipped for want of an API key; run the workflow on a branch of this repository to gate it."
        if fork
        else "; see the shard jobs' logs (a shard without an API key skips)."
    )
    assert (captured.out, captured.err) == ("", f"{SAID}{why}\n")
    assert not (tmp_path / "airbench.json").exists()
