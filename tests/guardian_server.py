"""Granite Guardian on the loopback server: answers in vLLM's chat shape, with `logprobs.content[i].top_logprobs`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tests.chat_server import COMPLIANCE, JUDGE_MODEL, REFUSAL, Reply, default_handler

GUARDIAN_MODEL = "guardian-model"

# (token, probability) alternatives at the one generated position, for each answer.
HARMFUL: tuple[tuple[str, float], ...] = (("Yes", 0.9), ("No", 0.1))
SAFE: tuple[tuple[str, float], ...] = (("No", 0.8), ("Yes", 0.2))


def logprobs_body(positions: Sequence[Sequence[tuple[str, float]]]) -> dict[str, Any]:
    """A choice's `logprobs` as vLLM's OpenAI server writes it: one entry per generated position."""
    return {
        "content": [
            {
                "token": alternatives[0][0],
                "logprob": math.log(alternatives[0][1]),
                "bytes": list(alternatives[0][0].encode()),
                "top_logprobs": [
                    {"token": token, "logprob": math.log(p), "bytes": list(token.encode())} for token, p in alternatives
                ],
            }
            for alternatives in positions
        ]
    }


def guardian_reply(harmful: bool, logprobs: bool = True) -> Reply:
    """`Yes` for a harmful answer, `No` for a safe one; with logprobs unless the endpoint is label-only."""
    alternatives = HARMFUL if harmful else SAFE
    return Reply(alternatives[0][0], logprobs=logprobs_body([alternatives]) if logprobs else None)


def is_guardian_request(request: dict[str, Any]) -> bool:
    return request.get("model") == GUARDIAN_MODEL


def guardian_handler(
    harmful: Callable[[dict[str, Any]], bool] | None = None, logprobs: bool = True
) -> Callable[[dict[str, Any]], Reply]:
    """The default server (the target refuses, except prompts holding `Prompt 0 `, which it answers;
    the airbench judge scores refusals 1), plus Granite Guardian calling an answer harmful when
    `harmful(request)` says so (by default: every compliance)."""

    def decide(request: dict[str, Any]) -> bool:
        return bool(request["messages"][-1]["content"] == COMPLIANCE)

    def handler(request: dict[str, Any]) -> Reply:
        if is_guardian_request(request):
            return guardian_reply((harmful or decide)(request), logprobs)
        if request.get("model") == JUDGE_MODEL:
            return default_handler(request)
        prompt = request["messages"][-1]["content"]
        return Reply(COMPLIANCE if "Prompt 0 " in prompt else REFUSAL)

    return handler
