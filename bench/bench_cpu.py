#!/usr/bin/env python
"""CPU per call: the plugin against a bare `AsyncOpenAI` loop, in one run, on the same loopback server.

    .venv/bin/python bench/bench_cpu.py                      # 2,000 prompts, concurrency 64, 0.2 s per call
    .venv/bin/python bench/bench_cpu.py --prompts 500 --transport aiohttp

Both sides make the same calls to the same asyncio server (`bench/loopback.py`, its own process,
TCP_NODELAY): per prompt, the prompt to the model under test and then the filled judge template to
the judge, `--concurrency` calls in flight. The bare loop is what a user would write with the SDK:
`client.chat.completions.create` under an `asyncio.Semaphore`. The plugin runs as
`pytest --airbench-sample all --airbench-no-cache --airbench-concurrency C`, everything included
(start-up, dataset load, collection, 2,000 tests, the JSON results), twice: the first run reads the
dataset through `datasets`, every later one reads the parsed copy that run kept (`rowcache`).

Printed: each side's wall time and CPU seconds per call (its process's user + system time over its
calls), and the plugin's wall time over the bare loop's: the goal is at most 1.1. With
`--transport aiohttp` the bare loop uses the SDK's `DefaultAioHttpClient` (`pip install openai[aiohttp]`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from bench_throughput import write_dataset  # noqa: E402
from loopback import LoopbackServer  # noqa: E402

from tests.chat_server import JUDGE_MODEL, TARGET_MODEL  # noqa: E402


def cases(prompts_csv: Path, judge_csv: Path) -> list[tuple[str, str]]:
    """(prompt, judge template) per prompt, in file order."""
    with judge_csv.open(encoding="utf-8") as handle:
        templates = {row["cate-idx"]: row["judge_prompt"] for row in csv.DictReader(handle)}
    with prompts_csv.open(encoding="utf-8") as handle:
        return [(row["prompt"], templates[row["cate-idx"]]) for row in csv.DictReader(handle)]


async def bare_loop(url: str, work: list[tuple[str, str]], concurrency: int, transport: str) -> int:
    """The SDK as a user would drive it: one call to the model, then one to the judge, per prompt."""
    import openai

    http_client: Any = openai.DefaultAioHttpClient() if transport == "aiohttp" else None
    client = openai.AsyncOpenAI(api_key="dummy", base_url=url, max_retries=0, http_client=http_client)
    slots = asyncio.Semaphore(concurrency)
    calls = 0

    async def one(prompt: str, template: str) -> None:
        nonlocal calls
        async with slots:
            answer = await client.chat.completions.create(
                model=TARGET_MODEL, messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=512
            )
        text = answer.choices[0].message.content or ""
        judge_prompt = template.replace("{{QUESTION}}", prompt).replace("{{ANSWER}}", text)
        async with slots:
            await client.chat.completions.create(
                model=JUDGE_MODEL, messages=[{"role": "user", "content": judge_prompt}], temperature=0, max_tokens=64
            )
        calls += 2

    await asyncio.gather(*(one(prompt, template) for prompt, template in work))
    await client.close()
    return calls


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_bare(url: str, prompts: Path, judge: Path, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--bare", url, "--prompts-csv", str(prompts), "--judge-csv", str(judge)]
    cmd += ["--concurrency", str(args.concurrency), "--transport", args.transport]
    before = child_cpu()
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall": wall, "loop": result["wall"], "calls": result["calls"], "cpu": child_cpu() - before}


def run_plugin(url: str, directory: Path, prompts: Path, judge: Path, args: argparse.Namespace) -> dict[str, float]:
    out = directory / "r.json"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_suite.py"]
    cmd += [f"--airbench-model={TARGET_MODEL}", f"--airbench-base-url={url}", f"--airbench-judge-model={JUDGE_MODEL}"]
    cmd += [f"--airbench-judge-base-url={url}", f"--airbench-dataset={prompts}", f"--airbench-judge-prompts={judge}"]
    cmd += ["--airbench-sample=all", "--airbench-no-cache", f"--airbench-concurrency={args.concurrency}"]
    cmd += [f"--airbench-json={out}", *args.pytest_args]
    env = {**os.environ, "OPENAI_API_KEY": "dummy", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env["AIRBENCH_ROWS_CACHE"] = str(directory / "rows")  # empty for the first run, filled by it
    before = child_cpu()
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=directory, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    summary = json.loads(out.read_text())["summary"] if out.exists() else {}
    if done.returncode != 0 or summary.get("n") != args.prompts:
        print(done.stdout[-2000:], done.stderr[-2000:])
    return {"wall": wall, "calls": 2 * args.prompts, "cpu": child_cpu() - before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--transport", choices=("default", "aiohttp"), default="default")
    parser.add_argument("--bare", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--prompts-csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--judge-csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments for the plugin's run (after --)")
    args = parser.parse_args(argv)
    if args.bare:  # the bare loop's own process
        work = cases(args.prompts_csv, args.judge_csv)
        started = time.monotonic()
        calls = asyncio.run(bare_loop(args.bare, work, args.concurrency, args.transport))
        print(json.dumps({"wall": time.monotonic() - started, "calls": calls}))
        return 0
    directory = Path(tempfile.mkdtemp(prefix="airbench-cpu-"))
    prompts, judge, _shape = write_dataset(directory, args.prompts, max(1, args.prompts // 18))
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "test_suite.py").write_text("from airbench_plugin.suite.test_airbench import test_airbench\n")
    ideal = 2 * args.prompts * args.latency / args.concurrency
    print(f"{args.prompts} prompts, concurrency {args.concurrency}, latency {args.latency:g} s: ideal {ideal:.1f} s")
    print(f"machine load before: {os.getloadavg()[0]:.1f}")
    with LoopbackServer(latency=args.latency) as server:
        bare = run_bare(server.v1_url, prompts, judge, args)
        first = run_plugin(server.v1_url, directory, prompts, judge, args)
        later = run_plugin(server.v1_url, directory, prompts, judge, args)
    print(
        f"bare AsyncOpenAI loop ({args.transport} transport): wall {bare['wall']:.1f} s (loop alone "
        f"{bare['loop']:.1f} s), CPU {1000 * bare['cpu'] / bare['calls']:.2f} ms per call"
    )
    for label, plugin in (
        ("first run, the dataset read through `datasets`", first),
        ("every later run, the dataset's parsed copy", later),
    ):
        print(
            f"plugin (pytest, everything included; {label}): wall {plugin['wall']:.1f} s, CPU "
            f"{1000 * plugin['cpu'] / plugin['calls']:.2f} ms per call; ratio to the bare loop "
            f"{plugin['wall'] / bare['wall']:.2f} (goal <= 1.1)"
        )
    print(
        f"server CPU {server.stats['cpu']:.1f} s for {server.stats['requests']} requests; "
        f"machine load after: {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
