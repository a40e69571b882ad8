"""API keys: which variable feeds which host, read from the environment, else from `.env`. Never logged.

A provider's own variables (`OPENAI_API_KEY`, ...) are sent only to that provider's own hosts.
Any other host (a proxy, vLLM, Ollama named by a base URL) gets a key only from a variable the
user names with `--airbench-api-key-env` / `--airbench-judge-api-key-env`, and otherwise none.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from airbench_plugin.providers.base import ChatProvider


class CredentialsError(Exception):
    """A key source that cannot be used; the message is one sentence for the user."""


def read_dotenv(directory: Path) -> dict[str, str]:
    """The `.env` file's values, or nothing when there is no such file; raises CredentialsError."""
    path = directory / ".env"
    if not path.is_file():
        return {}
    try:
        raw = path.read_bytes()
        raw.decode("utf-8")
    except OSError as exc:
        raise CredentialsError(f"cannot read {str(path)!r} ({exc.strerror or exc}); fix or remove it.") from None
    except UnicodeDecodeError as exc:
        raise CredentialsError(
            f"cannot read {str(path)!r}: byte {exc.object[exc.start]:#04x} at offset {exc.start} is not UTF-8; "
            "save the file as UTF-8 or remove it."
        ) from None
    return {k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v}


def own_host(provider: type[ChatProvider], base_url: str | None) -> bool:
    """Whether `base_url` is the provider's own service (no base URL means the provider's default)."""
    if base_url is None:
        return True
    host = (urllib.parse.urlsplit(base_url).hostname or "").lower()
    return host in provider.key_hosts


def find_key(
    provider: type[ChatProvider],
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    *,
    base_url: str | None = None,
    key_env: str | None = None,
) -> str | None:
    """The key for one endpoint, or None.

    A variable the user named (`key_env`) is used for any host; otherwise the provider's own
    variables (then the benchmark authors' names), and only when the endpoint is the provider's
    own host. The environment wins over `.env`.
    """
    if key_env is not None:
        names: tuple[str, ...] = (key_env,)
    elif own_host(provider, base_url):
        names = provider.key_env + provider.dotenv_aliases
    else:
        return None
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


def unset_key_env_message(option: str, name: str) -> str:
    """One sentence for a named key variable that holds nothing."""
    return (
        f"{option}: the variable {name} is not set, neither in the environment nor in a .env file in the "
        "working directory; set it or drop the option."
    )
