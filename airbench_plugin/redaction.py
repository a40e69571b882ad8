"""Secrets out of text: API keys and the credentials in base URLs, wherever the plugin writes or logs.

Two strengths. `Redactor.scrub` replaces the run's own secrets (its keys, the user, password and
query values of its base URLs); it is safe on any text, model answers included, and runs on
every output. `Redactor.scrub_foreign` also replaces anything *shaped* like a credential (an
`sk-...` key, `user:pass@` in a URL, `?api_key=...`); it runs on text a server or a library
wrote about our requests (error bodies that echo the request path, HTTP log lines), never on
answers, whose content it would change.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MASK = "***"
MIN_KEY = 4  # a configured API key of at least this many characters is replaced wherever it appears
MIN_URL_PART = 8  # a password or query value this long is replaced wherever it appears; shorter, in URLs only

_KEY_SHAPED = re.compile(r"\b(sk|tgp|key)[-_][A-Za-z0-9_*\-]{6,}")
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/?#@\"'<>]+@")
_SECRET_PARAM = re.compile(
    r"(?i)([?&;][a-z0-9_.\-]*(?:key|token|secret|passw(?:or)?d|pwd|auth|sig(?:nature)?|credential)[a-z0-9_.\-]*=)"
    r"[^&;#\s\"'<>]+"
)


def url_secrets(url: str | None) -> list[str]:
    """The parts of a URL that may be credentials: `user:password`, the password, every query value."""
    if not url:
        return []
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
        username = parts.username
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=False)
    except ValueError:  # an invalid port or bracket: fall back to the shapes
        return []
    found = [value for _name, value in query]
    if password:
        found.append(password)
    if username:
        found.append(username if password is None else f"{username}:{password}")
    return found


def _query_names(url: str | None) -> list[str]:
    if not url:
        return []
    try:
        return [name for name, _value in urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)]
    except ValueError:
        return []


@dataclass(frozen=True)
class Redactor:
    """The run's secrets, and how to take them out of a text."""

    secrets: tuple[str, ...] = ()  # replaced wherever they appear
    url_only: tuple[str, ...] = ()  # short URL credentials: replaced only where a URL holds them
    query_names: tuple[str, ...] = ()  # query parameters of the run's base URLs

    @classmethod
    def for_run(cls, keys: Iterable[str | None], urls: Iterable[str | None]) -> Redactor:
        """A redactor for the API keys and base URLs of a run."""
        secrets: list[str] = [key for key in keys if key and len(key) >= MIN_KEY]
        url_only: list[str] = []
        names: list[str] = []
        for url in urls:
            names += _query_names(url)
            for part in url_secrets(url):
                for form in {part, urllib.parse.unquote(part), urllib.parse.quote(part, safe="")}:
                    (secrets if len(form) >= MIN_URL_PART else url_only).append(form)
        # Longest first, so a secret that contains another is replaced whole.
        return cls(
            tuple(sorted(set(secrets), key=len, reverse=True)),
            tuple(sorted(set(url_only), key=len, reverse=True)),
            tuple(sorted(set(names))),
        )

    def scrub(self, text: str) -> str:
        """`text` without the run's own secrets; changes nothing else."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for part in self.url_only:
            # `user:pw@` after a scheme, or `name=pw` in a query.
            text = text.replace(f"://{part}@", f"://{MASK}@")
            text = re.sub(rf"([?&;][^=&#\s]+=){re.escape(part)}(?=$|[&;#\s\"'<>])", rf"\g<1>{MASK}", text)
        for name in self.query_names:
            text = re.sub(rf"([?&;]{re.escape(name)}=)[^&;#\s\"'<>]+", rf"\g<1>{MASK}", text)
        return text

    def scrub_foreign(self, text: str) -> str:
        """`text` without the run's secrets nor anything shaped like a credential."""
        text = self.scrub(text)
        text = _USERINFO.sub(rf"\g<1>{MASK}@", text)
        text = _SECRET_PARAM.sub(rf"\g<1>{MASK}", text)
        return _KEY_SHAPED.sub(r"\1-***", text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the given secrets and anything shaped like a credential replaced by `***`."""
    keys = [secret for secret in secrets if secret]
    return Redactor.for_run(keys, []).scrub_foreign(text)


def shown_url(raw: str) -> str:
    """A URL as it may be quoted back to the user: credentials and query values masked."""
    text = Redactor.for_run([], [raw]).scrub_foreign(raw)
    # Without a scheme, `user:pass@host` is no URL to urlsplit: mask what precedes the `@`.
    return re.sub(r"^[^/@\s]+@", f"{MASK}@", text)


class LogScrubber:
    """Takes the run's secrets out of every log record made while it is installed.

    HTTP clients log each request's URL (`HTTP Request: POST http://user:pass@host/...`) at INFO;
    pytest shows log records in the terminal, JUnit and pytest-html. The scrubber wraps the
    log-record factory, so records of every logger are covered, whichever handler pytest adds.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._previous: Any = None

    def install(self) -> None:
        self._previous = logging.getLogRecordFactory()
        logging.setLogRecordFactory(self._make)

    def uninstall(self) -> None:
        if logging.getLogRecordFactory() == self._make:
            logging.setLogRecordFactory(self._previous)

    def _make(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self._previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: logging reports it later
            return record
        scrubbed = self.redactor.scrub_foreign(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redactor.scrub_foreign(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self.redactor.scrub_foreign(record.stack_info)
        return record
