"""The circuit breaker: a run whose first calls to an endpoint all fail the same way stops early."""

from __future__ import annotations

from airbench_plugin.endpoints import Endpoint
from airbench_plugin.providers.base import SDK_IMPORT_FAILED, ProviderError
from airbench_plugin.roles import Role
from airbench_plugin.wording import sentence

BREAKER_CALLS = 3  # identical fatal failures, before any success, that stop the run


class CircuitBreaker:
    """Opens when an endpoint's first calls all fail with the same error that retrying cannot fix.

    Each endpoint (the model under test, the judge) is watched until its own first success, so
    a bad judge key stops the run even though every model call succeeded.
    """

    def __init__(self, calls: int = BREAKER_CALLS) -> None:
        self.calls = calls
        self.disarmed: set[Role] = set()
        self.failures: dict[Role, list[str]] = {}
        self.reason: str | None = None

    def record_success(self, endpoint: Endpoint) -> None:
        self.disarmed.add(endpoint.role)

    def record_failure(self, endpoint: Endpoint, error: ProviderError) -> None:
        if endpoint.role in self.disarmed or self.reason is not None:
            return
        fatal = not error.retryable or error.kind in ("connection", "timeout")
        if not fatal:
            self.disarmed.add(endpoint.role)
            return
        failures = self.failures.setdefault(endpoint.role, [])
        failures.append(str(error))
        if len(failures) >= self.calls and len(set(failures)) == 1:
            self.reason = (
                f"AIR-Bench stopped early: the first {self.calls} calls to the {endpoint.role_name} "
                f"({endpoint.describe()}) all failed with: {sentence(str(error))} {breaker_advice(endpoint, error)}"
            )

    def armed(self, endpoint: Endpoint) -> bool:
        """Whether `endpoint` has not answered yet, so its failures may still stop the run."""
        return endpoint.role not in self.disarmed and self.reason is None


def breaker_advice(endpoint: Endpoint, error: ProviderError) -> str:
    """What to do about the error that stopped the run, by its cause."""
    if error.cause == "refused":
        return (
            f"Nothing accepts connections there: check {endpoint.option('base-url')} and that the server "
            "is running, then run again."
        )
    if error.cause == "unknown host":
        return f"That host name does not resolve: check {endpoint.option('base-url')} and the network, then run again."
    if error.code == SDK_IMPORT_FAILED:
        name = endpoint.provider.name
        return f"Reinstall it (pip install --force-reinstall {name}), then run again."
    return "Check the API key, the model name and the base URL, then run again."
