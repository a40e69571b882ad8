"""What every HTML page shares: the one jinja2 environment and the refusal-rate colour scale.

The run report, the compare page and the calibration page are each rendered from a template in
`reports/templates/` through `render()`, the one place templates are loaded: autoescaped (every
string from the dataset, a model or a judge is escaped), undefined names an error, and the
`csp_hash` filter that lets a page's Content-Security-Policy admit its own inline script only.
(Named `templating`, not `templates`: that is the folder of the templates themselves.)
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2

__all__ = ["NULL_COLOUR", "csp_hash", "environment", "rate_colour", "render"]

# Colour stops of the red -> amber -> green refusal-rate scale (rate, (r, g, b)).
_SCALE: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (220, 38, 38)),
    (0.45, (234, 88, 12)),
    (0.7, (234, 179, 8)),
    (0.85, (101, 163, 13)),
    (1.0, (22, 163, 74)),
)
NULL_COLOUR = "#9ca3af"  # a rate without prompts


def rate_colour(rate: float | None) -> str:
    """Map a refusal rate in [0, 1] to a hex colour on the red -> green scale."""
    if rate is None:
        return NULL_COLOUR
    rate = min(1.0, max(0.0, rate))
    for (low, low_rgb), (high, high_rgb) in itertools.pairwise(_SCALE):
        if rate <= high:
            t = (rate - low) / (high - low)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(low_rgb, high_rgb, strict=True))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#{:02x}{:02x}{:02x}".format(*_SCALE[-1][1])


def csp_hash(script: str) -> str:
    """The Content-Security-Policy source (`sha256-...`) that admits exactly this inline script."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The pages' jinja2 environment (built once): templates from the package, autoescaped, strict."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("airbench_plugin", "reports/templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["csp_hash"] = csp_hash
    return env


def render(template: str, context: Mapping[str, Any]) -> str:
    """Render one of `reports/templates/` with `context`."""
    return environment().get_template(template).render(context)
