"""What a run costs: tokens before it (an estimate per endpoint) and money with `--airbench-price`.

`--airbench-price MODEL=IN/OUT[,MODEL=IN/OUT...]` gives a model's price in dollars per million
prompt (IN) and completion (OUT) tokens. Before the run, the header estimates each endpoint's
tokens: the prompts as they will be sent (the model under test's, the judge's template filled with
each prompt), counted as `tokens.counter_for` counts them, and at most `max_tokens` of completion
per call; the judge's prompt also holds the answer, at most the model's `max_tokens`. With a price,
the header gives the cost of that estimate, and the end of the run what was spent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from airbench_plugin.tokens import TokenCounter

PER = 1_000_000  # prices are per million tokens
_ITEM = re.compile(r"^(?P<model>[^=\s,]+)=(?P<input>[0-9]+(?:\.[0-9]+)?)/(?P<output>[0-9]+(?:\.[0-9]+)?)$")
PRICE_LIMIT = 1_000_000.0  # dollars per million tokens: more is a typo


@dataclass(frozen=True)
class Price:
    """A model's price in dollars per million prompt and completion tokens."""

    model: str
    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / PER

    def text(self) -> str:
        return f"{self.input:g}/{self.output:g}"


def parse_prices(option: str, raw: str) -> tuple[Price, ...]:
    """`MODEL=IN/OUT` pairs separated by commas or spaces, e.g. `gpt-4o=2.5/10,gpt-4o-mini=0.15/0.6`."""
    prices: dict[str, Price] = {}
    for item in re.split(r"[\s,]+", raw.strip()):
        if not item:
            continue
        match = _ITEM.match(item)
        if match is None or max(float(match["input"]), float(match["output"])) > PRICE_LIMIT:
            raise pytest.UsageError(
                f"--airbench-{option}: expected MODEL=IN/OUT in dollars per million prompt and completion tokens "
                f"(at most {PRICE_LIMIT:,.0f}), such as 'gpt-4o=2.5/10', got {item[:80]!r}."
            )
        prices[match["model"]] = Price(match["model"], float(match["input"]), float(match["output"]))
    if not prices:
        raise pytest.UsageError(f"--airbench-{option}: expected MODEL=IN/OUT such as 'gpt-4o=2.5/10', got {raw!r}.")
    return tuple(prices.values())


def price_of(prices: Sequence[Price], model: str) -> Price | None:
    return next((price for price in prices if price.model == model), None)


def dollars(amount: float) -> str:
    """`$0.42`, `$1,234.50`; below a cent, `$0.0031`."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.2g}"


@dataclass(frozen=True)
class EndpointEstimate:
    """The tokens one endpoint will be sent and may answer, before the run."""

    name: str  # `model under test gpt-4o`, `judge gpt-4o`
    model: str
    prompt_tokens: int
    completion_tokens: int  # at most: calls × max_tokens
    counter: TokenCounter
    calls: int

    def line(self, prices: Sequence[Price]) -> str:
        text = (
            f"airbench: {self.name}: ~{self.prompt_tokens:,} prompt + at most {self.completion_tokens:,} completion "
            f"tokens over {self.calls:,} calls ({self.counter.described})"
        )
        price = price_of(prices, self.model)
        if price is not None:
            text += f"; at most {dollars(price.cost(self.prompt_tokens, self.completion_tokens))} at {price.text()}"
        return text


def spent_line(
    name: str, model: str, prompt_tokens: int, completion_tokens: int, prices: Sequence[Price]
) -> str | None:
    """What an endpoint cost this run, when its price is known."""
    price = price_of(prices, model)
    if price is None:
        return None
    cost = price.cost(prompt_tokens, completion_tokens)
    return (
        f"airbench: spent on the {name} ({model}): {dollars(cost)} for {prompt_tokens:,} prompt + "
        f"{completion_tokens:,} completion tokens at {price.text()} per million"
    )


def prices_json(prices: Sequence[Price]) -> Mapping[str, str]:
    """The prices as the results document's settings record them: `{model: "IN/OUT"}`."""
    return {price.model: price.text() for price in prices}


def read_prices(raw: object) -> tuple[Price, ...]:
    """The prices as `prices_json` wrote them in a results document (`{model: "IN/OUT"}`); bad entries skipped."""
    prices = []
    for model, text in raw.items() if isinstance(raw, Mapping) else ():
        match = _ITEM.match(f"{model}={text}")
        if match is not None:
            prices.append(Price(str(model), float(match["input"]), float(match["output"])))
    return tuple(prices)


def cost_json(
    prices: Sequence[Price], models: Mapping[str, str], paid: Mapping[str, tuple[int, int]]
) -> dict[str, Any] | None:
    """What each priced endpoint (by role: `target`, `judge`) paid, from the prompt and completion
    tokens it `paid` (the cached part left out); None without prices."""
    if not prices:
        return None
    cost: dict[str, Any] = {}
    for role, model in models.items():
        price = price_of(prices, model)
        if price is None or role not in paid:
            continue
        prompt, completion = paid[role]
        cost[role] = {
            "model": model,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "price": price.text(),
            "dollars": round(price.cost(prompt, completion), 6),
        }
    return cost
