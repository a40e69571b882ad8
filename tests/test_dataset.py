"""Loading through the `datasets` library, category filters and deterministic sampling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airbench_plugin import rowcache
from airbench_plugin.dataset import (
    CASE_COLUMNS,
    Case,
    DatasetError,
    build_cases,
    cate_sort_key,
    describe_sample,
    load_rows,
    load_suite,
    parse_source,
    sample_cases,
    select_categories,
)
from tests.chat_server import ChatServer
from tests.helpers import (
    CATEGORIES,
    DATA,
    SUITE_FILE,
    judge_rows,
    make_hub_folder,
    suite_args,
    synthetic_rows,
    write_csv,
)


def cases(per_category: int = 10) -> list[Case]:
    return build_cases(dict(zip(CASE_COLUMNS, row, strict=True)) for row in synthetic_rows(per_category))


def test_parse_source() -> None:
    hub = parse_source("hf:stanford-crfm/air-bench-2024@976d9fb")
    assert (hub.repo, hub.revision) == ("stanford-crfm/air-bench-2024", "976d9fb")
    assert parse_source("hf:stanford-crfm/air-bench-2024").revision is None
    assert parse_source("data/prompts.parquet").path == Path("data/prompts.parquet")
    with pytest.raises(DatasetError, match=r"^cannot read 'prompts.xlsx': a local dataset must be a .csv"):
        parse_source("prompts.xlsx")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
def test_local_files_of_every_format(tmp_path: Path, suffix: str) -> None:
    rows = [dict(zip(CASE_COLUMNS, row, strict=True)) for row in synthetic_rows(2)]
    path = tmp_path / f"prompts{suffix}"
    if suffix == ".csv":
        write_csv(path, CASE_COLUMNS, [list(r.values()) for r in rows])
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    loaded = load_rows(parse_source(str(path)), "default", CASE_COLUMNS)
    assert loaded == rows


def test_hub_layout_folder_through_the_hub_code_path(tmp_path: Path) -> None:
    """`hf:<folder>` drives `load_dataset(path, name=config, split="test")`, as for the hub."""
    folder = make_hub_folder(tmp_path / "air-bench-2024", synthetic_rows(2), judge_rows())
    suite_cases, templates = load_suite(f"hf:{folder}", f"hf:{folder}", "default", (), None, "l2", 0)
    assert len(suite_cases) == 12
    assert set(templates) == {c[0] for c in CATEGORIES}
    us_cases, _ = load_suite(f"hf:{folder}", f"hf:{folder}", "us", (), None, "l2", 0)
    assert len(us_cases) == 2


def test_reference_prompts_load_with_their_real_templates() -> None:
    suite_cases, templates = load_suite(
        str(DATA / "prompts_sample_80.csv"),
        str(DATA / "judge_prompts_2024-06.csv"),
        "default",
        (),
        5,
        "l2",
        0,
    )
    assert len(suite_cases) == 80
    assert len({c.l2 for c in suite_cases}) == 16
    assert len(templates) == 314


def test_unreadable_files_give_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"^cannot read '.*missing.csv': no such file\.$"):
        load_rows(parse_source(str(tmp_path / "missing.csv")), "default", CASE_COLUMNS)
    wrong = write_csv(tmp_path / "wrong.csv", ["id", "text"], [["1", "hello"]])
    with pytest.raises(DatasetError, match=r"lacks the column\(s\) cate-idx, l2-name, l3-name, l4-name, prompt"):
        load_rows(parse_source(str(wrong)), "default", CASE_COLUMNS)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match=r"^cannot read '.*broken.parquet' \(config 'default'\): "):
        load_rows(parse_source(str(broken)), "default", CASE_COLUMNS)


def test_test_ids_are_readable_and_stable() -> None:
    first = cases(2)[:2]
    assert [c.test_id for c in first] == ["1.1.1-network-intrusion-0", "1.1.1-network-intrusion-1"]
    assert cases(2)[-1].test_id == "14.3940.21-race-1"


def test_long_category_names_are_cut_at_a_word() -> None:
    long = Case(
        "3.8.6",
        "Violence & Extremism",
        "Celebrating Suffering",
        "Denying or minimizing well-documented, major violent events or the victimhood of such events",
        "p",
        0,
    )
    assert long.test_id == "3.8.6-denying-or-minimizing-well-documented-0"


def test_sampling_is_a_pure_function_of_seed_and_dataset() -> None:
    all_cases = cases(10)
    a = sample_cases(all_cases, 5, "l2", seed=0)
    b = sample_cases(list(all_cases), 5, "l2", seed=0)
    assert a == b
    assert len(a) == 15  # 5 for each of the 3 level-2 groups
    assert sample_cases(all_cases, 5, "l2", seed=1) != a
    assert [c.cate_idx for c in a] == sorted((c.cate_idx for c in a), key=cate_sort_key)


def test_sampling_one_group_does_not_depend_on_other_groups() -> None:
    all_cases = cases(10)
    only_security = [c for c in all_cases if c.l2 == "1"]
    full = [c for c in sample_cases(all_cases, 4, "l2", 7) if c.l2 == "1"]
    assert sample_cases(only_security, 4, "l2", 7) == full


@pytest.mark.parametrize(("level", "groups"), [("l2", 3), ("l3", 4), ("l4", 6)])
def test_sampling_by_level(level: str, groups: int) -> None:
    assert len(sample_cases(cases(10), 2, level, 0)) == 2 * groups


def test_sample_all_keeps_everything_in_taxonomy_order() -> None:
    all_cases = cases(3)
    assert sample_cases(list(reversed(all_cases)), None, "l2", 0) == all_cases


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["1"], {"1.1.1", "1.1.6", "1.2.9"}),
        (["1.1"], {"1.1.1", "1.1.6"}),
        (["2.5", "14.3940.21"], {"2.5.1", "2.5.2", "14.3940.21"}),
        (["security risks"], {"1.1.1", "1.1.6", "1.2.9"}),
        (["Discrimination/Bias"], {"14.3940.21"}),
    ],
)
def test_category_selection(selectors: list[str], expected: set[str]) -> None:
    assert {c.cate_idx for c in select_categories(cases(1), selectors)} == expected


def test_prefix_matches_whole_parts_only() -> None:
    with pytest.raises(DatasetError, match=r"^unknown category '1.1.11'"):
        select_categories(cases(1), ["1.1.11"])


def test_unknown_category_names_the_choices() -> None:
    with pytest.raises(DatasetError) as info:
        select_categories(cases(1), ["Weather"])
    assert str(info.value) == (
        "unknown category 'Weather': use a cate-idx prefix such as 1, 2.5 or 14.3940.21, or a level-2 name "
        "(Discrimination/Bias; Operational Misuses; Security Risks)."
    )


def test_describe_sample_says_what_was_drawn() -> None:
    full = cases(10)  # level-2 groups of 30, 20 and 10 prompts
    assert describe_sample(sample_cases(full, 5, "l2", 0), 5, "l2") == "5 per l2 group (15 prompts)"
    assert describe_sample(full, None, "l2") == "all 60 prompts"
    assert describe_sample(sample_cases(full, 40, "l2", 0), 40, "l2") == (
        "all of each l2 group, 10 to 30 (asked 40; 60 prompts)"
    )
    assert describe_sample(sample_cases(full, 20, "l2", 0), 20, "l2") == (
        "20 per l2 group (1 of 3 groups holds fewer and is drawn whole; 50 prompts)"
    )
    assert describe_sample(sample_cases(full, 25, "l2", 0), 25, "l2") == (
        "25 per l2 group (2 of 3 groups hold fewer and are drawn whole; 55 prompts)"
    )
    per_l4 = sample_cases(full, 12, "l4", 0)  # every level-4 group holds 10
    assert describe_sample(per_l4, 12, "l4") == "all 10 of each l4 group (asked 12; 60 prompts)"
    assert describe_sample(per_l4[:1], 1, "l4") == "1 per l4 group (1 prompt)"


def test_the_header_says_what_was_drawn(
    pytester: pytest.Pytester, chat_server: ChatServer, dataset_files: tuple[Path, Path], api_key: str
) -> None:
    pytester.makepyfile(test_suite=SUITE_FILE)
    result = pytester.runpytest(*suite_args(chat_server, *dataset_files, "--airbench-sample=10"), "--collect-only")
    result.stdout.fnmatch_lines(
        ["airbench: dataset * [[]default], all of each l2 group, 3 to 9 (asked 10; 18 prompts), all categories, seed 0"]
    )


# --- the parsed copy of a table (rowcache) -----------------------------------------------------


def test_an_unchanged_file_is_read_through_datasets_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setenv("AIRBENCH_ROWS_CACHE", str(tmp_path / "rows"))
    path = write_csv(tmp_path / "prompts.csv", CASE_COLUMNS, synthetic_rows(2))
    first = load_rows(parse_source(str(path)), "default", CASE_COLUMNS)

    def no_datasets(*args: object, **kwargs: object) -> None:
        raise AssertionError("datasets.load_dataset was called")

    monkeypatch.setattr(datasets, "load_dataset", no_datasets)
    assert load_rows(parse_source(str(path)), "default", CASE_COLUMNS) == first
    copy = write_csv(tmp_path / "elsewhere.csv", CASE_COLUMNS, synthetic_rows(2))
    assert load_rows(parse_source(str(copy)), "default", CASE_COLUMNS) == first  # the key is the content
    write_csv(path, CASE_COLUMNS, synthetic_rows(3))  # an edited file is read again
    with pytest.raises(DatasetError, match=r"datasets\.load_dataset was called"):
        load_rows(parse_source(str(path)), "default", CASE_COLUMNS)


def test_a_damaged_or_unwritable_copy_is_read_again_without_a_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_dir = tmp_path / "rows"
    monkeypatch.setenv("AIRBENCH_ROWS_CACHE", str(rows_dir))
    path = write_csv(tmp_path / "prompts.csv", CASE_COLUMNS, synthetic_rows(1))
    expected = load_rows(parse_source(str(path)), "default", CASE_COLUMNS)
    (entry,) = rows_dir.glob("*.json")
    for damage in ("{not json", json.dumps([{"cate-idx": 1}]), json.dumps({"rows": []})):
        entry.write_text(damage)
        assert load_rows(parse_source(str(path)), "default", CASE_COLUMNS) == expected
        assert json.loads(entry.read_text()) == expected  # written again, whole
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("AIRBENCH_ROWS_CACHE", str(blocked / "rows"))  # cannot be a directory
    assert load_rows(parse_source(str(path)), "default", CASE_COLUMNS) == expected
    assert not [p for p in tmp_path.rglob("*.partial")]


def test_which_tables_are_kept_and_where(tmp_path: Path) -> None:
    commit = "976d9fbb0f52bce704dcbef5bd7a2652e65f2a21"
    assert rowcache.hub_key("stanford-crfm/air-bench-2024", commit, "default", CASE_COLUMNS) is not None
    for moving in ("main", "976d9fb", "v1.0", None):  # a branch, a short hash or a tag can move
        assert rowcache.hub_key("stanford-crfm/air-bench-2024", moving, "default", CASE_COLUMNS) is None
    folder = make_hub_folder(tmp_path / "air-bench-2024", synthetic_rows(1), judge_rows())
    assert rowcache.hub_key(str(folder), commit, "default", CASE_COLUMNS) is None  # read as it is
    path = write_csv(tmp_path / "p.csv", CASE_COLUMNS, synthetic_rows(1))
    assert rowcache.file_key(path, "default", CASE_COLUMNS) != rowcache.file_key(path, "us", CASE_COLUMNS)
    assert rowcache.file_key(tmp_path / "missing.csv", "default", CASE_COLUMNS) is None
    assert rowcache.cache_dir({"AIRBENCH_ROWS_CACHE": "off"}) is None
    assert rowcache.cache_dir({"AIRBENCH_ROWS_CACHE": "/x/rows"}) == Path("/x/rows")
    assert rowcache.cache_dir({"XDG_CACHE_HOME": "/xdg"}) == Path("/xdg/pytest-airbench/rows")


def test_a_file_changed_while_it_is_read_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import airbench_plugin.dataset as dataset_module

    rows_dir = tmp_path / "rows"
    monkeypatch.setenv("AIRBENCH_ROWS_CACHE", str(rows_dir))
    path = write_csv(tmp_path / "prompts.csv", CASE_COLUMNS, synthetic_rows(1))
    read = dataset_module.read_table

    def read_then_edit(*args: Any, **kwargs: Any) -> list[dict[str, str]]:
        rows = read(*args, **kwargs)
        write_csv(path, CASE_COLUMNS, synthetic_rows(2))  # another process rewrote it meanwhile
        return rows

    monkeypatch.setattr(dataset_module, "read_table", read_then_edit)
    assert len(load_rows(parse_source(str(path)), "default", CASE_COLUMNS)) == 6
    assert not rows_dir.exists() or not list(rows_dir.glob("*.json"))


def test_no_home_folder_means_no_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert rowcache.cache_dir({}) is None
