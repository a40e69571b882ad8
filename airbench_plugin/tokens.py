"""Counting tokens before a call: tiktoken where the model's encoding is known and on this machine, else characters ÷ 4.

tiktoken downloads an encoding's BPE file on first use (from OpenAI's public blob store) and keeps
it in its cache (`TIKTOKEN_CACHE_DIR`, else `data-gym-cache` in the temporary directory). A run
must not reach the internet to print an estimate, and `requests` would wait without a timeout on
a network that drops packets, so tiktoken is used only when the file is already in its cache
with the hash tiktoken expects; otherwise the count is characters ÷ 4 and the reason says how to
get the file (`python -c "import tiktoken; tiktoken.get_encoding('o200k_base')"` once, with the
same `TIKTOKEN_CACHE_DIR`, e.g. a folder CI caches). Only OpenAI's models have a known encoding;
for any other model (Llama, Qwen, a custom target) characters ÷ 4 is the count, and it says so.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4  # tokens a chat format adds around each message (OpenAI's cookbook: 3-4)
REPLY_OVERHEAD = 3  # tokens that prime the reply
# The encodings this plugin can load offline: where tiktoken fetches each one (its cache key) and
# the SHA-256 tiktoken checks it against (tiktoken_ext/openai_public.py).
ENCODING_FILES: Mapping[str, tuple[str, str]] = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}


@dataclass(frozen=True)
class TokenCounter:
    """How a model's text is counted: `method` for the header, `why` when it is the fallback."""

    method: str  # "tiktoken o200k_base" or "characters ÷ 4"
    count_text: Callable[[str], int]
    why: str | None = None  # why not tiktoken

    def count(self, messages: Iterable[Mapping[str, str]]) -> int:
        """A chat request's prompt tokens: its messages' text plus the chat format's overhead."""
        texts = [str(message.get("content", "")) for message in messages]
        return sum(self.count_text(text) + MESSAGE_OVERHEAD for text in texts) + REPLY_OVERHEAD

    @property
    def described(self) -> str:
        return self.method if self.why is None else f"{self.method}: {self.why}"


def by_characters(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def tiktoken_cache_dir() -> Path:
    """Where tiktoken keeps the files it downloaded, as it decides (tiktoken/load.py)."""
    for name in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if name in os.environ:
            return Path(os.environ[name])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def cached_encoding_file(encoding: str) -> Path | None:
    """The encoding's BPE file in tiktoken's cache when it is there whole (its hash checks); else None."""
    url, expected = ENCODING_FILES[encoding]
    directory = tiktoken_cache_dir()
    if not str(directory):
        return None  # caching turned off: tiktoken would download every time
    path = directory / hashlib.sha1(url.encode()).hexdigest()
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return path if hashlib.sha256(data).hexdigest() == expected else None


@functools.cache
def counter_for(model: str) -> TokenCounter:
    """The best counter for `model` available without the network."""
    fallback = "characters ÷ 4"
    try:
        import tiktoken
    except ImportError:  # pragma: no cover - a dependency, but an estimate must never stop a run
        return TokenCounter(fallback, by_characters, "tiktoken is not installed")
    try:
        encoding = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return TokenCounter(fallback, by_characters, f"tiktoken does not know {model}")
    if encoding not in ENCODING_FILES:
        return TokenCounter(fallback, by_characters, f"{model}'s encoding {encoding} is not one read offline")
    if cached_encoding_file(encoding) is None:
        why = (
            f"tiktoken's {encoding} file is not in {tiktoken_cache_dir()} "
            f"(fetch it once: python -c \"import tiktoken; tiktoken.get_encoding('{encoding}')\")"
        )
        return TokenCounter(fallback, by_characters, why)
    # The file is in the cache with its hash: tiktoken reads it from there, never from the network.
    codec = tiktoken.get_encoding(encoding)
    return TokenCounter(f"tiktoken {encoding}", lambda text: len(codec.encode(text, disallowed_special=())))
