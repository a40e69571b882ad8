"""What the plugin does with text no one controls: model answers, judge answers, dataset rows.

Such text can hold anything JSON can carry: lone surrogates, NUL and other control characters,
ANSI/OSC escape sequences, characters XML forbids, megabytes of it. Every output applies one of
these policies, and only these:

- `valid_unicode`: lone surrogates become U+FFFD, so the text encodes as UTF-8 (JSON, the cache,
  requests). Text entering the plugin passes through it once, so nothing downstream meets them.
- `terminal_safe`: control characters (C0, DEL, C1), bidirectional overrides and surrogates are
  shown as visible escapes such as `\\x1b`, so a terminal never receives a raw control sequence.
- `xml_safe`: the characters XML 1.0 forbids become U+FFFD (JUnit files, the HTML outputs).
- `shorten`: a very long text is cut for the HTML outputs, with a visible note; the JSON results
  keep it whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REPLACEMENT = "\ufffd"

# Characters a UTF-8 encoder refuses: unpaired UTF-16 surrogates.
_SURROGATE = re.compile("[\ud800-\udfff]")
# XML 1.0 allows tab, LF, CR and everything from U+0020 on except surrogates, U+FFFE and U+FFFF.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What a terminal may act on instead of printing: C0 controls but tab and new line, DEL, the C1
# controls (U+009B is CSI on terminals that read UTF-8-encoded C1), bidirectional embeddings,
# overrides and isolates (they reorder what is shown), line/paragraph separators and surrogates.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_TERMINAL_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

HTML_TEXT_LIMIT = 20_000  # characters of one answer, prompt or judgement shown in the HTML outputs
ERROR_TEXT_LIMIT = 2_000  # characters of a server's error message kept in an error sentence


def valid_unicode(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD: always encodable as UTF-8."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """`text` with every character a terminal could act on shown as an escape (`\\x1b`, `\\u202e`).

    New lines and tabs stay unless `one_line`, where a new line is shown as `\\x0a` too.
    """
    pattern = _TERMINAL_UNSAFE_ONE_LINE if one_line else _TERMINAL_UNSAFE
    return pattern.sub(_escape, text)


def xml_safe(text: str) -> str:
    """`text` with the characters XML 1.0 forbids replaced by U+FFFD."""
    if _XML_FORBIDDEN.search(text) is None:
        return text
    return _XML_FORBIDDEN.sub(REPLACEMENT, text)


@dataclass(frozen=True)
class Shortened:
    """A text cut for display: what is shown, and how many characters were left out."""

    text: str
    omitted: int

    @property
    def note(self) -> str:
        """The visible note that goes after a cut text; empty when nothing was cut."""
        if not self.omitted:
            return ""
        return f"[{self.omitted:,} more characters not shown; the JSON results hold the whole text]"

    def with_note(self) -> str:
        """The shown text followed by the note, on a line of its own."""
        return f"{self.text}\n… {self.note}" if self.omitted else self.text


def shorten(text: str, limit: int = HTML_TEXT_LIMIT) -> Shortened:
    """At most `limit` characters of `text` (never splitting a surrogate pair), and the count left out."""
    if len(text) <= limit:
        return Shortened(text, 0)
    cut = limit
    if "\ud800" <= text[cut - 1] <= "\udbff":  # do not separate a high surrogate from its partner
        cut -= 1
    return Shortened(text[:cut], len(text) - cut)


def clip(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """`text` cut to about `limit` characters with a count of the rest, for sentences that quote a server."""
    cut = shorten(text, limit)
    return f"{cut.text}… ({cut.omitted:,} more characters)" if cut.omitted else text


def preview(text: str, limit: int) -> str:
    """One terminal-safe line of at most `limit` characters: white space collapsed, cut with `…`."""
    flat = " ".join(text[: limit * 4].split())
    flat = flat if len(flat) <= limit and len(text) <= limit * 4 else flat[: limit - 1] + "…"
    return terminal_safe(flat, one_line=True)
