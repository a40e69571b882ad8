"""The options' validators: each takes the option's name and its raw text, and returns the value or
raises `pytest.UsageError` with one sentence naming the option and what it expects.

`airbench merge` and `airbench calibrate` check their options with these too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

from airbench_plugin.decode import MAX_COUNT, SEED_HIGH, SEED_LOW
from airbench_plugin.gates import CategoryGate
from airbench_plugin.redaction import shown_url
from airbench_plugin.shards import Shard, parse_shard
from airbench_plugin.text import clip


def _fail(option: str, expected: str, raw: str) -> pytest.UsageError:
    return pytest.UsageError(f"--airbench-{option}: expected {expected}, got {raw!r}.")


def parse_text(option: str, raw: str) -> str:
    """A non-empty string."""
    if not raw.strip():
        raise _fail(option, "a non-empty value", raw)
    return raw


def parse_choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    """One of `choices`."""

    def parse(option: str, raw: str) -> str:
        value = raw.strip()
        if value not in choices:
            raise _fail(option, "one of " + ", ".join(choices), raw)
        return value

    return parse


def parse_number(
    convert: Callable[[str], Any],
    expected: str,
    valid: Callable[[Any], bool],
    bounds: tuple[int, int] | None = None,
) -> Callable[[str, str], Any]:
    """A validator for numbers: `convert` the text, then require `valid`; `expected` says what fits.

    `bounds` are what the code can hold (the results document reads counts up to
    decode.MAX_COUNT): a value outside them is refused up front, naming them, not after the calls.
    """

    def parse(option: str, raw: str) -> Any:
        try:
            value = convert(raw)
        except ValueError:
            raise _fail(option, expected, raw) from None
        if not valid(value):
            raise _fail(option, expected, raw)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise _fail(option, f"a whole number from {bounds[0]:,} to {bounds[1]:,}", clip(raw, 60))
        return value

    return parse


parse_fraction = parse_number(float, "a number between 0 and 1", lambda v: 0.0 <= v <= 1.0)
parse_temperature = parse_number(float, "a number between 0 and 2", lambda v: 0.0 <= v <= 2.0)
parse_positive_int = parse_number(int, "a whole number of at least 1", lambda v: v >= 1, (1, MAX_COUNT))
parse_count = parse_number(int, "a whole number of at least 0", lambda v: v >= 0, (0, MAX_COUNT))
parse_seconds = parse_number(float, "a number of seconds greater than 0", lambda v: v > 0 and math.isfinite(v))
parse_confidence = parse_number(
    float, "a confidence level of at least 0.5 and below 1, such as 0.95", lambda v: 0.5 <= v < 1.0
)
# A seed is any 64-bit value, signed or not (a uint64 from another tool is a real seed).
parse_int = parse_number(int, "a whole number", lambda _v: True, (SEED_LOW, SEED_HIGH))


def parse_sample(option: str, raw: str) -> int | None:
    """A whole number of prompts per group, or `all` (returned as None)."""
    if raw.strip().lower() == "all":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise _fail(option, "a whole number of at least 1 or 'all'", raw) from None
    if value < 1:
        raise _fail(option, "a whole number of at least 1 or 'all'", raw)
    if value > MAX_COUNT:
        raise _fail(option, f"a whole number from 1 to {MAX_COUNT:,} or 'all'", clip(raw, 60))
    return value


def parse_suffix(option: str, raw: str) -> str:
    """Any text, with the escapes `\\n`, `\\t` and `\\\\` read as a new line, a tab and a backslash."""
    escapes = {"n": "\n", "t": "\t", "\\": "\\"}
    return re.sub(r"\\([nt\\])", lambda match: escapes[match[1]], raw)


def parse_list(option: str, raw: str) -> tuple[str, ...]:
    """A comma-separated list; blanks are dropped."""
    items = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not items:
        raise _fail(option, "a comma-separated list such as '1,2.5,Hate/Toxicity'", raw)
    return items


def parse_url(option: str, raw: str) -> str:
    """An http(s) URL. A rejected one is quoted back without its credentials."""
    value = raw.strip()
    if not re.match(r"^https?://[^\s/]+", value):
        raise _fail(option, "an http:// or https:// URL", shown_url(raw))
    return value.rstrip("/")


def parse_shard_option(option: str, raw: str) -> Shard:
    """`I/K`: shard I (1-based) of K."""
    try:
        return parse_shard(raw)
    except ValueError:
        raise _fail(option, "I/K with 1 <= I <= K, such as 2/4", raw) from None


def parse_env_name(option: str, raw: str) -> str:
    """The name of an environment variable (letters, digits and underscores, not starting with a digit)."""
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise _fail(option, "the name of an environment variable such as MY_PROXY_KEY", raw)
    return value


# A cate-idx prefix or a level-2 name (letters first; names hold spaces, '&', '/', '-'), then ':RATE'.
_GATE_ITEM = re.compile(r"(?P<prefix>\d+(?:\.\d+){0,2}|[^\W\d][^:,\n]*?)\s*:\s*(?P<rate>[0-9.]+)(?=[\s,]|$)")
_GATE_FORM = "PREFIX:RATE or NAME:RATE pairs such as '1:0.95 2.5:0.9' or 'Security Risks:0.95'"


def parse_category_gates(option: str, raw: str) -> tuple[CategoryGate, ...]:
    """`PREFIX:RATE` pairs separated by spaces, commas or new lines, e.g. `1:0.95 2.5:0.9`; a level-2
    name may stand for its prefix, as in --airbench-categories (`Security Risks:0.95, 2.5:0.9`)."""
    gates = []
    position = 0
    text = raw.strip()
    while position < len(text):
        gap = re.compile(r"[\s,]*").match(text, position)
        position = gap.end() if gap else position
        if position >= len(text):
            break
        match = _GATE_ITEM.match(text, position)
        if match is None:
            item = re.split(r"[,\n]", text[position:], maxsplit=1)[0].strip()
            raise _fail(option, _GATE_FORM, item)
        gates.append(CategoryGate(match["prefix"], parse_fraction(option, match["rate"])))
        position = match.end()
    if not gates:
        raise _fail(option, _GATE_FORM, raw)
    return tuple(gates)
