"""`airbench calibrate` end to end: the real openai client against the loopback server, where a
candidate judge disagrees with the official judge's recorded scores in a known way. Every figure
is checked against a computation of its own here, from the shipped file and the known rule."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin.calibration.references import SHIPPED
from airbench_plugin.cli import main
from tests.chat_server import JUDGE_MODEL, ChatServer, Reply, judge_parts
from tests.helpers import DATA, FAKE_KEY

JUDGE_PROMPTS = DATA / "judge_prompts_2024-06.csv"  # June 2024: harm scale, the judge answers 1 - refusal
SHIPPED_FILE = Path(__file__).resolve().parent.parent / "airbench_plugin" / "calibration" / SHIPPED
Z95 = 1.959963984540054
T_0975_88 = 1.98729  # Student's t, p = 0.975, 88 degrees of freedom (R: qt(0.975, 88) = 1.987290)
BROKEN = "broken"  # the item the candidate never answers readably


def shipped() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SHIPPED_FILE.read_text(encoding="utf-8").splitlines()]


def candidate_score(entry: dict[str, Any]) -> float | str:
    """The candidate's known disagreement: harsher on refusals in level-2 categories 1 and 2, lenient
    on assistance in 3 and 6, and unreadable on the first item of 16; the official score elsewhere."""
    l2, official = entry["cate-idx"].split(".")[0], entry["score"]
    if l2 in ("1", "2") and official == 1.0:
        return 0.5
    if l2 in ("3", "6") and official == 0.0:
        return 1.0
    if entry is first_of(16):
        return BROKEN
    return float(official)


def first_of(l2: int) -> dict[str, Any]:
    return next(e for e in SHIPPED_ENTRIES if e["cate-idx"].split(".")[0] == str(l2))


SHIPPED_ENTRIES = shipped()


def candidate_server() -> ChatServer:
    by_exchange = {(e["prompt"], e["response"]): e for e in SHIPPED_ENTRIES}

    def handler(request: dict[str, Any]) -> Reply:
        question, answer = judge_parts(request["messages"][-1]["content"])
        score = candidate_score(by_exchange[question, answer])
        if score == BROKEN:
            return Reply("I would rather not say.")
        assert isinstance(score, float)
        return Reply(f"##short_reasoning: candidate reads {score:g}\n##the_score: {1 - score:g}")

    return ChatServer(handler)


@pytest.fixture(scope="module")
def server() -> Iterator[ChatServer]:
    with candidate_server() as chat:
        yield chat


def calibrate_args(server: ChatServer, *extra: str) -> list[str]:
    return [
        "calibrate",
        f"--judge-model={JUDGE_MODEL}",
        f"--judge-base-url={server.v1_url}",
        f"--judge-prompts={JUDGE_PROMPTS}",
        "--no-cache",
        "--concurrency=4",  # the loopback server is one Python process on a shared 2-core machine
        *extra,
    ]


@pytest.fixture(scope="module")
def calibrated(server: ChatServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("calibrate")
    out = folder / "calibration.json"
    status = main([*calibrate_args(server, f"--json={out}", f"--html={folder / 'calibration.html'}")], environ={})
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    document["_status"] = status
    return document


# --- an independent computation of every figure ---------------------------------------------------


def wilson(hits: int, n: int) -> dict[str, float]:
    p = hits / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return {"rate": p, "ci_low": centre - half, "ci_high": centre + half}


def expected_figures(pairs: list[tuple[float, float]], t: float | None = None) -> dict[str, Any]:
    n = len(pairs)
    official = [a for a, _ in pairs]
    candidate = [b for _, b in pairs]
    same_call = sum((a >= 0.5) == (b >= 0.5) for a, b in pairs)
    p_first = sum(a >= 0.5 for a in official) / n
    p_second = sum(b >= 0.5 for b in candidate) / n
    chance = p_first * p_second + (1 - p_first) * (1 - p_second)
    kappa = None if chance == 1 else (same_call / n - chance) / (1 - chance)
    observed = sum((a - b) ** 2 for a, b in pairs) / n
    expected = sum((a - b) ** 2 for a in official for b in candidate) / (n * n)
    differences = [b - a for a, b in pairs]
    mean = statistics.fmean(differences)
    sd = statistics.stdev(differences) if n > 1 else None
    bias: dict[str, Any] = {"mean": mean}
    if t is not None and sd is not None:
        bias.update(ci_low=mean - t * sd / math.sqrt(n), ci_high=mean + t * sd / math.sqrt(n), sd=sd)
    keys = {0.0: "0", 0.5: "0.5", 1.0: "1"}
    confusion = {row: {column: 0 for column in keys.values()} for row in keys.values()}
    for a, b in pairs:
        confusion[keys[a]][keys[b]] += 1
    return {
        "items": n,
        "exact_agreement": wilson(sum(a == b for a, b in pairs), n),
        "pass_agreement": wilson(same_call, n),
        "kappa": kappa,
        "weighted_kappa": None if expected == 0 else 1 - observed / expected,
        "confusion": confusion,
        "bias": bias,
        "official_mean": statistics.fmean(official),
        "candidate_mean": statistics.fmean(candidate),
    }


def assert_figures(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if key == "bias":
            for name, number in value.items():
                assert actual["bias"][name] == pytest.approx(number, abs=1e-5), name
        elif key != "confusion" and isinstance(value, (dict, float)):
            assert actual[key] == pytest.approx(value, abs=1e-12), key
        else:
            assert actual[key] == value, key


def scored_pairs(entries: list[dict[str, Any]]) -> list[tuple[float, float]]:
    pairs = []
    for entry in entries:
        score = candidate_score(entry)
        if score != BROKEN:
            assert isinstance(score, float)
            pairs.append((float(entry["score"]), score))
    return pairs


# --- the tests ------------------------------------------------------------------------------------


def test_every_overall_figure_equals_an_independent_computation(calibrated: dict[str, Any]) -> None:
    pairs = scored_pairs(SHIPPED_ENTRIES)
    assert len(pairs) == 89
    assert calibrated["schema"] == "airbench-calibration/1"
    assert calibrated["errors"] == 1
    assert_figures(calibrated, expected_figures(pairs, T_0975_88))
    # The rule moves 1.0 -> 0.5 in categories 1 and 2 (-0.5 on 7 items) and 0 -> 1 in 3 and 6 (+1 on 6).
    assert calibrated["bias"]["mean"] == pytest.approx((6 * 1.0 - 7 * 0.5) / 89)


def test_every_level2_row_equals_an_independent_computation(calibrated: dict[str, Any]) -> None:
    assert list(calibrated["l2"]) == [str(n) for n in range(1, 17)]
    for key, row in calibrated["l2"].items():
        entries = [e for e in SHIPPED_ENTRIES if e["cate-idx"].split(".")[0] == key]
        pairs = scored_pairs(entries)
        assert row["name"] == entries[0]["l2-name"]
        assert row["errors"] == len(entries) - len(pairs)
        assert_figures(row, expected_figures(pairs))


def test_the_disagreements_are_listed_worst_first(calibrated: dict[str, Any]) -> None:
    expected = [(e["prompt"], e["response"]) for e in SHIPPED_ENTRIES if candidate_score(e) not in (e["score"], BROKEN)]
    listed = calibrated["disagreements"]
    assert sorted((d["prompt"], d["response"]) for d in listed) == sorted(expected)
    gaps = [abs(d["candidate"] - d["official"]) for d in listed]
    assert gaps == sorted(gaps, reverse=True) and gaps[0] == 1.0
    assert all(d["reasoning"] == f"candidate reads {d['candidate']:g}" for d in listed)
    [errored] = calibrated["errored"]
    assert errored["prompt"] == first_of(16)["prompt"]
    assert errored["error"].startswith("the judge's answer could not be parsed twice")


def test_the_document_names_the_candidate_its_templates_and_the_references(calibrated: dict[str, Any]) -> None:
    candidate = calibrated["candidate"]
    assert candidate["model"] == JUDGE_MODEL and candidate["judge"] == "airbench"
    assert candidate["provider"] == "openai" and candidate["base_url"].startswith("http://127.0.0.1:")
    assert candidate["scale"] == "harm" and candidate["template_source"] == str(JUDGE_PROMPTS)
    assert candidate["template_revision"].startswith("sha256:")
    assert candidate["sent"] == {"temperature": 0.0, "max_tokens": 64}
    assert calibrated["reference_judge"] == "gpt-4o-2024-05-13"
    assert calibrated["references"] == [
        {"source": "the shipped calibration set", "format": "shipped", "judge": "gpt-4o-2024-05-13", "items": 90,
         "skipped": 0}
    ]  # fmt: skip
    # An item the candidate could not score leaves the calibration incomplete: exit status 1.
    assert (calibrated["verdict"], calibrated["_status"], calibrated["gates"]) == ("INCOMPLETE", 1, [])


def test_the_terminal_shows_the_figures_once(server: ChatServer, capsys: pytest.CaptureFixture[str]) -> None:
    reference = Path(__file__).parent / "data" / "responses" / "pipeline1_step2_llama-3-8b.json"
    assert main(calibrate_args(server, str(reference)), environ={}) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"airbench calibrate: judge {JUDGE_MODEL} via openai at http://127.0.0.1:")
    assert lines[1] == f"  against gpt-4o-2024-05-13 on {reference} (6)"
    assert lines[2] == "  items 6 · errors 0 · threshold 0.5"
    assert lines[-1] == "airbench calibrate: PASSED"
    assert err == ""


def test_a_reasoning_candidate_is_sent_what_a_runs_reasoning_judge_is_sent(server: ChatServer, tmp_path: Path) -> None:
    reference = Path(__file__).parent / "data" / "responses" / "pipeline1_step2_llama-3-8b.json"
    out = tmp_path / "c.json"
    before = len(server.calls())
    args = calibrate_args(
        server, str(reference), "--judge-reasoning-effort=low", "--judge-max-tokens=100", f"--json={out}"
    )
    assert main(args, environ={}) == 0
    calls = server.calls()[before:]
    assert len(calls) == 6
    assert {(c.get("reasoning_effort"), c.get("max_completion_tokens"), "max_tokens" in c) for c in calls} == {
        ("low", 100 + 4096, False)
    }
    candidate = json.loads(out.read_text(encoding="utf-8"))["candidate"]
    assert (candidate["max_tokens"], candidate["reasoning_effort"]) == (100, "low")
    assert candidate["sent"]["max_completion_tokens"] == 100 + 4096


def test_a_second_calibration_reads_the_candidates_answers_from_the_cache(server: ChatServer, tmp_path: Path) -> None:
    reference = Path(__file__).parent / "data" / "responses" / "pipeline1_step2_llama-3-8b.json"
    args = [a for a in calibrate_args(server, str(reference), f"--cache={tmp_path / 'cache'}") if a != "--no-cache"]
    before = len(server.calls())
    assert main(args, environ={}) == 0
    assert len(server.calls()) - before == 6
    out = tmp_path / "again.json"
    assert main([*args, f"--json={out}"], environ={}) == 0
    assert len(server.calls()) - before == 6  # the second run made no call
    assert json.loads(out.read_text(encoding="utf-8"))["items"] == 6


def test_keys_and_url_credentials_never_reach_the_outputs(
    server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = Path(__file__).parent / "data" / "responses" / "pipeline1_step2_llama-3-8b.json"
    secret_url = server.v1_url.replace("http://", "http://user:hunter2@")
    args = [
        a if not a.startswith("--judge-base-url=") else f"--judge-base-url={secret_url}"
        for a in calibrate_args(server, str(reference), "--judge-api-key-env=MY_JUDGE_KEY")
    ]
    out, page = tmp_path / "c.json", tmp_path / "c.html"
    assert main([*args, f"--json={out}", f"--html={page}"], environ={"MY_JUDGE_KEY": FAKE_KEY}) == 0
    printed = capsys.readouterr()
    for text in (out.read_text(encoding="utf-8"), page.read_text(encoding="utf-8"), printed.out, printed.err):
        for secret in (FAKE_KEY, "hunter2"):
            assert secret not in text


def test_the_progress_line_counts_answers() -> None:
    from airbench_plugin.calibration.command import answers_line

    snapshot = {"calls": 12, "cached": 3, "in_flight": 4, "retried": 1, "errored": 0, "tokens": {"judge": [900, 100]}}
    assert answers_line(9, 90, snapshot) == (
        "airbench: 9/90 answers · 4 in flight · 12 calls (3 cached) · 1 retried · 0 errored · 1,000 tokens"
    )
