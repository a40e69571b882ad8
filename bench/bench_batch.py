#!/usr/bin/env python
"""Batch-mode benchmark: a full 5,694-prompt run through the Batch API on loopback, next to a normal run.

    .venv/bin/python bench/bench_batch.py            # 5,694 prompts
    .venv/bin/python bench/bench_batch.py --smoke    # 400 prompts: a quick check

Both runs use the synthetic dataset of `bench_throughput.py` (the benchmark's size and shape)
and the same answers (~1.5 KB refusals, a valid judgement). The normal run calls a loopback
chat-completions server (no added latency); the batch run uploads its answers and judgements to
the loopback Files + Batches server of `tests/batch_server.py`, which moves a batch one status
further each time it is looked at, and polls every 0.2 s. Each run is a pytest subprocess; the
script prints its wall time, its CPU per prompt, the peak resident memory of its process tree,
and for the batch run the input and output files' sizes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from bench_throughput import FULL_CATEGORIES, FULL_PROMPTS, Handler, run_child, write_dataset  # noqa: E402

from airbench_plugin.batch.journal import Journal  # noqa: E402
from tests.batch_server import BatchServer  # noqa: E402
from tests.chat_server import JUDGE_MODEL, TARGET_MODEL  # noqa: E402


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--smoke", action="store_true", help="400 prompts")
    parser.add_argument("--prompts", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    prompts = args.prompts or (400 if args.smoke else FULL_PROMPTS)
    tmp = Path(tempfile.mkdtemp(prefix="airbench-batch-bench-"))
    server = BatchServer("openai", handler=Handler())
    try:
        prompts_csv, judge_csv, _shape = write_dataset(tmp, prompts, FULL_CATEGORIES)
        (tmp / "pytest.ini").write_text("[pytest]\n")
        (tmp / "test_suite.py").write_text("from airbench_plugin.suite.test_airbench import test_airbench\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AIRBENCH_"))}
        env.update(OPENAI_API_KEY="dummy", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")
        env.update(HF_DATASETS_CACHE=str(tmp / "hf-datasets"), AIRBENCH_ROWS_CACHE=str(tmp / "rows"))
        base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_suite.py"]
        base += ["--airbench-model", TARGET_MODEL, "--airbench-base-url", server.v1_url]
        base += ["--airbench-judge-model", JUDGE_MODEL, "--airbench-judge-base-url", server.v1_url]
        base += ["--airbench-dataset", str(prompts_csv), "--airbench-judge-prompts", str(judge_csv)]
        base += ["--airbench-sample", "all", "--airbench-concurrency", "64"]
        # A first run reads the dataset through `datasets`; both measured runs read the parsed copy.
        warm = run_child([*base, "--airbench-no-cache", "--collect-only"], tmp, env, tmp / "warm.log", args.timeout)
        normal = run_child([*base, "--airbench-no-cache"], tmp, env, tmp / "normal.log", args.timeout)
        calls = len(server.requests)
        batch_cmd = [*base, "--airbench-batch", "--airbench-batch-poll", "0.2", "--airbench-cache", str(tmp / "cache")]
        batch = run_child(batch_cmd, tmp, env, tmp / "batch.log", args.timeout)
        records = list(Journal(tmp / "cache").records())
        files = [
            f"{record.step} {mb(record.input_bytes)} in, "
            f"{mb(len(server.files.get(record.output_file_id or '', b'')))} out "
            f"({record.role}, {len(record.lines)} lines)"
            for record in records
        ]
        print(f"prompts: {prompts} (the dataset read once before, exit {warm['code']}: both runs read its parsed copy)")
        for name, run in (("normal", normal), ("batch", batch)):
            print(
                f"{name} run: exit {run['code']}, wall {run['wall']:.1f}s, cpu {run['cpu']:.1f}s "
                f"({1000 * run['cpu'] / prompts:.2f} ms per prompt), peak memory {run['tree_peak_kb'] / 1024:.0f} MB"
            )
        print(f"normal run: {calls} ordinary calls; batch run: {len(server.requests) - calls} ordinary calls")
        print(f"batch run: {len(server.batches)} batches, {server.retrievals} status looks; files: {'; '.join(files)}")
        kept = sum(path.stat().st_size for path in (tmp / "cache" / "batches").iterdir())
        print(f"batch run: the records it left in CACHE/batches: {mb(kept)}")
        return 0 if normal["code"] == batch["code"] == 0 else 1
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
