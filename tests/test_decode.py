"""The readers of foreign JSON that the recorded-answer and calibration readers share."""

from __future__ import annotations

import pytest

from airbench_plugin.decode import dig, loose_text

STATE = {"instance": {"id": "id7", "references": [{"output": {"text": "ref"}}]}, "result": {"completions": []}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("instance", "id"), "id7"),
        (("instance", "references", 0, "output", "text"), "ref"),
        (("instance", "references", 1, "output", "text"), None),  # past the end of a list
        (("result", "completions", 0, "text"), None),  # an empty list
        (("instance", "id", "deeper"), None),  # a string is no mapping
        (("instance", 0), None),  # an index into a mapping
        (("missing",), None),
        ((), STATE),
    ],
)
def test_dig_returns_none_where_any_step_is_missing(path: tuple[str | int, ...], expected: object) -> None:
    assert dig(STATE, *path) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("text", "text"), (1.1, "1.1"), (3, "3"), (True, None), (None, None), (["a"], None), ({"a": 1}, None)],
)
def test_loose_text_takes_strings_and_numbers_only(value: object, expected: str | None) -> None:
    assert loose_text(value) == expected
