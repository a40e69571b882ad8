#!/usr/bin/env python
"""Rate-limit benchmark: the suite against a loopback server that enforces OpenAI's rate limit.

    .venv/bin/python bench/bench_rate_limits.py              # 1,000 prompts, 3,000 RPM per model, 0.2 s
    .venv/bin/python bench/bench_rate_limits.py --prompts 200

The server (`bench/loopback.py`, its own process) keeps a token bucket of `--rpm` requests per
minute for each model, holding one second's worth, like OpenAI's per-model limits: every answer
carries `x-ratelimit-*-requests` / `-tokens` headers and an empty bucket answers OpenAI's 429 body
with `retry-after-ms`. Each prompt is one call to the model under test and one to the judge.

Three runs, each printing the wall time of the whole pytest run and of its requests alone (from the
server's first request to its last answer: start-up and the dataset load are not paced), the ideal
`calls ÷ limit`, the ratios, the requests the server got, how many it answered 429 and the errored
prompts of the run's JSON:

1. default options (the plugin paces by the headers alone);
2. `--airbench-rpm RPM --airbench-judge-rpm RPM` (the account's limits given up front);
3. one bucket shared by both models (`--shared`), as when several workers or programs use one limit.
"""

from __future__ import annotations

import argparse
import json
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


def run(directory: Path, prompts: Path, judge: Path, args: argparse.Namespace, extra: list[str], shared: bool) -> str:
    out = directory / "r.json"
    out.unlink(missing_ok=True)
    with LoopbackServer(latency=args.latency, rpm=args.rpm, per_model=not shared) as server:
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "test_suite.py",
            f"--airbench-model={TARGET_MODEL}",
            f"--airbench-base-url={server.v1_url}",
            f"--airbench-judge-model={JUDGE_MODEL}",
            f"--airbench-judge-base-url={server.v1_url}",
            f"--airbench-dataset={prompts}",
            f"--airbench-judge-prompts={judge}",
            "--airbench-sample=all",
            "--airbench-no-cache",
            f"--airbench-json={out}",
            *extra,
        ]
        env = {**os.environ, "OPENAI_API_KEY": "dummy", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=directory, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
    stats = server.stats
    summary = json.loads(out.read_text())["summary"] if out.exists() else {}
    calls = 2 * args.prompts
    limit_per_second = args.rpm / 60 * (1 if shared else 2)
    ideal = calls / limit_per_second
    requests = stats["requests"]
    throttled = stats["throttled"]
    label = " ".join(extra) or "default options"
    if shared:
        label += " (one bucket for both models)"
    span = (stats["last"] or 0.0) - (stats["first"] or 0.0) + args.latency  # first request to last answer
    return (
        f"{label}: wall {wall:.1f} s (requests {span:.1f} s), ideal calls ÷ limit {ideal:.1f} s, ratio "
        f"{wall / ideal:.3f} ({span / ideal:.3f} for the requests alone); "
        f"{requests} requests, {throttled} answered 429 ({100 * throttled / max(1, requests):.1f} %); "
        f"errored prompts {summary.get('errors', '?')} of {args.prompts} (pytest exit {done.returncode})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--rpm", type=float, default=3000.0)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="airbench-ratelimit-"))
    prompts, judge, _shape = write_dataset(directory, args.prompts, max(1, args.prompts // 18))
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "test_suite.py").write_text("from airbench_plugin.suite.test_airbench import test_airbench\n")
    print(f"machine load before: {os.getloadavg()[0]:.1f}")
    rpm = f"{args.rpm:g}"
    for extra, shared in (([], False), ([f"--airbench-rpm={rpm}", f"--airbench-judge-rpm={rpm}"], False), ([], True)):
        print(run(directory, prompts, judge, args, extra, shared), flush=True)
    print(f"machine load after: {os.getloadavg()[0]:.1f}")
    if not args.keep:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
