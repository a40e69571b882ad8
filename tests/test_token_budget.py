"""Tokens before and during a run: the header's estimate (tiktoken offline, else characters ÷ 4),
`--airbench-price`, and `--airbench-token-budget` as a true ceiling by reservation."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin import tokens
from airbench_plugin.budget import BudgetSpent, TokenBudget, worst_case
from airbench_plugin.options import parse_values
from airbench_plugin.pricing import Price
from airbench_plugin.providers.base import ChatRequest
from tests.chat_server import JUDGE_MODEL, TARGET_MODEL, ChatServer, Reply, completion_body, default_handler
from tests.helpers import DATA, run_suite, suite_args

BUDGET_MESSAGE = (
    "AIR-Bench stopped: this run spent * tokens, its --airbench-token-budget is {budget}; no new call was started "
    "and the results are incomplete. Raise the budget and run again: completed calls are cached and cost nothing "
    "the second time."
)


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    tokens.counter_for.cache_clear()
    yield
    tokens.counter_for.cache_clear()


# --- counting -------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[socket.socket]:
    """An empty tiktoken cache and every proxy pointed at a socket that records who connects."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    yield listener
    listener.close()


def test_a_known_model_without_its_file_counts_characters_and_never_downloads(
    no_network: socket.socket, tmp_path: Path
) -> None:
    counter = tokens.counter_for("gpt-4o-2024-05-13")
    assert counter.method == "characters ÷ 4"
    assert counter.described == (
        f"characters ÷ 4: tiktoken's o200k_base file is not in {tmp_path / 'tiktoken'} (fetch it once: "
        "python -c \"import tiktoken; tiktoken.get_encoding('o200k_base')\")"
    )
    assert counter.count_text("x" * 10) == 3
    with pytest.raises(BlockingIOError):
        no_network.accept()  # nobody tried to reach the blob store, not even through a proxy


def test_a_damaged_file_in_the_cache_is_not_trusted(no_network: socket.socket, tmp_path: Path) -> None:
    url = tokens.ENCODING_FILES["cl100k_base"][0]
    cache = tmp_path / "tiktoken"
    cache.mkdir()
    import hashlib

    (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"half a download")
    assert tokens.cached_encoding_file("cl100k_base") is None
    assert tokens.counter_for("gpt-4").method == "characters ÷ 4"
    with pytest.raises(BlockingIOError):
        no_network.accept()


def test_a_model_tiktoken_does_not_know_counts_characters() -> None:
    counter = tokens.counter_for("meta-llama/Llama-3-8b-chat-hf")
    assert counter.described == "characters ÷ 4: tiktoken does not know meta-llama/Llama-3-8b-chat-hf"
    assert counter.count([{"role": "user", "content": "x" * 40}]) == 10 + tokens.MESSAGE_OVERHEAD + 3


def test_the_worst_case_is_the_prompts_bytes_and_max_tokens() -> None:
    request = ChatRequest("some-model", ({"role": "user", "content": "é" * 10},), 0.0, 100)
    assert worst_case(request) == 20 + tokens.MESSAGE_OVERHEAD + tokens.REPLY_OVERHEAD + 100


# --- the budget -----------------------------------------------------------------------------------


def test_a_reservation_waits_for_calls_in_flight_and_fails_when_none_is_left() -> None:
    async def scenario() -> None:
        budget = TokenBudget(100)
        first = await budget.reserve(60)
        second = asyncio.ensure_future(budget.reserve(60))  # does not fit beside the first
        await asyncio.sleep(0)
        assert not second.done()
        budget.settle(first, 30)  # it cost 30: the other 30 are released
        assert await second == 60
        assert (budget.spent, budget.reserved) == (30, 60)
        third = asyncio.ensure_future(budget.reserve(20))  # 30 + 60 + 20 > 100: waits, a call is in flight
        await asyncio.sleep(0)
        assert not third.done()
        budget.settle(60, 60)  # 90 spent, nothing in flight: 20 can never fit
        with pytest.raises(BudgetSpent, match=r"^90 of 100 tokens spent; the next call needs up to 20$"):
            await third

    asyncio.run(scenario())


def counting_handler(spent: list[int]) -> Any:
    """The default server, adding up the tokens its answers report."""

    def handler(request: dict[str, Any]) -> Reply:
        reply = default_handler(request)
        usage = completion_body(request, reply)["usage"]
        spent.append(usage["total_tokens"])
        return reply

    return handler


REFERENCE = (DATA / "prompts_sample_80.csv", DATA / "judge_prompts_2024-06.csv")


def test_the_budget_is_never_exceeded_on_the_80_reference_prompts(suite: pytest.Pytester, api_key: str) -> None:
    """The issue's run: 80 prompts at the default concurrency (32) and a budget of 5,000 tokens
    answered 21,327 tokens when 32 calls started at once."""
    spent: list[int] = []
    out = suite.path / "run.json"
    with ChatServer(counting_handler(spent)) as server:
        result = run_suite(
            suite,
            server,
            REFERENCE,
            "--airbench-sample=all",
            "--airbench-token-budget=5000",
            "--airbench-no-cache",
            f"--airbench-json={out}",
        )
    assert 0 < sum(spent) <= 5000
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert result.stdout.str().count("AIR-Bench stopped: this run spent") == 1
    result.stdout.fnmatch_lines([f"*Interrupted: {BUDGET_MESSAGE.format(budget='5,000')}*"])
    assert json.loads(out.read_text())["summary"]["n"] < 80


@pytest.mark.heavy
def test_each_xdist_worker_keeps_to_its_share(suite: pytest.Pytester, api_key: str) -> None:
    spent: list[int] = []
    with ChatServer(counting_handler(spent)) as server:
        result = suite.runpytest(
            *suite_args(
                server, *REFERENCE, "--airbench-sample=all", "--airbench-token-budget=5000", "--airbench-no-cache"
            ),
            "-n",
            "2",
        )
    assert 0 < sum(spent) <= 5000
    assert result.ret == pytest.ExitCode.INTERRUPTED


# --- the header and --airbench-price --------------------------------------------------------------


def test_the_header_estimates_each_endpoint_and_prices_it(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--collect-only",
        "--airbench-categories=1.1.1",
        f"--airbench-price={TARGET_MODEL}=1/2,{JUDGE_MODEL}=2.5/10",
    )
    result.stdout.fnmatch_lines(
        [
            f"airbench: model under test {TARGET_MODEL}: ~* prompt + at most 1,536 completion tokens over 3 calls "
            f"(characters ÷ 4: tiktoken does not know {TARGET_MODEL}); at most $0.0* at 1/2",
            f"airbench: judge {JUDGE_MODEL}: ~* prompt + at most * completion tokens over 3 calls "
            f"(characters ÷ 4: tiktoken does not know {JUDGE_MODEL}); at most $0.0* at 2.5/10",
        ]
    )


def test_the_spent_cost_is_said_at_the_end(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    result = run_suite(
        suite,
        chat_server,
        dataset_files,
        "--airbench-categories=1.1.1",
        "--airbench-no-cache",
        f"--airbench-price={JUDGE_MODEL}=1000/1000",
        f"--airbench-json={suite.path / 'run.json'}",
    )
    result.assert_outcomes(passed=3)
    prompt = sum(len(str(m["content"]).split()) for c in chat_server.calls(JUDGE_MODEL) for m in c["messages"])
    completion = 3 * len(default_handler(chat_server.calls(JUDGE_MODEL)[0]).text.split())  # type: ignore[union-attr]
    cost = (prompt + completion) * 1000 / 1_000_000
    line = (
        f"airbench: spent on the judge ({JUDGE_MODEL}): ${cost:,.2f} for {prompt:,} prompt + {completion:,} "
        "completion tokens at 1000/1000 per million"
    )
    assert result.stdout.str().count(line) == 1
    assert "spent on the model under test" not in result.stdout.str()  # no price given for it
    document = json.loads((suite.path / "run.json").read_text(encoding="utf-8"))
    assert document["settings"]["price"] == {JUDGE_MODEL: "1000/1000"}
    assert document["cost"] == {
        "judge": {
            "model": JUDGE_MODEL,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "price": "1000/1000",
            "dollars": cost,
        }
    }


@pytest.mark.parametrize("raw", ["gpt-4o", "gpt-4o=2.5", "gpt-4o=a/b", "=1/2", "gpt-4o=2e9/1", "gpt-4o=-1/2"])
def test_a_price_is_model_in_out(raw: str) -> None:
    with pytest.raises(pytest.UsageError) as info:
        parse_values({"price": raw})
    item = raw
    assert str(info.value) == (
        "--airbench-price: expected MODEL=IN/OUT in dollars per million prompt and completion tokens "
        f"(at most 1,000,000), such as 'gpt-4o=2.5/10', got {item!r}."
    )


def test_prices_read() -> None:
    settings = parse_values({"price": "gpt-4o=2.5/10, gpt-4o-mini=0.15/0.6"})
    assert settings.price == (Price("gpt-4o", 2.5, 10.0), Price("gpt-4o-mini", 0.15, 0.6))
    assert settings.public_dict()["price"] == {"gpt-4o": "2.5/10", "gpt-4o-mini": "0.15/0.6"}
