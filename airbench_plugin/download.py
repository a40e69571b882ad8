"""`airbench download`: one dataset revision's prompts and judge templates saved as local files, once,
so that CI without access to the Hugging Face Hub runs from them (`--airbench-dataset=FILE`)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airbench_plugin.dataset import (
    CASE_COLUMNS,
    JUDGE_COLUMNS,
    DatasetError,
    hub_endpoint,
    hub_reachable,
    load_rows,
    offline,
    parse_source,
)
from airbench_plugin.files import write_atomic
from airbench_plugin.options import HELM_REVISION, HF_REPO

JUDGE_CONFIG = "judge_prompts"


@dataclass(frozen=True)
class Download:
    """What `download` saved: the two files and how many rows each holds."""

    source: str  # hf:REPO@REVISION
    region: str
    prompts: Path
    judge_prompts: Path
    prompt_count: int
    template_count: int

    def options(self) -> str:
        """The pytest options that run from these files."""
        return f"--airbench-dataset={self.prompts} --airbench-judge-prompts={self.judge_prompts}"


def file_names(region: str) -> tuple[str, str]:
    """The names of the prompts' and the judge templates' files in the download folder."""
    return f"prompts_{region}.parquet", f"{JUDGE_CONFIG}.parquet"


def download(directory: Path, region: str = "default", revision: str = HELM_REVISION, repo: str = HF_REPO) -> Download:
    """Read the `region` prompts and the judge templates of `repo` at `revision` through `datasets` and
    write them to `directory` as Parquet; raises DatasetError (no hub) or OSError (cannot write)."""
    source = parse_source(f"hf:{repo}@{revision}")
    local = Path(repo).is_dir()  # a folder laid out like the hub repository
    if not local and not offline():
        endpoint = hub_endpoint()
        if not hub_reachable(endpoint):
            raise DatasetError(
                f"cannot reach the Hugging Face Hub at {endpoint} to download {source.text!r}: run airbench "
                "download where the hub is reachable (or set HF_ENDPOINT to a mirror) and copy the folder here."
            )
    prompts = load_rows(source, region, CASE_COLUMNS)
    templates = load_rows(source, JUDGE_CONFIG, JUDGE_COLUMNS)
    if not prompts:
        raise DatasetError(f"cannot download {source.text!r}: its {region!r} config holds no prompts.")
    prompts_name, judge_name = file_names(region)
    prompts_path, judge_path = directory / prompts_name, directory / judge_name
    write_atomic(prompts_path, _parquet(prompts, CASE_COLUMNS))
    write_atomic(judge_path, _parquet(templates, JUDGE_COLUMNS))
    return Download(source.text, region, prompts_path, judge_path, len(prompts), len(templates))


def _parquet(rows: list[dict[str, str]], columns: Sequence[str]) -> bytes:
    """The rows as one Parquet file: every value a string, exactly as read (no CSV type guessing)."""
    import pyarrow as pa  # installed with `datasets`
    import pyarrow.parquet as pq

    table = pa.table({column: pa.array([row[column] for row in rows], type=pa.string()) for column in columns})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()
