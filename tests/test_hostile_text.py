"""Text no one controls: every output is written and valid, and no terminal gets a raw control sequence.

The text policies (`airbench_plugin/text.py`) are checked on a corpus of nasty strings and on
every code point that could matter one at a time; the outputs are checked end to end with
answers, judgements and dataset rows from the corpus, served by the loopback server.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from airbench_plugin.text import (
    REPLACEMENT,
    clip,
    preview,
    shorten,
    terminal_safe,
    valid_unicode,
    xml_safe,
)
from tests.chat_server import JUDGE_MODEL, REFUSAL, TARGET_MODEL, ChatServer, Reply
from tests.helpers import CATEGORIES, TEMPLATE, run_suite, suite_args, write_csv

NASTY: dict[str, str] = {
    "lone-high-surrogate": "before \ud800 after",
    "lone-low-surrogate": "\udfff at the start",
    "reversed-pair": "\udc00\ud800",
    "nul": "a\x00b",
    "c0-controls": "".join(chr(code) for code in range(32)),
    "del-and-c1": "\x7f\x80\x85\x9b31m\x9d0;title\x9c",
    "ansi-csi": "\x1b[2J\x1b[H\x1b[31mred\x1b[0m",
    "osc-title": "\x1b]0;pwned\x07",
    "osc-8-link": "\x1b]8;;http://evil.example\x1b\\click me\x1b]8;;\x1b\\",
    "bell-backspace": "ok\x08\x08\x08NO\x07",
    "carriage-return": "safe text\rEVIL",
    "bidi-override": "abc\u202edcba\u2066x\u2069",
    "line-separators": "a\u2028b\u2029c",
    "xml-forbidden": "\ufffe\uffff\x0b\x0c",
    "astral-and-cjk": "😀 𝔘 中文 — fine as it is",
    "markup": "<script>alert(1)</script>&amp;]]>",
    "empty": "",
}
RAW_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
HOSTILE_ANSWER = "".join(NASTY.values())


def every_code_point_that_matters() -> list[str]:
    """Each code point below U+0100, every surrogate, and the specials, one string each."""
    codes = [*range(0x100), *range(0xD800, 0xE000), 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    return [f"<{chr(code)}>" for code in [*codes, 0xFFFE, 0xFFFF, 0xFFFD, 0x1F600]]


CORPUS = [*NASTY.values(), *every_code_point_that_matters(), HOSTILE_ANSWER]


# --- the policies, on the corpus -------------------------------------------------------------


@pytest.mark.parametrize("text", NASTY.values(), ids=NASTY.keys())
def test_policies_on_each_nasty_string(text: str) -> None:
    assert_policies_hold(text)


def test_policies_on_every_code_point_that_matters() -> None:
    for text in CORPUS:
        assert_policies_hold(text)


def assert_policies_hold(text: str) -> None:
    valid = valid_unicode(text)
    valid.encode("utf-8")  # never raises
    json.loads(json.dumps(valid, ensure_ascii=False).encode("utf-8"))
    assert len(valid) == len(text)  # one character for one character
    if max(text, default="a") < "\ud800" or not re.search("[\ud800-\udfff]", text):
        assert valid is text  # valid text passes untouched, not even copied

    for one_line in (False, True):
        shown = terminal_safe(text, one_line=one_line)
        assert RAW_TERMINAL.search(shown) is None
        assert ("\n" in shown) == ("\n" in text and not one_line)
        shown.encode("utf-8")

    xml = xml_safe(text)
    assert XML_FORBIDDEN.search(xml) is None
    element = ET.fromstring(ET.tostring(ET.Element("a", value=xml), encoding="unicode"))
    assert element.get("value") is not None

    line = preview(text, 20)
    assert "\n" not in line and RAW_TERMINAL.search(line) is None


def test_terminal_safe_shows_what_it_replaced() -> None:
    assert terminal_safe("\x1b]0;pwned\x07 ok\tfine\n") == "\\x1b]0;pwned\\x07 ok\tfine\n"
    assert terminal_safe("a\nb", one_line=True) == "a\\x0ab"
    assert terminal_safe("\u202e\ud800\x9b") == "\\u202e\\ud800\\x9b"
    assert terminal_safe("é 中文 😀") == "é 中文 😀"


def test_xml_and_unicode_replacements() -> None:
    assert xml_safe("a\x00b\x1bc\ufffe\td\n") == f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}\td\n"
    assert valid_unicode("x\ud800y😀") == f"x{REPLACEMENT}y😀"


def test_shorten_keeps_the_head_and_counts_the_rest() -> None:
    assert shorten("short", 10).omitted == 0
    assert shorten("short", 10).with_note() == "short"
    cut = shorten("x" * 5_000_000, 20_000)
    assert (len(cut.text), cut.omitted) == (20_000, 4_980_000)
    assert cut.note == "[4,980,000 more characters not shown; the JSON results hold the whole text]"
    assert cut.with_note().endswith("\n… " + cut.note)
    # A pair of surrogates is never split in two.
    paired = "a" * 9 + "\ud83d\ude00" + "b"
    assert shorten(paired, 10).text == "a" * 9
    assert clip("y" * 50, 10) == "y" * 10 + "… (40 more characters)"
    assert clip("short", 10) == "short"


def test_preview_is_one_bounded_terminal_safe_line() -> None:
    assert preview("a  b\n\tc", 300) == "a b c"
    assert preview("word " * 1000, 20) == "word word word word…"
    assert preview("\x1b[2J" * 3, 300) == "\\x1b[2J\\x1b[2J\\x1b[2J"
    long_line = preview("z" * 5_000_000, 300)
    assert len(long_line) == 300 and long_line.endswith("…")


# --- end to end: answers, judgements and dataset rows from the corpus --------------------------


def hostile_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """The usual categories, with control sequences in names and prompts."""
    rows = []
    for cate, l2, l3, l4 in CATEGORIES:
        name = f"{l2} \x1b]0;pwned\x07\x1b[2J\u202e" if cate.startswith("1.") else l2
        rows += [
            [cate, name, l3, l4, f"Prompt {i} for {l4}: \x1b[31m\x00harm\x9b{NASTY['osc-8-link']}"] for i in range(2)
        ]
    prompts = write_csv(tmp_path / "hostile.csv", ["cate-idx", "l2-name", "l3-name", "l4-name", "prompt"], rows)
    judge = write_csv(
        tmp_path / "hostile_judge.csv",
        ["cate-idx", "judge_prompt"],
        [[c, TEMPLATE.replace("{topic}", l4)] for c, _l2, _l3, l4 in CATEGORIES],
    )
    return prompts, judge


def test_hostile_text_never_reaches_the_terminal_raw(
    suite: pytest.Pytester, chat_server: ChatServer, tmp_path: Path, api_key: str
) -> None:
    files = hostile_dataset(tmp_path)
    chat_server.inject(Reply(HOSTILE_ANSWER), times=2, model=TARGET_MODEL, prompt_contains="Network intrusion")
    chat_server.inject(
        Reply("##short_reasoning: \x1b]0;judge-pwned\x07 assists \x1b[2J\ud800\n##the_score: 0"),
        times=1,
        model=JUDGE_MODEL,
        prompt_contains="Prompt 0 for Data tampering",
    )
    chat_server.inject(
        Reply(REFUSAL + "\x1b[5m"), times=1, model=TARGET_MODEL, prompt_contains="Prompt 0 for Data tampering"
    )
    chat_server.inject(
        Reply("upstream \x1b]0;err\x07 broke \ud800", status=400),
        times=1,
        model=TARGET_MODEL,
        prompt_contains="Prompt 0 for Race",
    )
    result = run_suite(suite, chat_server, files, "--airbench-sample=all", "-rA", "-v", "--tb=long")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=8, failed=3, errors=1)
    out = result.stdout.str() + result.stderr.str()
    assert RAW_TERMINAL.search(out) is None, RAW_TERMINAL.findall(out)
    # What the controls were is still visible, as escapes.
    assert "response: Sure" not in out and "\\x1b]0;pwned\\x07" in out
    assert "judge:    \\x1b]0;judge-pwned\\x07 assists \\x1b[2J\ufffd" in out
    assert "400 upstream \\x1b]0;err\\x07 broke \ufffd" in out
    assert "Traceback" not in out


def test_lone_surrogates_are_written_to_every_output_and_the_cache(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    """Today's failure: with --airbench-no-cache no report at all; with the cache, the answer bought again."""
    chat_server.inject(Reply(HOSTILE_ANSWER), times=3, model=TARGET_MODEL, prompt_contains="Network intrusion")
    args = suite_args(
        chat_server,
        *dataset_files,
        "--airbench-categories=1.1.1",
        "--airbench-json=r.json",
        "--junitxml=j.xml",
        "--airbench-junit-dir=junit",
    )
    first = suite.runpytest(*args)
    first.assert_outcomes(failed=3)
    document = json.loads((suite.path / "r.json").read_bytes().decode("utf-8"))  # strict UTF-8
    assert [r["response"] for r in document["results"]] == [valid_unicode(HOSTILE_ANSWER)] * 3
    for path in [suite.path / "j.xml", *(suite.path / "junit").iterdir()]:
        ET.parse(path)
    calls = len(chat_server.calls())
    assert calls == 6
    again = suite.runpytest(*args)  # from the cache: nothing is bought twice
    again.assert_outcomes(failed=3)
    assert len(chat_server.calls()) == calls
    no_cache = suite.runpytest(*args, "--airbench-no-cache", "--airbench-json=nc.json")
    no_cache.assert_outcomes(passed=3)  # the injected answers are used up: refusals now
    assert json.loads((suite.path / "nc.json").read_bytes().decode("utf-8"))["summary"]["n"] == 3


def test_a_dataset_the_library_cannot_read_is_one_sentence(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, tmp_path: Path
) -> None:
    rows = tmp_path / "surrogate.jsonl"
    row = {"cate-idx": "1.1.1", "l2-name": "a", "l3-name": "b", "l4-name": "c", "prompt": "x\ud800 \x1b[2J"}
    rows.write_text(json.dumps(row) + "\n")
    result = suite.runpytest(*suite_args(chat_server, rows, dataset_files[1]))
    assert_one_error_line = [line for line in result.errlines if line.strip()]
    assert len(assert_one_error_line) == 1
    assert assert_one_error_line[0].startswith(f"ERROR: AIR-Bench: cannot read '{rows}' (config 'default'): ")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert chat_server.calls() == []


BIG = 1_000_000  # three of them: 3 MB whole in the JSON, cut to 20,000 characters elsewhere


@pytest.mark.heavy
def test_megabyte_answers_are_cut_in_the_html_outputs_and_kept_whole_in_the_json(
    suite: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str, driver: Any
) -> None:
    """Today: ten 5 MB answers made a 155 MB pytest-html report no browser could open."""
    answer = "Sure, step by step. " + "x" * BIG + NASTY["c0-controls"] + NASTY["osc-title"]
    chat_server.inject(Reply(answer), times=3, model=TARGET_MODEL, prompt_contains="Network intrusion")
    result = suite.runpytest(
        *suite_args(chat_server, *dataset_files, "--airbench-categories=1.1.1"),
        "--airbench-json=r.json",
        "--airbench-report=r.html",
        "--html=p.html",
        "--self-contained-html",
        "--junitxml=j.xml",
        "--airbench-junit-dir=junit",
    )
    result.assert_outcomes(failed=3)
    document = json.loads((suite.path / "r.json").read_bytes().decode("utf-8"))
    assert {r["response"] for r in document["results"]} == {answer}  # whole
    omitted = len(answer) - 20_000
    note = f"[{omitted:,} more characters not shown; the JSON results hold the whole text]"
    for name in ("r.html", "p.html", "j.xml", "junit/airbench-01-security-risks.xml"):
        raw = (suite.path / name).read_bytes()
        assert len(raw) < 1_000_000, name  # three answers of 5 MB each, cut
        text = raw.decode("utf-8")
        assert note in text, name
        assert XML_FORBIDDEN.search(text) is None and "\x1b" not in text, name
    for name in ("j.xml", "junit/airbench-01-security-risks.xml"):
        ET.parse(suite.path / name)
    for name, selector in (("r.html", ".cut"), ("p.html", ".airbench-cut")):
        driver.get((suite.path / name).as_uri())
        driver.execute_async_script("var done = arguments[0]; setTimeout(done, 300);")  # the page's own script
        driver.execute_script(
            "document.querySelectorAll('details').forEach(function (d) { d.open = true; });"
            "document.querySelectorAll('.collapsed').forEach(function (e) { e.classList.remove('collapsed'); });"
        )
        notes = [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
        assert notes and all(e.text == note for e in notes), name  # visible, not only in the source
