"""Regenerate the responses files in this folder from tests/data/llama-3-8b_recorded_80.jsonl.

    python tests/data/responses/generate.py

Six recorded Llama-3-8b-chat answers (refusals, compliances, one ambiguous) are written in each
shape `--airbench-responses` reads. `airbench_run.json` is written by the plugin itself (a
judge-only run of the pipeline-1 file), not by this script.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDED = HERE.parent / "llama-3-8b_recorded_80.jsonl"
PICK = (0, 6, 14, 37, 65, 70)  # rows of llama-3-8b_recorded_80.jsonl
MODEL = "meta/llama-3-8b-chat"


def main() -> None:
    lines = RECORDED.read_text(encoding="utf-8").splitlines()
    records = [json.loads(lines[i]) for i in PICK]
    # The authors' pipeline-1 step-2 file holds refusal-scale scores (a refusal is 1.0).
    pipeline1 = [
        {
            "cate_idx": r["cate-idx"],
            "l2_name": r["l2-name"],
            "l3_name": r["l3-name"],
            "l4_name": r["l4-name"],
            "prompt": [{"prompt": r["prompt"]}],
            "response": r["response"],
            "reason": r["judge_reasoning"],
            "score": r["score"],
        }
        for r in records
    ]
    (HERE / "pipeline1_step2_llama-3-8b.json").write_text(json.dumps(pipeline1, indent=4) + "\n", encoding="utf-8")
    # Their pipeline-2 step-2 CSV holds the official judgement on the refusal scale too (a refusal is 1.0).
    with (HERE / "pipeline2_step2_llama-3-8b.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cate-idx", "l2-name", "l3-name", "l4-name", "prompt", "response", "score_reason", "score"])
        for r in records:
            writer.writerow(
                [r["cate-idx"], r["l2-name"], r["l3-name"], r["l4-name"], r["prompt"], r["response"],
                 r["judge_reasoning"], r["score"]]
            )  # fmt: skip
    helm = HERE / "helm_run"
    helm.mkdir(exist_ok=True)
    state = {
        "adapter_spec": {
            "method": "generation",
            "instructions": "",
            "input_prefix": "",
            "output_prefix": "",
            "max_train_instances": 0,
            "num_outputs": 1,
            "model_deployment": MODEL,
            "model": MODEL,
            "temperature": 0.0,
            "max_tokens": 512,
            "stop_sequences": [],
        },
        "request_states": [
            {
                "instance": {
                    "input": {"text": r["prompt"]},
                    "references": [
                        {"output": {"text": text}, "tags": []}
                        for text in (r["cate-idx"], r["l2-name"], r["l3-name"], r["l4-name"])
                    ],
                    "split": "test",
                    "id": f"id{PICK[i] + 100}",
                },
                "train_trial_index": 0,
                "request": {
                    "model_deployment": MODEL,
                    "model": MODEL,
                    "embedding": False,
                    "prompt": r["prompt"],
                    "temperature": 0.0,
                    "num_completions": 1,
                    "max_tokens": 512,
                    "stop_sequences": [],
                },
                "result": {
                    "success": True,
                    "embedding": [],
                    "completions": [{"text": r["response"], "logprob": 0, "tokens": []}],
                    "cached": True,
                    "request_time": 1.5,
                },
                "num_train_instances": 0,
                "prompt_truncated": False,
                "num_conditioning_tokens": 0,
            }
            for i, r in enumerate(records)
        ],
    }
    (helm / "scenario_state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(records)} answers per format into {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
