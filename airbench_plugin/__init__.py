"""pytest-airbench: the AIR-Bench 2024 safety benchmark as a pytest suite."""

from __future__ import annotations

__version__ = "0.1.0"
