"""The batch package's pure parts: custom ids, limits, output lines read as hostile input, the journal, the back-off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.batch.api import BatchState, status_of
from airbench_plugin.batch.driver import BACKOFF_CAP, Backoff
from airbench_plugin.batch.journal import BatchRecord, Journal
from airbench_plugin.batch.lines import (
    LIMITS,
    Limits,
    custom_id,
    parse_custom_id,
    read_line,
    read_results,
    request_line,
    split_lines,
)


def test_a_custom_id_names_the_role_and_the_case_and_reads_back() -> None:
    line_id = custom_id("second judge", "1.2.3-network-intrusion-4")
    assert line_id == "second-judge:1.2.3-network-intrusion-4"
    assert parse_custom_id(line_id) == ("second judge", "1.2.3-network-intrusion-4")
    with pytest.raises(ValueError, match="not an AIR-Bench custom_id"):
        parse_custom_id("request-1")


def test_request_lines_carry_the_body_as_given_in_each_providers_shape() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "é \ud800"}], "max_completion_tokens": 9}
    openai = json.loads(request_line("openai", "target:a", body))
    assert openai == {"custom_id": "target:a", "method": "POST", "url": "/v1/chat/completions", "body": body}
    together = json.loads(request_line("together", "target:a", body))
    assert together == {"custom_id": "target:a", "body": body}


def test_the_limits_are_the_providers_and_a_split_keeps_both() -> None:
    assert LIMITS["openai"] == Limits(50_000, 200_000_000)
    assert LIMITS["together"] == Limits(50_000, 100_000_000)
    lines = [(f"id{i}", b"x" * 10) for i in range(7)] + [("huge", b"y" * 31)]
    batches, too_big = split_lines(lines, Limits(requests=3, bytes=25))
    assert [[line_id for line_id, _ in batch] for batch in batches] == [
        ["id0", "id1"],
        ["id2", "id3"],
        ["id4", "id5"],
        ["id6"],
    ]
    assert too_big == ["huge"]
    by_count, _ = split_lines(lines[:7], Limits(requests=3, bytes=1000))
    assert [len(batch) for batch in by_count] == [3, 3, 1]


def test_output_lines_are_read_as_the_engine_reads_answers_and_hostile_lines_are_missing() -> None:
    ok = {
        "custom_id": "target:a",
        "response": {
            "status_code": 200,
            "body": {
                "choices": [{"message": {"content": "no"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            },
        },
    }
    refused = {
        "custom_id": "target:b",
        "response": {"status_code": 400, "body": {"error": {"code": "content_filter", "message": "x"}}},
    }
    reasoning = {
        "custom_id": "target:c",
        "response": {
            "status_code": 400,
            "body": {
                "error": {
                    "message": "Unsupported parameter: 'max_tokens'",
                    "code": "unsupported_parameter",
                    "param": "max_tokens",
                }
            },
        },
    }
    expired = {"custom_id": "target:d", "response": None, "error": {"code": "batch_expired", "message": "expired"}}
    content = b"\n".join(json.dumps(line).encode() for line in (ok, refused, reasoning, expired))
    content += b'\nnot json\n[1]\n{"custom_id": 5}\n{"custom_id": "target:e"}\n'
    results = {r.custom_id: r for r in read_results(content)}
    assert set(results) == {"target:a", "target:b", "target:c", "target:d"}
    answer = results["target:a"].completion
    assert answer is not None and (answer.text, answer.prompt_tokens, answer.completion_tokens) == ("no", 3, 1)
    assert results["target:b"].completion is not None and results["target:b"].completion.refused_by_provider
    error = results["target:c"].error
    assert error is not None and (error.status, error.code, error.param) == (400, "unsupported_parameter", "max_tokens")
    assert results["target:d"].error is not None and results["target:d"].error.code == "batch_expired"


def test_an_output_line_that_is_no_completion_is_an_error_never_an_answer() -> None:
    result = read_line({"custom_id": "target:a", "response": {"status_code": 200, "body": {"choices": []}}})
    assert result is not None and result.completion is None and result.error is not None


def test_a_secret_in_an_error_line_is_redacted() -> None:
    line = {"custom_id": "t:a", "response": {"status_code": 401, "body": {"error": {"message": "bad key sk-SECRET"}}}}
    result = read_line(line, ["sk-SECRET"])
    assert result is not None and result.error is not None and "sk-SECRET" not in str(result.error)


def test_statuses_read_the_same_for_both_providers() -> None:
    assert status_of("IN_PROGRESS") == status_of("in_progress") == "in_progress"
    assert status_of("COMPLETED") == "completed"
    assert status_of("something new") == "in_progress"


def test_the_journal_keeps_records_whole_and_skips_unreadable_files(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    record = BatchRecord(
        local_id=journal.new_id(),
        provider="openai",
        base_url="https://api.openai.com/v1",
        model="gpt",
        role="target",
        step="answers",
        lines={"target:a": "k1"},
        input_file_id="file-1",
        input_bytes=10,
    )
    journal.save(record)
    updated = journal.update(record, batch_id="batch-1", status="in_progress")
    (journal.folder / "garbage.json").write_text("{not json")
    (journal.folder / "wrong.json").write_text(json.dumps({**record.to_json(), "lines": {"a": 1}}))
    assert list(journal.records()) == [updated]
    assert journal.open_records() == [updated]
    journal.update(updated, collected=True)
    assert journal.open_records() == []
    journal.begin("run1", "answers", ["target"])
    assert journal.run_state("run1") == {"answers": {"roles": ["target"]}}
    journal.settle("run1", "answers", ["k1"], [])
    assert journal.run_state("run1") == {"answers": {"roles": ["target"], "delivered": ["k1"], "notes": []}}


def test_polling_backs_off_while_nothing_changes_and_starts_again_after_a_change() -> None:
    backoff = Backoff(2.0)
    running = BatchState("b", "in_progress", completed=1)
    assert [backoff.next(running) for _ in range(4)] == [2.0, 3.0, 4.5, 6.75]
    assert backoff.next(BatchState("b", "in_progress", completed=2)) == 2.0
    for _ in range(50):
        delay = backoff.next(BatchState("b", "in_progress", completed=2))
    assert delay == BACKOFF_CAP


def test_the_progress_line_shows_the_driving_processs_batches() -> None:
    from airbench_plugin.progress import batch_part

    waiting: dict[str, dict[str, Any]] = {
        "gw1": {"batch": {"step": None}},
        "gw0": {"batch": {"step": "answers", "status": "in_progress", "done": 120, "total": 5694}},
    }
    assert batch_part(waiting) == " · batch answers: in_progress, 120/5,694 calls"
    assert batch_part({"main": {"batch": None}}) == ""
