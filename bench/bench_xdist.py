#!/usr/bin/env python
"""What `-n` costs on a cached run: the same 80 prompts, answered from the cache, with and without xdist.

    .venv/bin/python bench/bench_xdist.py                  # -n 2 and -n 4 against no -n
    .venv/bin/python bench/bench_xdist.py --workers 2 4 8

A first run fills the response cache (loopback server, `bench/loopback.py`); every timed run then
answers all 80 prompts from the cache, so what is measured is pytest, the plugin and xdist: start-up,
the dataset load (the controller only: workers receive the sampled cases through `workerinput`),
collection and reporting. Each configuration runs `--repeat` times; the best wall time is printed,
and its ratio to the run without `-n` (the goal for `-n 4` is at most 2). The same number of empty
tests is then timed the same way: the floor that pytest, the installed plugins and xdist's worker
start-up set on this machine, whatever the plugin does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from bench_throughput import write_dataset  # noqa: E402
from loopback import LoopbackServer  # noqa: E402

from tests.chat_server import JUDGE_MODEL, TARGET_MODEL  # noqa: E402


def run(directory: Path, url: str, prompts: Path, judge: Path, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_suite.py"]
    cmd += [f"--airbench-model={TARGET_MODEL}", f"--airbench-base-url={url}", f"--airbench-judge-model={JUDGE_MODEL}"]
    cmd += [f"--airbench-judge-base-url={url}", f"--airbench-dataset={prompts}", f"--airbench-judge-prompts={judge}"]
    cmd += ["--airbench-sample=all", f"--airbench-cache={directory / 'cache'}", *extra]
    env = {**os.environ, "OPENAI_API_KEY": "dummy", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env["AIRBENCH_ROWS_CACHE"] = str(directory / "rows")  # filled by the first run, like the response cache
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=directory, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"pytest {' '.join(extra)} exited {done.returncode}")
    return wall


def floor(directory: Path, prompts: int, extra: list[str]) -> float:
    """The same number of empty tests, with every installed pytest plugin: what pytest and xdist cost."""
    (directory / "test_empty.py").write_text(
        f"import pytest\n\n\n@pytest.mark.parametrize('i', range({prompts}))\ndef test_empty(i):\n    pass\n"
    )
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_empty.py", *extra]
    started = time.monotonic()
    subprocess.run(cmd, cwd=directory, capture_output=True, check=True)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=80)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="airbench-xdist-"))
    prompts, judge, _shape = write_dataset(directory, args.prompts, max(1, args.prompts // 5))
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "test_suite.py").write_text("from airbench_plugin.suite.test_airbench import test_airbench\n")
    print(f"machine load before: {os.getloadavg()[0]:.1f}")
    with LoopbackServer(latency=0.05) as server:
        run(directory, server.v1_url, prompts, judge, [])  # fills the cache
        base = min(run(directory, server.v1_url, prompts, judge, []) for _ in range(args.repeat))
        print(f"{args.prompts} cached prompts, no -n: wall {base:.1f} s")
        for workers in args.workers:
            wall = min(run(directory, server.v1_url, prompts, judge, ["-n", str(workers)]) for _ in range(args.repeat))
            print(f"{args.prompts} cached prompts, -n {workers}: wall {wall:.1f} s, ratio {wall / base:.2f} to no -n")
    empty = directory / "empty"
    empty.mkdir()
    (empty / "pytest.ini").write_text("[pytest]\n")
    bare = min(floor(empty, args.prompts, []) for _ in range(args.repeat))
    for workers in args.workers:
        wall = min(floor(empty, args.prompts, ["-n", str(workers)]) for _ in range(args.repeat))
        print(
            f"floor: {args.prompts} empty tests, -n {workers}: wall {wall:.1f} s against {bare:.1f} s without -n, "
            f"ratio {wall / bare:.2f} (pytest, the installed plugins and xdist's workers alone)"
        )
    stats = server.stats
    print(f"server: {stats['requests']} requests in all (the first run's {2 * args.prompts}; cached runs send none)")
    print(f"machine load after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
