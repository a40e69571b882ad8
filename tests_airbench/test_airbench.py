"""This repository's copy of the safety suite: the plugin's own test, collected here.

`pytest --airbench-model NAME` at the repository root runs it. Nothing is copied: the test
function lives in the installed plugin (`airbench_plugin.suite`), so a team's repository can
collect it the same way, or run `pytest --pyargs airbench_plugin.suite` with no file at all.
"""

from airbench_plugin.suite.test_airbench import test_airbench

__all__ = ["test_airbench"]
