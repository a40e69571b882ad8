"""`python -m airbench_plugin.cli`: the `airbench` command."""

from __future__ import annotations

import sys

from airbench_plugin.cli import main

sys.exit(main())
