"""Reading untrusted JSON into typed values: each problem is one short reason, never a traceback.

`from_json` methods of the results model use these readers on whatever a file held. A reader
takes the value and where it was found (`results[3].score`) and either returns the typed value
or raises `DecodeError` whose message says, in words, what was there and what was expected. The
offending value itself is never echoed: it may be huge or hold text meant for a terminal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

MAX_COUNT = 10**15  # larger than any real token or prompt count, small enough to stay exact
SEED_LOW, SEED_HIGH = -(2**63), 2**64 - 1  # a seed is any 64-bit value, signed or unsigned
_T = TypeVar("_T", bound=str)


class DecodeError(ValueError):
    """A value that does not have the documented shape; the message is a clause, not a sentence."""


def describe(value: object) -> str:
    """What a JSON value is, in words: `a string`, `a list`, `null` ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number" if math.isfinite(value) else "not a finite number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return "not a JSON value"


def _fail(where: str, value: object, expected: str) -> DecodeError:
    return DecodeError(f"{where} is {describe(value)}, not {expected}")


def obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _fail(where, value, "an object")
    return value


def array(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise _fail(where, value, "a list")
    return value


def text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, value, "a string")
    return value


def opt_text(value: object, where: str) -> str | None:
    return None if value is None else text(value, where)


def boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, value, "true or false")
    return value


def number(value: object, where: str, low: float, high: float) -> float:
    """A finite number in [low, high]; huge integers and NaN are refused, not converted."""
    expected = f"a number from {low:g} to {high:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, value, expected)
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(where, value, expected)
    if not low <= value <= high:  # compares exactly, even for an int of 400 digits
        raise DecodeError(f"{where} is a number outside {low:g} to {high:g}")
    return float(value)


def opt_number(value: object, where: str, low: float, high: float) -> float | None:
    return None if value is None else number(value, where, low, high)


def integer(value: object, where: str, low: int = 0, high: int = MAX_COUNT) -> int:
    expected = f"a whole number from {low:,} to {high:,}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, value, expected)
    if not low <= value <= high:
        raise DecodeError(f"{where} is a whole number outside {low:,} to {high:,}")
    return value


def choice(value: object, where: str, choices: Sequence[_T]) -> _T:
    """One of `choices` (the values of a Literal type)."""
    for option in choices:
        if value == option and isinstance(value, str):
            return option
    shown = ", ".join(repr(option) for option in choices)
    if isinstance(value, str):
        raise DecodeError(f"{where} is an unknown value, not one of {shown}")
    raise _fail(where, value, f"one of {shown}")


def plain(value: object, where: str) -> object:
    """A JSON scalar, or a flat list or object of scalars (settings values); nothing nested deeper."""

    def scalar(item: object) -> bool:
        if isinstance(item, int) and not isinstance(item, bool):
            return abs(item) <= MAX_COUNT
        return item is None or isinstance(item, str | bool) or (isinstance(item, float) and math.isfinite(item))

    if scalar(value):
        return value
    if isinstance(value, list) and all(scalar(item) for item in value):
        return list(value)
    if isinstance(value, Mapping) and all(isinstance(k, str) and scalar(v) for k, v in value.items()):
        return dict(value)
    raise DecodeError(f"{where} is {describe(value)} holding more than plain values")


def dig(data: object, *path: str | int) -> object:
    """`data[path[0]][path[1]]...` of a foreign file's JSON, or None where any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or len(data) <= step:
                return None
            data = data[step]
        elif isinstance(data, Mapping):
            data = data.get(step)
        else:
            return None
    return data


def loose_text(value: object) -> str | None:
    """A foreign file's string field as text; a number is taken too (a cate-idx such as 1.1 may
    arrive as one); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None
