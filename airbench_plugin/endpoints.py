"""An endpoint's settings as one typed value: the model under test, the judge and the second judge are three;
and the live `Endpoint` the engine calls (a provider with those settings), with a judge's `JudgeEndpoint`.

Every endpoint option is declared once (`options.ENDPOINT_OPTIONS`) and exists for each role under
the role's prefix: `--airbench-rpm` for the model under test, `--airbench-judge-rpm`,
`--airbench-second-judge-rpm`. Its value lands in the field of the same name here, so adding an
option to every endpoint is one declaration and one field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from airbench_plugin.judges.base import Judge
from airbench_plugin.providers.base import ChatProvider, ChatRequest, display_url
from airbench_plugin.roles import ROLE_NAMES, Role

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]
REASONING_EFFORTS: tuple[ReasoningEffort, ...] = get_args(ReasoningEffort)

# Each role's options: `--airbench-` + prefix + name; the ini key and the JSON field: the same with `_`.
OPTION_PREFIX: dict[Role, str] = {"target": "", "judge": "judge-", "second judge": "second-judge-"}

# Tokens a reasoning judge may think, on top of its visible-answer allowance (--airbench-judge-max-tokens).
# OpenAI's reasoning models count their reasoning in `max_completion_tokens`; without this headroom a
# judge allowed 64 tokens spends them all thinking and answers nothing. An effort left unset is the
# model's own default, `medium` for gpt-5 and the o-series.
REASONING_HEADROOM: dict[ReasoningEffort, int] = {
    "none": 0,
    "minimal": 1024,
    "low": 4096,
    "medium": 8192,
    "high": 16384,
}
DEFAULT_EFFORT: ReasoningEffort = "medium"


@dataclass(frozen=True)
class EndpointSettings:
    """One model behind one provider, as the options of its role say: where, which, how fast, how long."""

    role: Role
    model: str | None = None  # None: no model under test (the suite is skipped), or no second judge
    provider: str = "auto"  # `auto`: decided by the model name, see `resolved_provider`
    base_url: str | None = None
    api_key_env: str | None = None  # the variable holding its key, for any host
    max_tokens: int | None = None  # None: the role's default (512 for the model, the judge kind's own)
    rpm: int | None = None  # None: paced by the provider's headers alone
    tpm: int | None = None
    reasoning_effort: ReasoningEffort | None = None  # None: not sent, the model's own default

    @property
    def prefix(self) -> str:
        """The role's part of its option names: `judge-` in `--airbench-judge-rpm`."""
        return OPTION_PREFIX[self.role]

    def option(self, name: str) -> str:
        """The command-line option that sets `name` (`rpm`, `max-tokens`, ...) for this endpoint."""
        return f"--airbench-{self.prefix}{name}"

    @property
    def role_name(self) -> str:
        """How messages name this endpoint: `model under test`, `judge`, `second judge`."""
        return ROLE_NAMES[self.role]

    @property
    def resolved_provider(self) -> str:
        """The provider that reaches this endpoint, with `auto` decided."""
        return resolve_provider(self.provider, self.model or "", self.base_url)

    @property
    def reasoning_headroom(self) -> int:
        """Tokens a reasoning model may spend thinking on top of `max_tokens` (see REASONING_HEADROOM)."""
        return REASONING_HEADROOM[self.reasoning_effort or DEFAULT_EFFORT]

    def public_fields(self) -> dict[str, Any]:
        """This endpoint's settings under their JSON names (`judge_rpm`, ...), as `field_name` spells them."""
        return {field_name(self.role, f.name): getattr(self, f.name) for f in fields()}


def fields() -> tuple[dataclasses.Field[Any], ...]:
    """The settings an option sets, in declaration order (the role is not one)."""
    return tuple(f for f in dataclasses.fields(EndpointSettings) if f.name != "role")


def field_name(role: Role, name: str) -> str:
    """The ini key (without `airbench_`) and JSON field of endpoint setting `name` for `role`: `second_judge_rpm`."""
    return (OPTION_PREFIX[role] + name).replace("-", "_")


def resolve_provider(provider: str, model: str, base_url: str | None) -> str:
    """Decide `auto`: an OpenAI-compatible base URL or a plain name is `openai`, `org/model` is `together`."""
    if provider != "auto":
        return provider
    if base_url is None and "/" in model:
        return "together"
    return "openai"


@dataclass(frozen=True)
class Endpoint:
    """A model behind a provider, with the settings of every call made to it."""

    role: Role
    provider: ChatProvider
    model: str
    temperature: float
    max_tokens: int
    cacheable: bool = True
    rpm: int | None = None  # the user's requests-per-minute cap for this endpoint
    tpm: int | None = None
    option_prefix: str = "--airbench-"  # its options' names, for messages: `--airbench-judge-` for the judge
    reasoning_effort: str | None = None  # sent as `reasoning_effort` when set
    reasoning_headroom: int = 0  # tokens a reasoning model may think on top of `max_tokens` (judges)

    def prepared(self, request: ChatRequest) -> ChatRequest:
        """`request` with this endpoint's own settings: its answer allowance and reasoning effort."""
        extra = request.extra
        if self.reasoning_effort is not None:
            extra = {**extra, "reasoning_effort": self.reasoning_effort}
        if extra is request.extra and request.max_tokens == self.max_tokens:
            return request
        return dataclasses.replace(request, max_tokens=self.max_tokens, extra=extra)

    def option(self, name: str) -> str:
        """The command-line option that sets `name` (`rpm`, `base-url`, ...) for this endpoint."""
        return f"{self.option_prefix}{name}"

    @property
    def role_name(self) -> str:
        """How messages name this endpoint: `model under test` or `judge`."""
        return ROLE_NAMES[self.role]

    @property
    def label(self) -> str:
        """The endpoint in a warning: `judge (judge-model)`."""
        return f"{self.role_name} ({self.model})"

    def describe(self) -> str:
        where = f" at {display_url(self.provider.base_url)}" if self.provider.base_url else ""
        return f"{self.model} via {self.provider.name or 'a custom target'}{where}"

    def where(self) -> str:
        """The endpoint's URL as messages show it: its base URL, else its provider's own."""
        url = self.provider.base_url or getattr(self.provider, "default_base_url", "")
        return display_url(url) or self.provider.name


@dataclass(frozen=True)
class JudgeEndpoint:
    """A judge and the endpoint its requests go to."""

    judge: Judge
    endpoint: Endpoint
