"""The one resolved `Settings` object: every option's value, validated, as plain values that cross
process boundaries, and the views the run takes of it (an endpoint by role, the gates, the settings
the run's document records).

The defaults and choices the declarations and the `airbench` command share live here too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from airbench_plugin import providers as provider_registry
from airbench_plugin.endpoints import EndpointSettings, field_name
from airbench_plugin.endpoints import fields as endpoint_fields
from airbench_plugin.gates import CategoryGate, GateSettings
from airbench_plugin.judges import DEFAULT_JUDGE, JUDGES, JudgeKind, judge_class
from airbench_plugin.pricing import Price, prices_json
from airbench_plugin.providers.base import display_url
from airbench_plugin.results import GateBy, RunSettings
from airbench_plugin.roles import RECORDED_PROVIDER, ROLES, Role
from airbench_plugin.shards import Shard
from airbench_plugin.stats import DEFAULT_CONFIDENCE

HELM_REVISION = "976d9fbb0f52bce704dcbef5bd7a2652e65f2a21"
HF_REPO = "stanford-crfm/air-bench-2024"
DEFAULT_DATASET = f"hf:{HF_REPO}@{HELM_REVISION}"
DEFAULT_JUDGE_MODEL = judge_class(DEFAULT_JUDGE).default_model
DEFAULT_BATCH_POLL = 10.0  # seconds: a batch takes minutes to hours; the wait grows to 5 min while it is unchanged

PROVIDERS = ("auto", *provider_registry.PROVIDERS)  # `auto` decides by the model name, see resolve_provider
JUDGE_SCALES = ("auto", "refusal", "harm")
JUDGE_KIND_CHOICES: tuple[JudgeKind, ...] = tuple(JUDGES)
SAMPLE_BY = ("l2", "l3", "l4")
REGIONS = ("default", "china", "eu_comprehensive", "eu_mandatory", "us")


DEFAULT_TARGET_MAX_TOKENS = 512  # HELM's


@dataclass(frozen=True)
class Settings:
    """Every option, validated; plain values only so it can cross process boundaries.

    The model under test, the judge and the second judge are each one `EndpointSettings`
    (`target`, `judge_endpoint`, `second_judge_endpoint`), built from the options of one prefix.
    """

    target: EndpointSettings = field(
        default_factory=partial(EndpointSettings, "target", max_tokens=DEFAULT_TARGET_MAX_TOKENS)
    )
    judge_endpoint: EndpointSettings = field(
        default_factory=partial(
            EndpointSettings, "judge", DEFAULT_JUDGE_MODEL, "openai", max_tokens=judge_class(DEFAULT_JUDGE).max_tokens
        )
    )
    second_judge_endpoint: EndpointSettings = field(
        default_factory=partial(EndpointSettings, "second judge", provider="openai")
    )
    system_prompt: str | None = None
    prompt_suffix: str = ""
    temperature: float = 0.0
    judge: JudgeKind = DEFAULT_JUDGE
    judge_scale: str = "auto"  # auto: read from the templates when the run starts
    second_judge: JudgeKind | None = None
    min_judge_agreement: float | None = None
    threshold: float = 0.5
    sample: int | None = 5  # None means "all"
    sample_by: str = "l2"
    seed: int = 0
    categories: tuple[str, ...] = ()
    region: str = "default"
    dataset: str = DEFAULT_DATASET
    judge_prompts: str = DEFAULT_DATASET
    json: str | None = None
    report: str | None = None
    junit_dir: str | None = None
    min_refusal_rate: float | None = None
    category_gates: tuple[CategoryGate, ...] = ()
    max_error_rate: float | None = None  # None: 0, and not a gate of its own
    baseline: str | None = None
    max_regression: float | None = None
    confidence: float = DEFAULT_CONFIDENCE  # of every interval reported, and of the gates judged by interval
    gate_by: GateBy = "estimate"
    concurrency: int = 32
    cache: str | None = None  # None: <rootdir>/.airbench_cache
    no_cache: bool = False
    retries: int = 6
    timeout: float = 120.0
    token_budget: int | None = None  # None: no spend guard
    price: tuple[Price, ...] = ()  # --airbench-price, per model
    shard: Shard | None = None
    markdown: str | None = None
    no_step_summary: bool = False
    responses: str | None = None  # judge-only: recorded answers instead of a model
    allow_partial: bool = False  # gates may judge a run whose plan was filtered
    batch: bool = False  # send the calls as Batch-API batches: answers, then judgements
    batch_poll: float = DEFAULT_BATCH_POLL  # seconds before the first look at a batch; longer while it is unchanged
    judge_calibration: str | None = None  # an `airbench calibrate --json` file of the judge

    @property
    def model(self) -> str | None:
        """The model under test (None: the suite is skipped)."""
        return self.target.model

    @property
    def judge_model(self) -> str:
        """The first judge's model."""
        return self.judge_endpoint.model or ""

    @property
    def active(self) -> bool:
        """Whether the safety suite runs (a model under test was named, or recorded answers given)."""
        return self.model is not None or self.responses is not None

    @property
    def target_provider(self) -> str:
        """The provider that reaches the model under test, with `auto` decided."""
        if self.responses is not None:
            return RECORDED_PROVIDER
        return self.target.resolved_provider

    def endpoint(self, role: Role) -> EndpointSettings:
        """The settings of the endpoint that plays `role`."""
        return {"target": self.target, "judge": self.judge_endpoint, "second judge": self.second_judge_endpoint}[role]

    @property
    def called(self) -> tuple[EndpointSettings, ...]:
        """The endpoints this run calls: the judges, and the model under test unless answers are recorded."""
        called = [self.judge_endpoint]
        if self.second_judge is not None:
            called.append(self.second_judge_endpoint)
        if self.responses is None and self.model is not None:
            called.append(self.target)
        return tuple(called)

    @property
    def gates(self) -> GateSettings:
        """The release gates these options ask for, as one value (`airbench merge` takes the same).

        The options stay flat fields here, as every option does: the document records its settings
        flat, in field order (`public_dict`), and that order is part of the JSON."""
        return GateSettings(
            min_refusal_rate=self.min_refusal_rate,
            category_gates=self.category_gates,
            max_error_rate=self.max_error_rate,
            baseline=self.baseline,
            max_regression=self.max_regression,
            min_judge_agreement=self.min_judge_agreement,
            confidence=self.confidence,
            gate_by=self.gate_by,
            allow_partial=self.allow_partial,
        )

    @property
    def judge_kinds(self) -> tuple[JudgeKind, ...]:
        """The kinds of the judges that score every answer, first judge first."""
        return (self.judge,) if self.second_judge is None else (self.judge, self.second_judge)

    @property
    def needs_templates(self) -> bool:
        """Whether a judge of this run reads the dataset's judge templates."""
        return any(judge_class(kind).uses_templates for kind in self.judge_kinds)

    def with_model(self, model: str) -> Settings:
        """These settings with `model` as the model under test's name."""
        return self.replace(model=model)

    def replace(self, **changes: Any) -> Settings:
        """These settings with `changes`; an endpoint's settings named as in the JSON (`judge_rpm`)."""
        endpoints = {role: self.endpoint(role) for role in ROLES}
        for role in ROLES:
            for setting in endpoint_fields():
                name = field_name(role, setting.name)
                if name in changes:
                    endpoints[role] = dataclasses.replace(endpoints[role], **{setting.name: changes.pop(name)})
        return dataclasses.replace(
            self,
            target=endpoints["target"],
            judge_endpoint=endpoints["judge"],
            second_judge_endpoint=endpoints["second judge"],
            **changes,
        )

    def public_dict(self) -> dict[str, Any]:
        """The settings as they appear in reports: JSON-able, no secrets (none are held here).

        Each endpoint's settings are flat, under their option's name: `model`, `judge_rpm`, ...
        """
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("target", "judge_endpoint", "second_judge_endpoint")
        }
        data["shard"] = None if self.shard is None else self.shard.to_json()
        data["sample"] = "all" if self.sample is None else self.sample
        data["categories"] = list(self.categories)
        data.update(self.gates.to_json())  # every key is already there: each keeps its place
        for role in ROLES:
            endpoint = self.endpoint(role)
            fields = endpoint.public_fields()
            fields[field_name(role, "base_url")] = display_url(endpoint.base_url)
            if role == "target":
                fields["provider"] = self.target_provider if self.active else endpoint.provider
            elif role == "judge" or self.second_judge is not None:
                fields[field_name(role, "provider")] = endpoint.resolved_provider
            data.update(fields)
        data["price"] = dict(prices_json(self.price))
        return data

    def run_settings(self, judge_prompts_revision: str | None) -> RunSettings:
        """These settings as the run's document records them: typed where reports and merges read
        them, every other option (as `public_dict` shows it) kept as written, then the judge templates'
        revision. Built from the values themselves: nothing here goes through the JSON decoder."""
        typed = {f.name for f in dataclasses.fields(RunSettings)}
        other = {key: value for key, value in self.public_dict().items() if key not in typed}
        other["judge_prompts_revision"] = judge_prompts_revision
        return RunSettings(
            provider=self.target_provider if self.active else self.target.provider,
            base_url=display_url(self.target.base_url),
            system_prompt=self.system_prompt,
            temperature=float(self.temperature),
            max_tokens=self.target.max_tokens or DEFAULT_TARGET_MAX_TOKENS,
            judge_provider=self.judge_endpoint.resolved_provider,
            judge_base_url=display_url(self.judge_endpoint.base_url),
            judge_scale=self.judge_scale,
            judge=self.judge,
            second_judge=self.second_judge,
            second_judge_model=self.second_judge_endpoint.model,
            threshold=float(self.threshold),
            sample=self.sample,
            sample_by=self.sample_by,
            seed=self.seed,
            categories=tuple(self.categories),
            shard=self.shard,
            confidence=float(self.confidence),
            gate_by=self.gate_by,
            other=other,
        )
