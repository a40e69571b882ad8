"""pytest-html integration, registered only when pytest-html is active."""

from __future__ import annotations

import pytest


class HtmlIntegration:
    """Columns, extras and a summary table for pytest-html's report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
