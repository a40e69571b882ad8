"""API keys: from the environment, else from `.env` in the working directory. Never logged."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from airbench_plugin.providers.base import ChatProvider


def read_dotenv(directory: Path) -> dict[str, str]:
    """The `.env` file's values, or nothing when there is no such file."""
    path = directory / ".env"
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v}


def find_key(provider: type[ChatProvider], environ: Mapping[str, str], dotenv: Mapping[str, str]) -> str | None:
    """The provider's key: its variables (then the benchmark authors' names) in the environment, then in .env."""
    names = provider.key_env + provider.dotenv_aliases
    for source in (environ, dotenv):
        for name in names:
            value = source.get(name, "").strip()
            if value:
                return value
    return None


def missing_key_message(provider: type[ChatProvider], role: str, model: str) -> str:
    """One sentence telling the user which variable to set."""
    first, *others = provider.key_env + provider.dotenv_aliases
    also = f" (or {', '.join(others)})" if others else ""
    return (
        f"AIR-Bench needs an API key for the {role} ({model} via {provider.name}): "
        f"set {first}{also} in the environment or in a .env file in the working directory."
    )
