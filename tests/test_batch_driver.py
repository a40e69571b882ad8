"""The batch driver against a real Files + Batches server on loopback, through the real SDK clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from airbench_plugin.batch.api import BatchAPI, batch_api
from airbench_plugin.batch.driver import BatchItem, StepOutcome, StepProgress, Submitter
from airbench_plugin.batch.journal import BatchRecord, Journal
from airbench_plugin.batch.lines import Limits
from airbench_plugin.providers.openai import OpenAIProvider
from airbench_plugin.providers.together import TogetherProvider
from airbench_plugin.store import CallStore
from tests.batch_server import BatchPlan, BatchServer
from tests.chat_server import TARGET_MODEL, Reply

POLL = 0.01


@pytest.fixture(params=["openai", "together"])
def server(request: pytest.FixtureRequest) -> Iterator[BatchServer]:
    server = BatchServer(request.param)
    try:
        yield server
    finally:
        server.close()


def api_for(server: BatchServer) -> BatchAPI:
    kind = OpenAIProvider if server.flavour == "openai" else TogetherProvider
    api = batch_api(kind(api_key="sk-test", base_url=server.base_url, timeout=10))
    assert api is not None
    return api


def items(n: int) -> list[BatchItem]:
    return [
        BatchItem(
            f"target:case-{i}",
            f"key{i}",
            {
                "model": TARGET_MODEL,
                "messages": [{"role": "user", "content": f"prompt {i}"}],
                "temperature": 0.0,
                "max_tokens": 50,
            },
        )
        for i in range(n)
    ]


def run(server: BatchServer, cache: Path, batch: list[BatchItem], **kwargs: object) -> tuple[StepOutcome, CallStore]:
    store = CallStore(cache)
    api = api_for(server)

    async def go() -> StepOutcome:
        try:
            submitter = Submitter(
                api=api,
                journal=Journal(cache),
                store=store,
                role="target",
                model=TARGET_MODEL,
                step="answers",
                poll=POLL,
                progress=StepProgress(),
                **kwargs,  # type: ignore[arg-type]
            )
            return await submitter.run(batch)
        finally:
            await api.aclose()

    return asyncio.run(go()), store


def test_a_batch_goes_through_every_status_and_its_answers_land_in_the_cache(
    server: BatchServer, tmp_path: Path
) -> None:
    tokens: list[tuple[int, int]] = []
    outcome, store = run(server, tmp_path, items(3), on_tokens=lambda p, c: tokens.append((p, c)))
    assert sorted(outcome.stored) == ["key0", "key1", "key2"] and outcome.notes == []
    assert [body["messages"][0]["content"] for body in server.batch_requests] == ["prompt 0", "prompt 1", "prompt 2"]
    assert server.requests == []  # no ordinary call
    answer = store.get("key1")
    assert answer is not None and answer.text == "I can't help with that request."
    assert len(tokens) == 3 and all(p > 0 and c > 0 for p, c in tokens)
    (record,) = Journal(tmp_path).records()
    assert record.collected and record.status == "completed" and record.batch_id is not None
    assert record.lines == {f"target:case-{i}": f"key{i}" for i in range(3)}
    assert record.input_bytes == len(server.files[record.input_file_id])  # what was uploaded
    assert not Journal(tmp_path).input_path(record.local_id).exists()  # the provider holds it now


def test_the_bodies_sent_are_exactly_the_items_bodies(server: BatchServer, tmp_path: Path) -> None:
    batch = items(2)
    run(server, tmp_path, batch)
    assert server.batch_requests == [item.body for item in batch]


def test_a_batch_is_split_at_the_limits(server: BatchServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BatchAPI, "limits", property(lambda self: Limits(requests=2, bytes=10_000)))
    outcome, _store = run(server, tmp_path, items(5))
    assert len(server.batches) == 3 and len(outcome.stored) == 5


def test_error_lines_are_not_stored_and_their_errors_are_returned(server: BatchServer, tmp_path: Path) -> None:
    server.inject(Reply("overloaded", status=500), prompt_contains="prompt 1")
    outcome, store = run(server, tmp_path, items(3))
    assert sorted(outcome.stored) == ["key0", "key2"] and store.get("key1") is None
    assert outcome.failed["key1"].status == 500
    assert outcome.notes == [
        f"target batch {next(iter(server.batches))} completed; 1 of its 3 calls were made as ordinary calls"
    ]


def test_an_expired_batch_keeps_what_it_finished_and_leaves_the_rest_to_ordinary_calls(
    server: BatchServer, tmp_path: Path
) -> None:
    server.plan(BatchPlan(expire_after=2))
    outcome, store = run(server, tmp_path, items(3))
    assert sorted(outcome.stored) == ["key0", "key1"] and store.get("key2") is None
    assert "expired; 1 of its 3 calls were made as ordinary calls" in outcome.notes[0]


def test_a_batch_that_fails_validation_is_said_and_nothing_is_stored(server: BatchServer, tmp_path: Path) -> None:
    server.plan(BatchPlan(fail_validation="Model 'x' is not available for batch"))
    outcome, _store = run(server, tmp_path, items(2))
    assert outcome.stored == []
    assert outcome.notes == [
        f"target batch {next(iter(server.batches))} failed: Model 'x' is not available for batch; 2 of its 2 calls "
        "were made as ordinary calls"
    ]


def test_a_cancelled_batch_is_collected_as_far_as_it_went(server: BatchServer, tmp_path: Path) -> None:
    server.plan(BatchPlan(hold=True))

    async def cancel_when_running() -> None:
        while not any(b.step >= 1 for b in server.batches.values()):
            await asyncio.sleep(0.01)
        api = api_for(server)
        await api.cancel(next(iter(server.batches)))
        await api.aclose()

    store = CallStore(tmp_path)
    api = api_for(server)

    async def go() -> StepOutcome:
        submitter = Submitter(
            api=api,
            journal=Journal(tmp_path),
            store=store,
            role="target",
            model=TARGET_MODEL,
            step="answers",
            poll=POLL,
            progress=StepProgress(),
        )
        outcome, _ = await asyncio.gather(submitter.run(items(2)), cancel_when_running())
        await api.aclose()
        return outcome

    outcome = asyncio.run(go())
    assert outcome.stored == [] and "cancelled" in outcome.notes[0]


def test_a_run_stopped_while_its_batch_runs_leaves_it_recorded_and_the_next_run_collects_it(
    server: BatchServer, tmp_path: Path
) -> None:
    server.plan(BatchPlan(hold=True))
    store = CallStore(tmp_path)
    api = api_for(server)

    async def interrupted() -> None:
        submitter = Submitter(
            api=api,
            journal=Journal(tmp_path),
            store=store,
            role="target",
            model=TARGET_MODEL,
            step="answers",
            poll=POLL,
            progress=StepProgress(),
        )
        task = asyncio.ensure_future(submitter.run(items(3)))
        while not any(b.step >= 1 for b in server.batches.values()):
            await asyncio.sleep(0.01)
        task.cancel()  # Ctrl-C, or the end of a killed process's loop
        with pytest.raises(asyncio.CancelledError):
            await task
        await api.aclose()

    asyncio.run(interrupted())
    store.close()
    (record,) = Journal(tmp_path).open_records()
    assert record.batch_id in server.batches and not record.collected
    server.release_batches()
    outcome, store = run(server, tmp_path, items(3))
    assert len(server.uploads) == 1 and len(server.batches) == 1  # nothing sent twice
    assert sorted(outcome.stored) == ["key0", "key1", "key2"]
    assert Journal(tmp_path).open_records() == []


def test_a_batch_the_budget_cannot_pay_for_leaves_calls_out(server: BatchServer, tmp_path: Path) -> None:
    outcome, _store = run(server, tmp_path, items(3), allow=lambda batch: batch[:1])
    assert outcome.stored == ["key0"]
    assert outcome.notes == [
        "2 target calls were left out of the batch: their worst case would pass --airbench-token-budget"
    ]


def test_an_unreadable_output_line_is_missing_never_stored(server: BatchServer, tmp_path: Path) -> None:
    server.inject(Reply(status=200, body=b'{"choices": "no"}'), prompt_contains="prompt 0")
    outcome, store = run(server, tmp_path, items(2))
    assert outcome.stored == ["key1"] and store.get("key0") is None
    assert json.dumps(outcome.failed["key0"].message).count("not a chat completion") == 1


def test_the_batch_command_shows_a_running_batch_and_cancels_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airbench_plugin import cli

    monkeypatch.chdir(tmp_path)  # no .env of the repository's

    with BatchServer("openai") as server:
        server.plan(BatchPlan(hold=True))
        store = CallStore(tmp_path)
        api = api_for(server)

        async def stopped() -> None:
            submitter = Submitter(
                api=api,
                journal=Journal(tmp_path),
                store=store,
                role="target",
                model=TARGET_MODEL,
                step="answers",
                poll=POLL,
                progress=StepProgress(),
            )
            task = asyncio.ensure_future(submitter.run(items(2)))
            while not Journal(tmp_path).open_records() or not Journal(tmp_path).open_records()[0].batch_id:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await api.aclose()

        asyncio.run(stopped())
        store.close()
        (batch_id,) = server.batches
        cache = str(tmp_path)
        assert cli.main(["batch", "status", "--cache", cache], environ={}) == 0
        (line,) = capsys.readouterr().out.splitlines()
        assert line.startswith(f"{batch_id}  openai {TARGET_MODEL}  target, answers: 2 calls, ")
        assert line.endswith("(0 done, 0 failed); not collected yet")
        assert cli.main(["batch", "cancel", "--cache", cache], environ={}) == 0
        assert capsys.readouterr().out.splitlines() == [
            f"{batch_id}: cancelling",
            f"a run with --airbench-cache {cache} collects what they finished and makes the other calls as usual",
        ]
        assert server.cancelled == [batch_id]


def test_the_batch_command_says_when_no_key_reaches_a_providers_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airbench_plugin import cli

    monkeypatch.chdir(tmp_path)  # no .env of the repository's

    journal = Journal(tmp_path)
    journal.save(
        BatchRecord(
            local_id="a",
            provider="openai",
            base_url=None,
            model="gpt-4o",
            role="target",
            step="answers",
            lines={"target:x": "k"},
            input_file_id="file-1",
            input_bytes=10,
            batch_id="batch_1",
            status="in_progress",
        )
    )
    assert cli.main(["batch", "status", "--cache", str(tmp_path)], environ={}) == 2
    assert capsys.readouterr().err == "airbench batch: no API key for openai: set OPENAI_API_KEY, then run again.\n"
