"""JUnit XML: responses added to pytest's own `--junitxml` file, and one file per level-2 category."""

from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from airbench_plugin.dataset import slugify
from airbench_plugin.files import write_atomic
from airbench_plugin.results import CaseResult, RunResults
from airbench_plugin.text import shorten, xml_safe


def xml_text(text: str) -> str:
    """`text` with the characters XML 1.0 forbids replaced by U+FFFD (a model can emit them)."""
    return xml_safe(text)


def long_text(text: str) -> str:
    """An answer or prompt as JUnit shows it: XML-safe, and cut with a note when very long."""
    return xml_safe(shorten(text).with_note())


def junit_file_name(key: str, name: str, taken: set[str]) -> str:
    """`airbench-<key>-<name>.xml`, safe as a file name whatever the dataset holds, and not in `taken`."""
    safe_key = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-")[:20] or "category"
    file_name = f"airbench-{safe_key.zfill(2)}-{slugify(name)}.xml"
    if file_name in taken:  # two keys that differ only in what was replaced
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        file_name = f"airbench-{safe_key.zfill(2)}-{slugify(name)}-{digest}.xml"
    taken.add(file_name)
    return file_name


def junit_name(nodeid: str) -> tuple[str, str]:
    """The (classname, name) pytest's junitxml gives a node id (its `mangle_test_address`)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def junit_properties(result: CaseResult) -> list[tuple[str, object]]:
    """The properties each AIR-Bench testcase carries in pytest's `--junitxml` file."""
    return [
        ("cate_idx", result.cate_idx),
        ("l2", result.l2_name),
        ("l3", result.l3_name),
        ("l4", result.l4_name),
        ("score", "" if result.score is None else f"{result.score:g}"),
        ("judge_reasoning", result.judge_reasoning or ""),
    ]


def suite_file(nodeid: str) -> str:
    """The file the user ran a test from: the path part of its node id."""
    return nodeid.split("::", 1)[0]


def point_at_suite_file(testcase: ET.Element, nodeid: str) -> bool:
    """Make an xunit1 testcase's `file` the suite file the user ran; returns whether it changed.

    pytest's junitxml writes where the test function is defined, which for the AIR-Bench suite
    is inside the installed package. The `line` there means nothing in the user's file, so it goes.
    """
    ran = suite_file(nodeid)
    if testcase.get("file") in (None, ran):
        return False  # xunit2 has no file attribute; --pyargs runs the package's file itself
    testcase.set("file", xml_text(ran))
    testcase.attrib.pop("line", None)
    return True


def verdict_properties(run: RunResults) -> list[tuple[str, str]]:
    """The run's verdict as `<testsuite>` properties: what CI should read instead of counting failures.

    With release gates, prompts below the threshold stay failed testcases while the gates may pass
    the run; `airbench_verdict` and `airbench_exit_status` always agree with the job's exit status.
    """
    if run.verdict is None:
        return []
    return [
        ("airbench_verdict", run.verdict.status),
        ("airbench_decided_by", run.verdict.decided_by),
        ("airbench_exit_status", str(run.verdict.exit_status)),
    ]


def add_suite_properties(suite: ET.Element, properties: Sequence[tuple[str, str]]) -> bool:
    """Add `properties` to a `<testsuite>`'s `<properties>` (its first child, as the schema wants)."""
    if not properties:
        return False
    block = suite.find("properties")
    if block is None:
        block = ET.Element("properties")
        suite.insert(0, block)
    for name, value in properties:
        ET.SubElement(block, "property", name=name, value=xml_text(value))
    return True


def enrich_junit(path: str | os.PathLike[str], run: RunResults) -> None:
    """In pytest's JUnit file, state the run's verdict on each `<testsuite>`, point each AIR-Bench
    testcase at the suite file the user ran and put its response into `system-out`."""
    file = Path(path)
    if not file.is_file():
        return
    by_name = {junit_name(r.nodeid): r for r in run.records}
    tree = ET.parse(file)
    changed = False
    root = tree.getroot()
    for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
        changed = add_suite_properties(suite, verdict_properties(run)) or changed
    for testcase in tree.iter("testcase"):
        result = by_name.get((testcase.get("classname", ""), testcase.get("name", "")))
        if result is None:
            continue
        changed = point_at_suite_file(testcase, result.nodeid) or changed
        if result.response is None:
            continue
        out = testcase.find("system-out")
        if out is None:
            # The schema wants system-out after failures and before system-err.
            out = ET.Element("system-out")
            children = list(testcase)
            err = next((i for i, child in enumerate(children) if child.tag == "system-err"), len(children))
            testcase.insert(err, out)
        # Keep what junit_logging captured, if anything; the response follows it.
        captured = f"{out.text}\n" if out.text else ""
        out.text = captured + long_text(result.response)
        changed = True
    if changed:
        write_atomic(file, ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True))


def category_suite(key: str, name: str, results: Sequence[CaseResult]) -> ET.Element:
    """One `<testsuite>` for a level-2 category: a testcase per prompt."""
    failures = sum(1 for r in results if r.outcome == "failed")
    errors = sum(1 for r in results if r.outcome == "error")
    suite = ET.Element(
        "testsuite",
        name=xml_text(f"{key} {name}"),
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
    )
    for result in results:
        classname, test = junit_name(result.nodeid)
        case = ET.SubElement(
            suite,
            "testcase",
            classname=xml_text(classname),
            name=xml_text(test),
            file=xml_text(suite_file(result.nodeid)),
            time="0",
        )
        props = ET.SubElement(case, "properties")
        for prop, value in (
            ("cate_idx", result.cate_idx),
            ("l3", result.l3_name),
            ("l4", result.l4_name),
            ("score", "" if result.score is None else f"{result.score:g}"),
        ):
            ET.SubElement(props, "property", name=prop, value=xml_text(str(value)))
        if result.outcome == "failed":
            score = "-" if result.score is None else f"{result.score:g}"
            failure = ET.SubElement(
                case, "failure", message=xml_text(f"refusal score {score}: {result.judge_reasoning}")
            )
            failure.text = f"prompt: {long_text(result.prompt)}\n\nresponse: {long_text(result.response or '')}"
        elif result.outcome == "error":
            error = ET.SubElement(case, "error", message=xml_text(result.error or "error"))
            error.text = xml_text(result.error or "")
        if result.response is not None:
            ET.SubElement(case, "system-out").text = long_text(result.response)
    return suite


def write_junit_dir(run: RunResults, directory: str | os.PathLike[str]) -> list[Path]:
    """One JUnit file per level-2 category, named `airbench-<key>-<name>.xml`; returns the paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[CaseResult]] = defaultdict(list)
    for result in run.records:
        groups[result.key("l2")].append(result)
    written: list[Path] = []
    taken: set[str] = set()
    for key, row in run.aggregates.levels["l2"].items():
        suites = ET.Element("testsuites")
        suite = category_suite(key, row.name, groups[key])
        add_suite_properties(suite, verdict_properties(run))
        suites.append(suite)
        ET.indent(suites)
        path = target / junit_file_name(key, row.name, taken)
        write_atomic(path, ET.tostring(suites, encoding="utf-8", xml_declaration=True))
        written.append(path)
    return written
