"""Runs without the hub: `save_to_disk` folders and `.arrow` files as sources, and `airbench download`."""

from __future__ import annotations

import socket
from pathlib import Path

import datasets
import pytest

from airbench_plugin.cli import main
from airbench_plugin.dataset import CASE_COLUMNS, JUDGE_COLUMNS, DatasetError, load_rows, load_suite, parse_source
from tests.chat_server import ChatServer
from tests.helpers import CATEGORIES, judge_rows, make_hub_folder, suite_args, synthetic_rows


def _rows(per_category: int = 2) -> list[dict[str, str]]:
    return [dict(zip(CASE_COLUMNS, row, strict=True)) for row in synthetic_rows(per_category)]


def _table(rows: list[dict[str, str]]) -> datasets.Dataset:
    return datasets.Dataset.from_list(rows)


def test_a_save_to_disk_folder_is_a_source(tmp_path: Path) -> None:
    rows = _rows()
    _table(rows).save_to_disk(str(tmp_path / "dataset"))
    assert load_rows(parse_source(str(tmp_path / "dataset")), "default", CASE_COLUMNS) == rows


def test_a_saved_dataset_dict_is_read_at_its_test_split(tmp_path: Path) -> None:
    rows = _rows()
    other = [dict(row, prompt="not this one") for row in rows]
    datasets.DatasetDict({"test": _table(rows), "train": _table(other)}).save_to_disk(str(tmp_path / "both"))
    assert load_rows(parse_source(str(tmp_path / "both")), "default", CASE_COLUMNS) == rows
    datasets.DatasetDict({"a": _table(rows), "b": _table(other)}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(DatasetError) as raised:
        load_rows(parse_source(str(tmp_path / "two")), "default", CASE_COLUMNS)
    assert str(raised.value) == (
        f"cannot read '{tmp_path / 'two'}': it holds the splits a, b and no 'test' split; save the one split to use."
    )


def test_an_arrow_file_as_the_hub_cache_holds_it(tmp_path: Path) -> None:
    rows = _rows()
    _table(rows).save_to_disk(str(tmp_path / "saved"))
    (arrow,) = (tmp_path / "saved").glob("*.arrow")
    assert load_rows(parse_source(str(arrow)), "default", CASE_COLUMNS) == rows


def test_a_folder_that_save_to_disk_did_not_write_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as raised:
        parse_source(str(tmp_path))
    assert str(raised.value) == (
        f"cannot read '{tmp_path}': a folder must be one that datasets' save_to_disk wrote (it holds no "
        "state.json or dataset_dict.json); for a folder laid out like the hub repository, write hf:FOLDER."
    )
    with pytest.raises(DatasetError, match=r"a local dataset must be a \.csv, \.jsonl, \.json, \.parquet or \.arrow"):
        parse_source(str(tmp_path / "prompts.xlsx"))


def test_download_saves_both_tables_and_a_run_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pytester: pytest.Pytester, chat_server: ChatServer, api_key: str
) -> None:
    hub = make_hub_folder(tmp_path / "air-bench-2024", synthetic_rows(2), judge_rows())
    out = tmp_path / "offline"
    assert main(["download", "--repo", str(hub), "--revision", "main", str(out)]) == 0
    prompts, judges = out / "prompts_default.parquet", out / "judge_prompts.parquet"
    assert capsys.readouterr().out.splitlines() == [
        f"saved 12 prompts (default) and 6 judge templates of hf:{hub}@main to {out}",
        f"run with: --airbench-dataset={prompts} --airbench-judge-prompts={judges}",
    ]
    from_hub = load_rows(parse_source(f"hf:{hub}"), "default", CASE_COLUMNS)
    assert load_rows(parse_source(str(prompts)), "default", CASE_COLUMNS) == from_hub  # same rows, same order
    cases, templates = load_suite(str(prompts), str(judges), "default", (), None, "l2", 0)
    assert len(cases) == 12 and set(templates) == {c[0] for c in CATEGORIES}
    assert sorted(p.name for p in out.iterdir()) == ["judge_prompts.parquet", "prompts_default.parquet"]

    assert main(["download", "--repo", str(hub), "--region", "us", str(out)]) == 0
    assert len(load_rows(parse_source(str(out / "prompts_us.parquet")), "us", CASE_COLUMNS)) == 2

    # And a run from the files needs no hub at all.
    pytester.makepyfile(test_suite="from airbench_plugin.suite.test_airbench import test_airbench\n")
    result = pytester.runpytest(*suite_args(chat_server, prompts, judges))
    result.assert_outcomes(passed=11)  # five per level-2 group of 6, 4 and 2


def test_download_without_a_hub_fails_at_once_with_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:  # a loopback port nothing listens on: the connection is refused at once
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    assert main(["download", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"airbench download: cannot reach the Hugging Face Hub at {endpoint} to download "
        "'hf:stanford-crfm/air-bench-2024@976d9fbb0f52bce704dcbef5bd7a2652e65f2a21': run airbench download "
        "where the hub is reachable (or set HF_ENDPOINT to a mirror) and copy the folder here.\n"
    )
    assert not (tmp_path / "out").exists()


def test_download_into_a_path_that_cannot_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub = make_hub_folder(tmp_path / "air-bench-2024", synthetic_rows(1), judge_rows())
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["download", "--repo", str(hub), str(blocker / "out")]) == 2
    assert capsys.readouterr().err == f"airbench download: could not write to {blocker / 'out'}: Not a directory.\n"


def test_judge_columns_of_a_download(tmp_path: Path) -> None:
    hub = make_hub_folder(tmp_path / "air-bench-2024", synthetic_rows(1), judge_rows())
    main(["download", "--repo", str(hub), str(tmp_path / "out")])
    templates = load_rows(parse_source(str(tmp_path / "out" / "judge_prompts.parquet")), "judge_prompts", JUDGE_COLUMNS)
    assert [row["cate-idx"] for row in templates] == [c[0] for c in CATEGORIES]
