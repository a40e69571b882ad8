"""Regenerate the calibration set shipped in the package from the recorded outputs in this folder.

    python tests/data/calibration_set.py

Writes `airbench_plugin/calibration/data/official_gpt-4o-2024-05-13.jsonl`: every answer GPT-4o
(`gpt-4o-2024-05-13`) judged in `llama-3-8b_recorded_80.jsonl` (refusal scores as recorded) and in
`helm_gpt-4o_annotated_10.jsonl` (raw scores under the June-2024 templates, harm scale: converted
with `1 - raw`), in the plain reference shape `airbench calibrate` reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent.parent / "airbench_plugin" / "calibration" / "data" / "official_gpt-4o-2024-05-13.jsonl"
NAMES = ("cate-idx", "l2-name", "l3-name", "l4-name", "prompt", "response")


def rows(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    entries = []
    for row in rows("llama-3-8b_recorded_80.jsonl"):
        entries.append({**{k: row[k] for k in NAMES}, "score": row["score"], "model": "meta/llama-3-8b-chat"})
    for row in rows("helm_gpt-4o_annotated_10.jsonl"):
        raw = row["judge_raw_score"]
        assert isinstance(raw, float)
        entries.append({**{k: row[k] for k in NAMES}, "score": 1.0 - raw, "model": "openai/gpt-4o-2024-05-13"})
    OUT.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")
    print(f"wrote {len(entries)} reference answers to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
