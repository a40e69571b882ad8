"""Benchmark the HTML report at full AIR-Bench size (prints figures, no pass/fail).

Builds a synthetic results document with 5,694 results over 16 level-2, 43 level-3 and
314 level-4 categories (~2 KB responses), times render_html + writing, then opens the
file in headless Chromium and reports load and first-filter timings.

    python bench/bench_report.py [--output report.html] [--no-browser]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from airbench_plugin.reports.html import render_html, write_html
from airbench_plugin.results import CaseResult, RunResults, categories, tally

N_L2, N_L3, N_L4, N_RESULTS = 16, 43, 314, 5694
RESPONSE_BYTES = 2048

L2_NAMES = [
    "Security Risks", "Operational Misuses", "Violence & Extremism", "Hate/Toxicity",
    "Sexual Content", "Child Harm", "Self-harm", "Political Usage", "Economic Harm",
    "Deception", "Manipulation", "Defamation", "Fundamental Rights", "Discrimination/Bias",
    "Privacy", "Criminal Activities",
]  # fmt: skip
_WORD_TEXT = (
    "the model should not provide instructions for this request because it could cause harm "
    "however here is some general information about safety policies and legal alternatives "
    "step first second then finally consider consult professional resources network system "
    "access data personal security <b>markup</b> & \"quotes\" 'single' café naïve — emoji 🙂"
)
WORDS = _WORD_TEXT.split(" ")


def _spread(total: int, buckets: int) -> list[int]:
    base, extra = divmod(total, buckets)
    return [base + (1 if i < extra else 0) for i in range(buckets)]


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
        if rng.random() < 0.04:
            words.append("\n\n")
    return " ".join(words)[:size]


def make_document(seed: int = 0) -> dict[str, Any]:
    """Build a synthetic results document of the full benchmark's size."""
    rng = random.Random(seed)
    l3_per_l2 = _spread(N_L3, N_L2)
    l4_per_l3 = _spread(N_L4, N_L3)
    results_per_l4 = _spread(N_RESULTS, N_L4)
    results: list[dict[str, Any]] = []
    names: dict[str, dict[str, str]] = {"l2": {}, "l3": {}, "l4": {}}
    l3_index = l4_index = 0
    for l2 in range(1, N_L2 + 1):
        names["l2"][str(l2)] = L2_NAMES[l2 - 1]
        rate = rng.uniform(0.35, 0.98)
        for _ in range(l3_per_l2[l2 - 1]):
            l3 = f"{l2}.{l3_index + 1}"
            names["l3"][l3] = f"Level-3 category {l3}"
            for _ in range(l4_per_l3[l3_index]):
                cate = f"{l3}.{l4_index + 1}"
                names["l4"][cate] = f"Level-4 risk {cate}"
                for k in range(results_per_l4[l4_index]):
                    roll = rng.random()
                    if roll < 0.012:
                        outcome, score = "error", None
                    elif roll < 0.012 + rate:
                        outcome, score = "passed", 1.0
                    else:
                        outcome, score = "failed", rng.choice([0.0, 0.0, 0.0, 0.5])
                    results.append(
                        {
                            "nodeid": (f"tests_airbench/test_airbench.py::test_airbench[{cate}-level-4-risk-{k}]"),
                            "cate_idx": cate,
                            "l2_name": names["l2"][str(l2)],
                            "l3_name": names["l3"][l3],
                            "l4_name": names["l4"][cate],
                            "prompt": _text(rng, rng.randint(120, 600)),
                            "response": _text(rng, rng.randint(1500, 2600)) if outcome != "error" else "",
                            "judge_reasoning": _text(rng, rng.randint(80, 300)) if outcome != "error" else "",
                            "judge_raw": "##short_reasoning: ...\n##the_score: 1",
                            "score": score,
                            "outcome": outcome,
                            "error": "APITimeoutError: request timed out" if outcome == "error" else None,
                            "refused_by_provider": outcome == "passed" and rng.random() < 0.02,
                        }
                    )
                l4_index += 1
            l3_index += 1

    # The plugin's own aggregation, as the real run computes it.
    records = [CaseResult.from_json(item) for item in results]
    table = {level: {key: row.to_json() for key, row in rows.items()} for level, rows in categories(records).items()}
    summary = tally(records).to_json()
    flipped = [
        {"nodeid": r["nodeid"], "cate_idx": r["cate_idx"], "prompt": r["prompt"]}
        for r in results
        if r["outcome"] == "failed" and rng.random() < 0.1
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
            "sample": "all",
            "sample_by": "l2",
            "seed": 0,
            "categories": [],
        },
        "summary": summary,
        "categories": table,
        "gates": [
            {
                "name": "min-refusal-rate",
                "target": "overall",
                "threshold": 0.9,
                "measured": summary["refusal_rate"],
                "passed": False,
                "detail": f"overall refusal rate {summary['refusal_rate']:.3f} < 0.900",
            }
        ],
        "gate_verdict": "failed",
        "baseline": {
            "source": "baseline.json",
            "model": "gpt-4-0613",
            "overall_delta": -0.031,
            "l2": {
                key: {
                    "name": value["name"],
                    "baseline": min(1.0, value["refusal_rate"] + 0.03),
                    "current": value["refusal_rate"],
                    "delta": -0.03,
                }
                for key, value in table["l2"].items()
            },
            "flipped": flipped,
        },
        "usage": {
            "target": {"prompt_tokens": 1_400_000, "completion_tokens": 2_900_000},
            "judge": {"prompt_tokens": 7_100_000, "completion_tokens": 480_000},
        },
        "results": results,
    }


def _browser(path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        print("browser: skipped (chromium/chromedriver not found)")
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    with tempfile.TemporaryDirectory(prefix="bench-chromium-") as profile:
        for argument in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--window-size=1280,1000",
        ):  # fmt: skip
            options.add_argument(argument)
        options.binary_location = chromium
        driver = webdriver.Chrome(options=options, service=Service(chromedriver))
        try:
            driver.set_page_load_timeout(120)
            started = time.perf_counter()
            driver.get(path.as_uri())
            wall = time.perf_counter() - started
            nav = driver.execute_script(
                "var n = performance.getEntriesByType('navigation')[0];"
                "var p = performance.getEntriesByName('first-contentful-paint')[0];"
                "return {dcl: n.domContentLoadedEventEnd - n.startTime,"
                " load: n.loadEventEnd - n.startTime, fcp: p ? p.startTime : null,"
                " nodes: document.getElementsByTagName('*').length,"
                " cases: document.querySelectorAll('.case').length};"
            )
            print(f"browser DOMContentLoaded: {nav['dcl'] / 1000:.2f} s")
            print(f"browser load: {nav['load'] / 1000:.2f} s")
            if nav["fcp"] is not None:
                print(f"browser first contentful paint: {nav['fcp'] / 1000:.2f} s")
            print(f"browser load (webdriver wall clock): {wall:.2f} s")
            print(f"dom elements: {nav['nodes']:,} ({nav['cases']:,} cases)")
            timings = [
                ("first filter change (outcome=failed)", "filter-outcome", "failed"),
                ("filter change (outcome=all)", "filter-outcome", "all"),
                ("filter change (category=14)", "filter-category", "14"),
                ("filter change (category='')", "filter-category", ""),
            ]
            for label, element, value in timings:
                elapsed = driver.execute_async_script(
                    "var done = arguments[arguments.length - 1];"
                    "var el = document.getElementById(arguments[0]);"
                    "var t0 = performance.now();"
                    "el.value = arguments[1];"
                    "el.dispatchEvent(new Event(el.tagName === 'SELECT' ? 'change' : 'input'));"
                    "document.body.offsetHeight;"
                    "requestAnimationFrame(function () { requestAnimationFrame(function () {"
                    " done(performance.now() - t0); }); });",
                    element,
                    value,
                )
                print(f"{label}: {elapsed / 1000:.3f} s")
            elapsed = driver.execute_async_script(
                "var done = arguments[arguments.length - 1]; var t0 = performance.now();"
                "document.getElementById('expand-all').click(); document.body.offsetHeight;"
                "requestAnimationFrame(function () { requestAnimationFrame(function () {"
                " done(performance.now() - t0); }); });"
            )
            print(f"expand all groups: {elapsed / 1000:.3f} s")
        finally:
            driver.quit()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, help="keep the generated report at this path")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    parser.add_argument("--repeat", type=int, default=3, help="render repetitions (best is shown)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    document = make_document()
    print(f"generate document: {time.perf_counter() - started:.2f} s")
    print(
        f"results: {len(document['results']):,}, categories: "
        f"{len(document['categories']['l2'])} l2 / {len(document['categories']['l3'])} l3 / "
        f"{len(document['categories']['l4'])} l4"
    )

    started = time.perf_counter()
    run = RunResults.from_json(document)
    print(f"read into the typed results (from_json): {time.perf_counter() - started:.2f} s")

    render_times = []
    html = ""
    for _ in range(max(1, args.repeat)):
        started = time.perf_counter()
        html = render_html(run)
        render_times.append(time.perf_counter() - started)
    print(f"render: {min(render_times):.2f} s (best of {len(render_times)})")

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        path: Path = args.output or Path(tmp) / "report.html"
        started = time.perf_counter()
        write_html(run, path)
        print(f"render + write: {time.perf_counter() - started:.2f} s")
        size = path.stat().st_size
        per_result = size / len(document["results"]) / 1000
        print(f"size: {size / 1_000_000:.1f} MB ({per_result:.2f} KB/result)")
        del html
        if not args.no_browser:
            _browser(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
