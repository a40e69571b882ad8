"""Inputs that mean something other than they say are refused up front, with one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chat_server import ChatServer
from tests.helpers import assert_usage_error, suite_args


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"OPENAI_API_KEY=sk-abc\xff\n", "byte 0xff at offset 21"),
        (b"\xc3\x28=1\n", "byte 0xc3 at offset 0"),
    ],
)
def test_a_dotenv_that_is_not_utf8_is_one_sentence_before_any_call(
    suite: pytest.Pytester,
    chat_server: ChatServer,
    dataset_files: tuple[Path, Path],
    api_key: str,
    content: bytes,
    where: str,
) -> None:
    (suite.path / ".env").write_bytes(content)
    result = suite.runpytest(*suite_args(chat_server, *dataset_files))
    assert_usage_error(
        result,
        f"AIR-Bench: cannot read '{suite.path / '.env'}': {where} is not UTF-8; save the file as UTF-8 or remove it.",
    )
    assert chat_server.calls() == []
