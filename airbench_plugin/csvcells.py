"""CSV cells that cannot hurt a spreadsheet and read back as they were written.

`airbench export` writes model answers, prompts and judge reasoning into CSV files a reviewer
opens in a spreadsheet; a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a
formula there. OWASP's recipe (CSV Injection): prefix such a cell with `'`, which spreadsheets
show as text. `--airbench-responses` reads the prefix back, so the round trip gives the same
answers and the same scores:

- `neutralise` adds one `'` to a cell that, after any leading `'`, starts with a formula character
  (a cell already starting with `'=` gets one more, so reading back cannot eat a real quote);
- with `empty_marker`, an empty answer is written as `'`: a CSV cannot tell an empty cell from a
  missing one, and a missing answer (an errored prompt) must stay missing;
- `restore` removes exactly one `'` from a cell that `neutralise` would have produced.

An answer a file already held as `'=...` (rare in the authors' files, which are not neutralised)
reads as `=...`; the round trip of this plugin's own files is exact.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Iterator

FORMULA_START = "=+-@\t\r"
_NEEDS_PREFIX = re.compile(r"'*[=+\-@\t\r]")
_PREFIXED = re.compile(r"'+[=+\-@\t\r]")
_EMPTY_OR_QUOTES = re.compile(r"'*")

# The largest field `--airbench-responses` reads from a CSV file: 16 Mi characters. A model's
# longest answer is its output limit (128k tokens for the largest today) at a few characters a
# token, about 1 Mi characters; the `csv` module's default of 131,072 refused real answers.
FIELD_LIMIT = 16 * 1024 * 1024


def neutralise(cell: str, empty_marker: bool = False) -> str:
    """`cell` as a spreadsheet shows it as text; with `empty_marker`, an empty cell as `'`."""
    if _NEEDS_PREFIX.match(cell) or (empty_marker and _EMPTY_OR_QUOTES.fullmatch(cell)):
        return "'" + cell
    return cell


def restore(cell: str, empty_marker: bool = False) -> str:
    """The cell `neutralise` was given: one `'` fewer where it added one."""
    if _PREFIXED.match(cell) or (empty_marker and cell and _EMPTY_OR_QUOTES.fullmatch(cell)):
        return cell[1:]
    return cell


@contextlib.contextmanager
def field_limit(limit: int = FIELD_LIMIT) -> Iterator[None]:
    """The `csv` module's field-size limit raised to `limit` while reading, then put back (it is global)."""
    before = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(before)
