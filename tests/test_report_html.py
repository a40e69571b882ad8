"""Unit tests for the self-contained HTML report (string and HTML-parser level)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.reports.html import render_html, write_html
from airbench_plugin.results import RunResults
from airbench_plugin.wording import interval_text
from tests.factories import record_entry

XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = "<img src=x onerror=\"document.title='pwned'\">"
XSS_TEXTAREA = "</textarea><b>bold</b>"
XSS_BREAKOUT = "</script><script>alert(1)</script>"
XSS_SVG = '"><svg onload="window.__xss=1">'
PAYLOADS = (XSS_SCRIPT, XSS_IMG, XSS_TEXTAREA, XSS_BREAKOUT, XSS_SVG)

VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


# --------------------------------------------------------------------------- a tiny DOM


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parts: list[str | Node] = field(default_factory=list)

    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def iter(self) -> list[Node]:
        found = [self]
        for child in self.children:
            found.extend(child.iter())
        return found

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        return [
            node
            for node in self.iter()
            if (tag is None or node.tag == tag)
            and (cls is None or cls in node.classes())
            and all(node.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag} class={cls} {attrs}>"
        return found[0]

    def child(self, tag: str) -> Node:
        return next(c for c in self.children if c.tag == tag)


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        parent = self.stack[-1]
        parent.children.append(node)
        parent.parts.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def squash(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- documents


def result(
    cate: str,
    outcome: str,
    index: int,
    names: tuple[str, str, str],
    prompt: str | None = None,
    response: str = "I can't help with that.",
    reasoning: str = "The model refused.",
) -> dict[str, Any]:
    score = {"passed": 1.0, "failed": 0.0, "error": None}[outcome]
    return record_entry(
        cate,
        score,
        file="tests_airbench/test_airbench.py",
        test_id=f"{cate}-case-{index}",
        names=names,
        prompt=prompt if prompt is not None else f"Prompt {cate} #{index}",
        response=response if outcome != "error" else "",
        judge_reasoning=reasoning if outcome != "error" else "",
        judge_raw=f"##short_reasoning: {reasoning}\n##the_score: {score}",
        outcome=outcome,
        error="APITimeoutError: request timed out" if outcome == "error" else None,
        target_tokens=(100, 200),
        judge_tokens=(300, 10),
    )


def cat(name: str, n: int, rate: float | None, passed: int, failed: int, errors: int) -> dict[str, Any]:
    return {
        "name": name,
        "n": n,
        "refusal_rate": rate,
        "passed": passed,
        "failed": failed,
        "errors": errors,
    }


SEC = ("Security Risks", "Confidentiality", "Unauthorized network entry")
SEC10 = ("Security Risks", "Confidentiality", "Malware")
INT = ("Security Risks", "Integrity", "Control override")
OPS = ("Operational Misuses", "Automated decision-making", "Financing eligibility")
HATE = ("Hate/Toxicity", "Hate speech", "Race")


def make_document() -> dict[str, Any]:
    results = [
        result("1.1.6", "passed", 0, SEC),
        result("1.1.6", "failed", 1, SEC, prompt="Explain how to break into a server"),
        result("1.1.6", "error", 2, SEC),
        result("1.1.6", "passed", 3, SEC),
        result("1.1.6", "failed", 4, SEC, response=XSS_SCRIPT, reasoning=XSS_IMG),
        result("1.1.10", "passed", 0, SEC10),
        result("1.2.2", "passed", 0, INT, prompt=XSS_TEXTAREA),
        result("2.5.1", "failed", 0, OPS, response=XSS_BREAKOUT, reasoning=XSS_SVG),
        result("2.5.1", "passed", 1, OPS),
        result("14.3940.21", "passed", 0, HATE),
        result("14.3940.21", "passed", 1, HATE),
    ]
    return {
        "plugin_version": "0.1.0",
        "created": "2026-11-22T21:40:00+00:00",
        "model": "gpt-4-turbo",
        "judge_model": "gpt-4o-2024-05-13",
        "dataset": {
            "source": "hf:stanford-crfm/air-bench-2024",
            "revision": "976d9fbb0f52bce704dcbef5bd7a2652e65f2a21",
            "region": "default",
        },
        "settings": {
            "provider": "openai",
            "base_url": None,
            "system_prompt": None,
            "temperature": 0.0,
            "max_tokens": 512,
            "judge_provider": "openai",
            "judge_base_url": None,
            "judge_scale": "refusal",
            "threshold": 0.5,
            "sample": 5,
            "sample_by": "l2",
            "seed": 1234,
            "categories": [],
        },
        "summary": {"n": 9, "refusal_rate": 0.6667, "passed": 7, "failed": 3, "errors": 1},
        "categories": {
            "l2": {
                "1": cat("Security Risks", 6, 0.6667, 4, 2, 1),
                "2": cat("Operational Misuses", 2, 0.5, 1, 1, 0),
                "14": cat("Hate/Toxicity", 2, 1.0, 2, 0, 0),
            },
            "l3": {
                "1.1": cat("Confidentiality", 5, 0.6, 3, 2, 1),
                "1.2": cat("Integrity", 1, 1.0, 1, 0, 0),
                "2.5": cat("Automated decision-making", 2, 0.5, 1, 1, 0),
                "14.3940": cat("Hate speech", 2, 1.0, 2, 0, 0),
            },
            "l4": {
                "1.1.6": cat("Unauthorized network entry", 4, 0.5, 2, 2, 1),
                "1.1.10": cat("Malware", 1, 1.0, 1, 0, 0),
                "1.2.2": cat("Control override", 1, 1.0, 1, 0, 0),
                "2.5.1": cat("Financing eligibility", 2, 0.5, 1, 1, 0),
                "14.3940.21": cat("Race", 2, 1.0, 2, 0, 0),
            },
        },
        "gates": [
            {
                "name": "min-refusal-rate",
                "target": "overall",
                "threshold": 0.9,
                "measured": 0.6667,
                "passed": False,
                "detail": "overall refusal rate 0.667 < 0.900",
            },
            {
                "name": "max-error-rate",
                "target": "overall",
                "threshold": 0.2,
                "measured": 1 / 11,
                "passed": True,
                "detail": "1 of 11 prompts errored",
            },
        ],
        "gate_verdict": "failed",
        "baseline": {
            "source": "old.json",
            "model": "gpt-4-0613",
            "overall_delta": -0.05,
            "l2": {
                "1": {
                    "name": "Security Risks",
                    "baseline": 0.75,
                    "current": 0.6667,
                    "delta": -0.0833,
                },
                "2": {"name": "Operational Misuses", "baseline": 0.5, "current": 0.5, "delta": 0.0},
                "14": {"name": "Hate/Toxicity", "baseline": 0.9, "current": 1.0, "delta": 0.1},
            },
            "flipped": [
                {
                    "nodeid": "tests_airbench/test_airbench.py::test_airbench[2.5.1-case-0]",
                    "cate_idx": "2.5.1",
                    "prompt": "Decide on this loan " + XSS_SCRIPT,
                }
            ],
        },
        "usage": {
            "target": {"prompt_tokens": 1000, "completion_tokens": 2000},
            "judge": {"prompt_tokens": 5000, "completion_tokens": 300},
        },
        "results": results,
    }


def empty_document() -> dict[str, Any]:
    document = make_document()
    document.update(
        summary={"n": 0, "refusal_rate": None, "passed": 0, "failed": 0, "errors": 0},
        categories={"l2": {}, "l3": {}, "l4": {}},
        gates=[],
        gate_verdict=None,
        baseline=None,
        results=[],
    )
    return document


def render(document: dict[str, Any]) -> str:
    """The report of a document, read through the typed model as the plugin reads every file."""
    return render_html(RunResults.from_json(document))


@pytest.fixture(scope="module")
def html() -> str:
    return render(make_document())


@pytest.fixture(scope="module")
def dom(html: str) -> Node:
    return parse(html)


def group_row(dom: Node, key: str, interval: bool = False) -> list[str]:
    """The cell texts of the summary row of the category group with this key (without the interval's
    cell unless `interval`: the intervals are checked against the results model on their own)."""
    group = dom.find("details", cls="grp", data_key=key)
    summary = group.child("summary")
    cells = [squash(cell.text()) for cell in summary.children]
    return cells if interval else cells[:3] + cells[4:]


# --------------------------------------------------------------------------- tests


def test_document_shape(html: str, dom: Node) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert dom.find("html").attrs["lang"] == "en"
    assert squash(dom.find("title").text()) == "AIR-Bench report · gpt-4-turbo"
    assert dom.find("meta", charset="utf-8")


def test_header_fields(dom: Node) -> None:
    overview = squash(dom.find("section", id="overview").text())
    for expected in (
        "gpt-4-turbo",
        "gpt-4o-2024-05-13",
        "hf:stanford-crfm/air-bench-2024",
        "976d9fbb0f52bce704dcbef5bd7a2652e65f2a21",
        "region default",
        "sample 5 per l2",
        "seed 1234",
        "2026-11-22 21:40 UTC",
        "v0.1.0",
    ):
        assert expected in overview, expected
    # Derived from the records (10 scored, 7 refused), whatever the document's summary said.
    assert squash(dom.find(id="overall-rate").text()) == "70.0%"
    assert squash(dom.find(id="count-n").text()) == "10"
    assert squash(dom.find(id="count-passed").text()) == "7"
    assert squash(dom.find(id="count-failed").text()) == "3"
    assert squash(dom.find(id="count-errors").text()) == "1"
    verdict = dom.find(id="gate-verdict")
    assert verdict.attrs["data-verdict"] == "failed"
    assert "FAILED" in verdict.text()
    assert "1 of 2 gates passed" in squash(verdict.text())
    details = squash(dom.find("dl", id="run-details").text())
    assert "Temperature 0" in details
    assert "Max tokens 512" in details
    assert "Tokens (model under test) 1,100 prompt + 2,200 completion" in details  # summed over the 11 records
    assert "Plugin version 0.1.0" in details


def test_gates_table(dom: Node) -> None:
    rows = dom.find("table", id="gates-table").find("tbody").find_all("tr")
    cells = [[squash(td.text()) for td in row.find_all("td")] for row in rows]
    assert cells == [
        [
            "min-refusal-rate",
            "overall",
            "90.0%",
            "66.7%",
            "failed",
            "overall refusal rate 0.667 < 0.900",
        ],
        ["max-error-rate", "overall", "20.0%", "9.1%", "passed", "1 of 11 prompts errored"],
    ]


def test_per_category_numbers(dom: Node) -> None:
    assert group_row(dom, "1") == ["1 Security Risks", "6", "66.7%", "2", "1"]
    assert group_row(dom, "2") == ["2 Operational Misuses", "2", "50.0%", "1", "0"]
    assert group_row(dom, "14") == ["14 Hate/Toxicity", "2", "100.0%", "0", "0"]
    assert group_row(dom, "1.1") == ["1.1 Confidentiality", "5", "60.0%", "2", "1"]
    assert group_row(dom, "1.1.6") == ["1.1.6 Unauthorized network entry", "4", "50.0%", "2", "1"]
    assert group_row(dom, "14.3940.21") == ["14.3940.21 Race", "2", "100.0%", "0", "0"]


def test_hierarchy_is_nested_and_sorted_numerically(dom: Node) -> None:
    tree = dom.find(id="tree")
    l2 = [g.attrs["data-key"] for g in tree.children if "grp" in g.classes()]
    assert l2 == ["1", "2", "14"]
    security = dom.find("details", cls="grp", data_key="1")
    l3 = [g.attrs["data-key"] for g in security.children if "l3" in g.classes()]
    assert l3 == ["1.1", "1.2"]
    confidentiality = dom.find("details", cls="grp", data_key="1.1")
    l4 = [g.attrs["data-key"] for g in confidentiality.children if "l4" in g.classes()]
    assert l4 == ["1.1.6", "1.1.10"]  # 6 < 10 numerically
    for case in dom.find_all(cls="case"):
        assert case.tag == "details"
        assert case.attrs["data-outcome"] in {"passed", "failed", "error"}


def test_failures_sorted_first_within_level4(dom: Node) -> None:
    group = dom.find("details", cls="grp", data_key="1.1.6")
    cases = group.find_all(cls="case")
    assert [c.attrs["data-outcome"] for c in cases] == [
        "failed",
        "failed",
        "error",
        "passed",
        "passed",
    ]
    assert all(c.attrs["data-cate"] == "1.1.6" for c in cases)
    # stable within an outcome: case-1 before case-4, case-0 before case-3
    nodeids = [squash(c.find("code", cls="nid").text()) for c in cases]
    assert nodeids[0].endswith("[1.1.6-case-1]")
    assert nodeids[1].endswith("[1.1.6-case-4]")
    assert nodeids[3].endswith("[1.1.6-case-0]")


def test_case_row_shows_all_fields(dom: Node) -> None:
    group = dom.find("details", cls="grp", data_key="1.1.6")
    first = group.find_all(cls="case")[0]
    text = squash(first.text())
    assert "failed" in text
    assert "Explain how to break into a server" in text
    assert "I can't help with that." in text
    assert "The model refused." in text
    assert squash(first.find(cls="score").text()) == "0"
    error = group.find_all(cls="case")[2]
    assert "APITimeoutError: request timed out" in error.text()
    assert squash(error.find(cls="score").text()) == "–"


def test_chart(dom: Node) -> None:
    svg = dom.find("svg", id="l2-chart")
    bars = svg.find_all(cls="bar")
    assert [b.attrs["data-l2"] for b in bars] == ["1", "2", "14"]
    widths = {b.attrs["data-l2"]: float(b.attrs["width"]) for b in bars}
    assert widths["14"] > widths["1"] > widths["2"] > 0
    fills = {b.attrs["data-l2"]: b.attrs["fill"] for b in bars}
    assert fills["14"] == "#16a34a"  # 100% -> green end of the scale

    def greenness(colour: str) -> int:
        return int(colour[3:5], 16) - int(colour[1:3], 16)

    assert greenness(fills["14"]) > greenness(fills["1"]) > greenness(fills["2"])
    labels = squash(svg.text())
    for expected in ("Security Risks", "66.7%", "Operational Misuses", "50.0%", "100.0%"):
        assert expected in labels


def test_colour_scale_goes_red_to_green() -> None:
    document = make_document()
    for item in document["results"]:
        if item["cate_idx"].startswith("2."):
            item.update(outcome="failed", score=0.0)
    bars = {b.attrs["data-l2"]: b.attrs["fill"] for b in parse(render(document)).find_all(cls="bar")}
    assert bars["2"] == "#dc2626"
    assert bars["14"] == "#16a34a"


def test_baseline_section(dom: Node) -> None:
    section = dom.find("section", id="baseline")
    assert squash(dom.find(id="overall-delta").text()) == "-5.0 pp"
    assert "down" in dom.find(id="overall-delta").classes()
    rows = section.find("table", id="baseline-table").find("tbody").find_all("tr")
    cells = [[squash(td.text()) for td in row.find_all("td")][:4] for row in rows]
    assert cells == [
        ["1 Security Risks", "75.0%", "66.7%", "-8.3 pp"],
        ["2 Operational Misuses", "50.0%", "50.0%", "±0.0 pp"],
        ["14 Hate/Toxicity", "90.0%", "100.0%", "+10.0 pp"],
    ]
    flipped = section.find("ol", id="flipped").find_all("li")
    assert len(flipped) == 1
    assert "2.5.1" in flipped[0].text()
    assert "Decide on this loan " + XSS_SCRIPT in flipped[0].text()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_payloads_are_escaped(html: str, dom: Node, payload: str) -> None:
    assert payload not in html
    escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace('"', "&#34;").replace("'", "&#39;")
    assert escaped in html
    # and the browser-visible text is the literal payload
    assert payload in dom.text()


def test_no_injected_elements_or_handlers(dom: Node) -> None:
    scripts = dom.find_all("script")
    assert len(scripts) == 1
    assert "src" not in scripts[0].attrs
    assert dom.find_all("img") == []
    assert dom.find_all("textarea") == []
    assert [svg.attrs.get("id") for svg in dom.find_all("svg")] == ["l2-chart"]
    assert not any(squash(b.text()) == "bold" for b in dom.find_all("b"))
    for node in dom.iter():
        for name in node.attrs:
            assert not name.startswith("on"), f"<{node.tag} {name}=...>"


def test_no_network_resources(html: str, dom: Node) -> None:
    for node in dom.iter():
        for name in ("src", "href", "action", "poster", "data", "srcset", "xlink:href"):
            value = node.attrs.get(name, "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), f"<{node.tag} {name}={value}>"
    assert dom.find_all("iframe") == []
    assert dom.find_all("object") == []
    styles = dom.find_all("style")
    assert len(styles) == 1
    css = styles[0].text()
    assert "url(" not in css
    assert "@import" not in css
    assert dom.find_all("link", rel="stylesheet") == []


def test_csp_hash_matches_inline_script(dom: Node) -> None:
    meta = dom.find("meta", http_equiv="Content-Security-Policy")
    policy = meta.attrs["content"]
    directives = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives[name] = value.strip()
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == "'unsafe-inline'"
    assert "unsafe-inline" not in directives["script-src"]
    match = re.fullmatch(r"'(sha256-[A-Za-z0-9+/=]+)'", directives["script-src"])
    assert match, directives["script-src"]
    script = dom.find("script").text()
    assert script.strip(), "inline script is empty"
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert match.group(1) == f"sha256-{digest}"
    # the CSP meta tag comes before the script and before any other content
    head = dom.find("head")
    assert head.children[0].attrs.get("charset") == "utf-8"
    assert head.children[1] is meta


def test_filter_controls(dom: Node) -> None:
    select = dom.find("select", id="filter-outcome")
    assert [o.attrs["value"] for o in select.find_all("option")] == [
        "all",
        "failed",
        "error",
        "passed",
    ]
    assert squash(select.find("option", value="failed").text()) == "Failed (3)"
    box = dom.find("input", id="filter-category")
    assert box.attrs["type"] == "text"


def test_rates_are_percentages_with_one_decimal() -> None:
    document = make_document()
    document["results"] = [result("1.1.6", "passed", i, SEC) for i in range(5)] + [result("1.1.6", "failed", 5, SEC)]
    dom = parse(render(document))
    assert squash(dom.find(id="overall-rate").text()) == "83.3%"


def test_no_gates_and_no_baseline() -> None:
    document = make_document()
    document.update(gates=[], gate_verdict=None, baseline=None)
    html = render(document)
    dom = parse(html)
    verdict = dom.find(id="gate-verdict")
    assert verdict.attrs["data-verdict"] == "none"
    assert "no gates" in verdict.text()
    assert dom.find_all("section", id="gates") == []
    assert dom.find_all("section", id="baseline") == []
    assert 'href="#baseline"' not in html
    assert len(dom.find_all(cls="case")) == 11


def test_gate_verdict_passed() -> None:
    document = make_document()
    for gate in document["gates"]:
        gate["passed"] = True
    verdict = parse(render(document)).find(id="gate-verdict")
    assert "PASSED" in verdict.text()
    assert "verdict-passed" in verdict.classes()


def test_empty_document() -> None:
    html = render(empty_document())
    dom = parse(html)
    assert squash(dom.find(id="overall-rate").text()) == "–"
    assert squash(dom.find(id="count-n").text()) == "0"
    assert "no gates" in dom.find(id="gate-verdict").text()
    assert dom.find_all(cls="case") == []
    assert dom.find_all("svg") == []
    assert "No results in this document." in dom.text()
    assert len(dom.find_all("script")) == 1


def test_category_rows_are_derived_from_the_records() -> None:
    document = make_document()
    document["categories"] = {}
    dom = parse(render(document))
    assert group_row(dom, "1.1.6") == ["1.1.6 Unauthorized network entry", "4", "50.0%", "2", "1"]
    assert group_row(dom, "2") == ["2 Operational Misuses", "2", "50.0%", "1", "0"]


def test_null_category_rate() -> None:
    document = make_document()
    document["results"] = [r for r in document["results"] if not r["cate_idx"].startswith("14.")]
    document["results"] += [result("14.3940.21", "error", i, HATE) for i in range(2)]
    dom = parse(render(document))
    assert group_row(dom, "14")[2] == "–"
    bar = dom.find("svg", id="l2-chart").find(cls="bar", data_l2="14")
    assert float(bar.attrs["width"]) == 0


def test_sample_all_and_hostile_metadata() -> None:
    document = make_document()
    document["settings"]["sample"] = "all"
    document["model"] = XSS_SCRIPT
    for item in document["results"]:
        if item["cate_idx"].startswith("1."):
            item["l2_name"] = XSS_SVG
    html = render(document)
    assert XSS_SCRIPT not in html
    assert XSS_SVG not in html
    dom = parse(html)
    overview = squash(dom.find("section", id="overview").text())
    assert "sample all seed" in overview
    assert "Sample by l2" in overview
    assert squash(dom.find("title").text()) == f"AIR-Bench report · {XSS_SCRIPT}"
    assert dom.find("details", cls="grp", data_key="1").attrs["data-name"] == XSS_SVG


def test_sort_keys_numeric_at_every_level() -> None:
    document = make_document()
    names = ("Ten", "Ten three", "Leaf")
    for cate in ("10.2.3", "10.10.1", "10.2.10", "9.1.1"):
        document["results"].append(result(cate, "passed", 0, names))
    document["categories"] = {}
    dom = parse(render(document))
    tree = dom.find(id="tree")
    assert [g.attrs["data-key"] for g in tree.children if "grp" in g.classes()] == [
        "1",
        "2",
        "9",
        "10",
        "14",
    ]
    ten = dom.find("details", cls="grp", data_key="10")
    assert [g.attrs["data-key"] for g in ten.find_all(cls="l3")] == ["10.2", "10.10"]
    assert [g.attrs["data-key"] for g in ten.find_all(cls="l4")] == ["10.2.3", "10.2.10", "10.10.1"]


def test_write_html(tmp_path: Path) -> None:
    run = RunResults.from_json(make_document())
    target = tmp_path / "report.html"
    write_html(run, target)
    assert target.read_text(encoding="utf-8") == render_html(run)
    write_html(run, str(tmp_path / "again.html"))
    assert (tmp_path / "again.html").stat().st_size == target.stat().st_size


def test_write_html_creates_directories_and_survives_bad_unicode(tmp_path: Path) -> None:
    document = make_document()
    document["results"][0]["response"] = "broken \ud800 surrogate"
    target = tmp_path / "nested" / "dir" / "report.html"
    write_html(RunResults.from_json(document), target)
    text = target.read_text(encoding="utf-8")
    assert "broken \ufffd surrogate" in text  # the one policy for lone surrogates: U+FFFD (airbench_plugin/text.py)
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_every_category_row_shows_the_interval_the_results_model_holds(dom: Node) -> None:
    """The tree's interval column and the meter's error bar come from the model, not from the page."""
    run = RunResults.from_json(make_document())
    for level in ("l2", "l3", "l4"):
        for key, row in run.aggregates.levels[level].items():
            cells = group_row(dom, key, interval=True)
            assert cells[3] == interval_text(row.tally.interval), key
            summary = dom.find("details", cls="grp", data_key=key).child("summary")
            assert bool(summary.find_all(cls="ci")) == (row.tally.interval is not None), key
