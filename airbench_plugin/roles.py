"""The endpoints a case calls, as one closed set: the model under test and its judges."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["target", "judge", "second judge"]
ROLES: tuple[Role, ...] = get_args(Role)
RECORDED_PROVIDER = "recorded"  # plays the model under test in a judge-only run (--airbench-responses)
ROLE_NAMES: dict[Role, str] = {  # as messages say them
    "target": "model under test",
    "judge": "judge",
    "second judge": "second judge",
}
