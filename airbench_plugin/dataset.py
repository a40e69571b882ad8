"""Load AIR-Bench cases and judge templates, filter them by category and sample them.

Everything here is a pure function of its inputs, so every xdist worker collects the same tests
in the same order.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airbench_plugin import rowcache
from airbench_plugin.text import valid_unicode
from airbench_plugin.wording import plural

CASE_COLUMNS = ("cate-idx", "l2-name", "l3-name", "l4-name", "prompt")
JUDGE_COLUMNS = ("cate-idx", "judge_prompt")
LOCAL_BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet", ".arrow": "arrow"}
SAVED_MARKERS = ("state.json", "dataset_dict.json")  # what `save_to_disk` writes for a Dataset, a DatasetDict
SAVED_SPLIT = "test"  # the hub's only split; a saved DatasetDict of several is read at this one


class DatasetError(Exception):
    """A dataset or template source that cannot be used; the message is one sentence for the user."""


@dataclass(frozen=True)
class Case:
    """One AIR-Bench prompt with its place in the risk taxonomy."""

    cate_idx: str
    l2_name: str
    l3_name: str
    l4_name: str
    prompt: str
    ordinal: int  # position among the dataset's prompts of the same level-4 category

    @property
    def l2(self) -> str:
        return self.cate_idx.split(".")[0]

    @property
    def l3(self) -> str:
        return ".".join(self.cate_idx.split(".")[:2])

    def group(self, level: str) -> str:
        """The key of this case's group at `level` (`l2`, `l3` or `l4`)."""
        return {"l2": self.l2, "l3": self.l3, "l4": self.cate_idx}[level]

    @property
    def test_id(self) -> str:
        """A readable, stable test id such as `1.1.6-unauthorized-network-entry-0`."""
        return f"{self.cate_idx}-{slugify(self.l4_name)}-{self.ordinal}"


@dataclass(frozen=True)
class Source:
    """Where a table comes from: a hub repository at a revision, a local file, or a folder that
    `datasets`' `save_to_disk` wrote."""

    text: str
    repo: str | None = None
    revision: str | None = None
    path: Path | None = None

    @property
    def is_hub(self) -> bool:
        return self.repo is not None

    @property
    def is_saved_folder(self) -> bool:
        return self.path is not None and self.path.is_dir()


SLUG_LIMIT = 40


@functools.lru_cache(maxsize=1024)  # every test id asks again; the benchmark has 314 level-4 names
def slugify(text: str, limit: int = SLUG_LIMIT) -> str:
    """Lower-case words joined by hyphens, safe in a test id, cut after a whole word near `limit`."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "category"
    if len(slug) > limit:
        cut = slug.rfind("-", 0, limit + 1)
        slug = slug[: cut if cut > 0 else limit]
    return slug


_CATE_IDX = re.compile(r"[0-9]+(?:\.[0-9]+){0,2}")


def is_cate_idx(text: str) -> bool:
    """Whether `text` is a cate-idx as the results codec reads it: one to three numbers joined by dots."""
    return _CATE_IDX.fullmatch(text) is not None


def first_bad_cate_idx(cate_idxs: Iterable[str]) -> tuple[int, str] | None:
    """The first cate-idx (its 1-based row and a bounded copy) that is not one, or None."""
    for row, cate_idx in enumerate(cate_idxs, 1):
        if not is_cate_idx(cate_idx):
            return row, cate_idx[:40] + ("…" if len(cate_idx) > 40 else "")
    return None


def cate_sort_key(cate_idx: str) -> tuple[int, ...]:
    """Sort `2.10` after `2.9` and `14.3940.21` by its numbers."""
    return tuple(int(part) if part.isdigit() else 0 for part in cate_idx.split("."))


def content_revision(path: str | os.PathLike[str]) -> str | None:
    """A local file's revision: `sha256:` and the hash of its bytes, so two contents of one path
    are two revisions (merge and baseline compare it); None when it cannot be read."""
    try:
        state = os.stat(path)
    except OSError:
        return None
    return _content_revision(os.fspath(path), state.st_mtime_ns, state.st_size)


@functools.lru_cache(maxsize=16)
def _content_revision(path: str, _mtime: int, _size: int) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return f"sha256:{digest.hexdigest()}"


def source_revision(text: str) -> str | None:
    """The revision of a dataset or template source: a hub revision as given, a local file's content hash."""
    if text.startswith("hf:"):
        return parse_source(text).revision
    path = Path(text)
    return content_revision(path) if path.is_file() else None


def parse_source(text: str) -> Source:
    """Read `hf:REPO[@REVISION]`, a local file path or a `save_to_disk` folder; raises DatasetError
    for anything else."""
    if text.startswith("hf:"):
        repo, _, revision = text[3:].partition("@")
        if not repo:
            raise DatasetError(
                f"cannot read {text!r}: write hf:OWNER/NAME@REVISION, e.g. hf:stanford-crfm/air-bench-2024@976d9fb."
            )
        return Source(text, repo=repo, revision=revision or None)
    path = Path(text)
    if path.is_dir():
        if not any((path / marker).is_file() for marker in SAVED_MARKERS):
            raise DatasetError(
                f"cannot read {text!r}: a folder must be one that datasets' save_to_disk wrote (it holds no "
                "state.json or dataset_dict.json); for a folder laid out like the hub repository, write hf:FOLDER."
            )
        return Source(text, path=path)
    if path.suffix.lower() not in LOCAL_BUILDERS:
        raise DatasetError(
            f"cannot read {text!r}: a local dataset must be a .csv, .jsonl, .json, .parquet or .arrow file or a "
            "folder written by datasets' save_to_disk (or use hf:OWNER/NAME@REVISION)."
        )
    return Source(text, path=path)


HUB_PROBE_TIMEOUT = 5.0  # seconds: the `datasets` library itself retries for half a minute


def offline() -> bool:
    """Whether the user told the Hugging Face libraries not to use the network."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"


def hub_reachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether anything answers HTTP at the hub's address (through the environment's proxy, if any)."""
    request = urllib.request.Request(endpoint + "/api/health", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if not with 200
    except (OSError, ValueError):
        return False


def unreachable_hub_message(source: Source, endpoint: str) -> str:
    return (
        f"cannot reach the Hugging Face Hub at {endpoint} to load {source.text!r}: pass local files with "
        "--airbench-dataset=FILE and --airbench-judge-prompts=FILE, or, if the datasets cache already holds "
        "this revision, set HF_HUB_OFFLINE=1 to use it."
    )


def load_rows(source: Source, config_name: str, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of one table, as `datasets` read them this run or an earlier one (see `rowcache`);
    raises DatasetError with the reason."""
    if source.repo is not None:
        key = rowcache.hub_key(source.repo, source.revision, config_name, columns)
    else:
        assert source.path is not None
        if source.is_saved_folder:
            return read_table(source, config_name, columns)  # memory-mapped Arrow already: no copy to keep
        if not source.path.is_file():
            raise DatasetError(f"cannot read {source.text!r}: no such file.")
        key = rowcache.file_key(source.path, config_name, columns)
    directory = rowcache.cache_dir()
    rows = rowcache.read(directory, key, columns)
    if rows is None:
        rows = read_table(source, config_name, columns)
        if source.path is not None and rowcache.file_key(source.path, config_name, columns) != key:
            return rows  # the file changed while `datasets` read it: keep nothing under the old key
        rowcache.write(directory, key, rows)
    return rows


def read_table(source: Source, config_name: str, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of one table through the `datasets` library; raises DatasetError with the reason."""
    if source.repo is not None and not offline():
        endpoint = hub_endpoint()
        if not hub_reachable(endpoint):
            raise DatasetError(unreachable_hub_message(source, endpoint))
    import datasets  # slow to import: only when a suite actually runs

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        if source.repo is not None:
            table = datasets.load_dataset(source.repo, name=config_name, split="test", revision=source.revision)
        elif source.is_saved_folder:
            assert source.path is not None
            table = _saved_table(datasets.load_from_disk(str(source.path)), source)
        else:
            assert source.path is not None
            builder = LOCAL_BUILDERS[source.path.suffix.lower()]
            table = datasets.load_dataset(builder, data_files=str(source.path), split="train")
    except DatasetError:
        raise
    except Exception as exc:  # the library raises many types; the user needs the reason, not the type
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"cannot read {source.text!r} (config {config_name!r}): {reason}") from exc
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise DatasetError(
            f"cannot read {source.text!r}: it lacks the column(s) {', '.join(missing)} (expected {', '.join(columns)})."
        )
    return [{column: _text(row[column]) for column in columns} for row in table.select_columns(list(columns))]


def _saved_table(saved: Any, source: Source) -> Any:
    """The one table of a `save_to_disk` folder: a Dataset, or a DatasetDict's `test` (or only) split."""
    splits = getattr(saved, "keys", None)
    if splits is None:
        return saved
    names = sorted(splits())
    if SAVED_SPLIT in names:
        return saved[SAVED_SPLIT]
    if len(names) == 1:
        return saved[names[0]]
    raise DatasetError(
        f"cannot read {source.text!r}: it holds the splits {', '.join(names)} and no {SAVED_SPLIT!r} split; "
        "save the one split to use."
    )


def _text(value: Any) -> str:
    return "" if value is None else valid_unicode(str(value))


def build_cases(rows: Iterable[dict[str, str]]) -> list[Case]:
    """Cases in dataset order, each numbered within its level-4 category."""
    seen: dict[str, int] = defaultdict(int)
    cases = []
    for row in rows:
        cate_idx = row["cate-idx"].strip()
        cases.append(Case(cate_idx, row["l2-name"], row["l3-name"], row["l4-name"], row["prompt"], seen[cate_idx]))
        seen[cate_idx] += 1
    return cases


def build_templates(rows: Iterable[dict[str, str]]) -> dict[str, str]:
    """Judge template by cate-idx."""
    return {row["cate-idx"].strip(): row["judge_prompt"] for row in rows}


def select_categories(cases: Sequence[Case], selectors: Sequence[str]) -> list[Case]:
    """Cases matching any selector: a cate-idx prefix (`1`, `2.5`, `14.3940.21`) or a level-2 name.

    Raises DatasetError naming the first selector that matches no case.
    """
    if not selectors:
        return list(cases)
    chosen: set[int] = set()
    for selector in selectors:
        matched = [i for i, case in enumerate(cases) if _matches(case, selector)]
        if not matched:
            names = sorted({case.l2_name for case in cases})
            raise DatasetError(
                f"unknown category {selector!r}: use a cate-idx prefix such as 1, 2.5 or 14.3940.21, "
                f"or a level-2 name ({'; '.join(names)})."
            )
        chosen.update(matched)
    return [case for i, case in enumerate(cases) if i in chosen]


def _matches(case: Case, selector: str) -> bool:
    return selects(selector, case.cate_idx, case.l2_name)


def selects(selector: str, cate_idx: str, l2_name: str) -> bool:
    """Whether a prompt lies in `selector`: a cate-idx prefix (`1`, `2.5`, `14.3940.21`) or a level-2
    name (`Security Risks`, any case), as --airbench-categories and --airbench-category-gates take them."""
    if selector[:1].isdigit():
        return cate_idx == selector or cate_idx.startswith(selector + ".")
    return l2_name.casefold() == selector.casefold()


def sample_cases(cases: Sequence[Case], per_group: int | None, level: str, seed: int) -> list[Case]:
    """Up to `per_group` cases from each group at `level`, chosen by `seed`; all when None.

    The choice in each group depends only on the seed, the group and that group's cases, so
    adding a category never changes another category's sample. The result is in taxonomy order.
    """
    if per_group is None:
        chosen = list(cases)
    else:
        groups: dict[str, list[Case]] = defaultdict(list)
        for case in cases:
            groups[case.group(level)].append(case)
        chosen = []
        for key, members in groups.items():
            if len(members) <= per_group:
                chosen.extend(members)
            else:
                rng = random.Random(f"airbench:{seed}:{level}:{key}")
                chosen.extend(rng.sample(members, per_group))
    return sorted(chosen, key=lambda case: (cate_sort_key(case.cate_idx), case.ordinal))


def describe_sample(cases: Sequence[Case], per_group: int | None, level: str) -> str:
    """What was actually drawn, for the header: `5 per l2 group (80 prompts)`, `all 5 of each l2
    group (asked 10; 80 prompts)`.

    A group with fewer sampled cases than asked held no more, so it was drawn whole.
    """
    prompts = plural(len(cases), "prompt")
    if per_group is None:
        return f"all {prompts}"
    sizes = Counter(case.group(level) for case in cases)
    smaller = [size for size in sizes.values() if size < per_group]
    if not smaller:
        return f"{per_group} per {level} group ({prompts})"
    if len(smaller) == len(sizes):
        low, high = min(smaller), max(smaller)
        whole = f"all {low} of each {level} group" if low == high else f"all of each {level} group, {low} to {high}"
        return f"{whole} (asked {per_group}; {prompts})"
    verbs = "holds fewer and is" if len(smaller) == 1 else "hold fewer and are"
    groups = plural(len(sizes), "group")
    return f"{per_group} per {level} group ({len(smaller)} of {groups} {verbs} drawn whole; {prompts})"


def missing_templates(cases: Iterable[Case], templates: dict[str, str]) -> list[str]:
    """The cate-idx values of cases that have no judge template, sorted."""
    return sorted({case.cate_idx for case in cases if case.cate_idx not in templates}, key=cate_sort_key)


def load_suite(
    dataset: str,
    judge_prompts: str | None,
    region: str,
    categories: Sequence[str],
    per_group: int | None,
    level: str,
    seed: int,
) -> tuple[list[Case], dict[str, str]]:
    """The sampled cases and their judge templates, validated; raises DatasetError.

    Without `judge_prompts` (no judge of the run reads templates) no templates are loaded.
    """
    cases = build_cases(load_rows(parse_source(dataset), region, CASE_COLUMNS))
    if not cases:
        raise DatasetError(f"cannot use {dataset!r}: it holds no prompts.")
    # Refused here, before any call, what the results codec would refuse at the end.
    bad = first_bad_cate_idx(case.cate_idx for case in cases)
    if bad is not None:
        raise DatasetError(
            f"cannot use {dataset!r}: row {bad[0]} has the cate-idx {bad[1]!r}, not one to three numbers joined by "
            "dots such as 14.3940.21."
        )
    cases = select_categories(cases, categories)
    if judge_prompts is None:
        return sample_cases(cases, per_group, level, seed), {}
    templates = load_templates(judge_prompts)
    require_templates(cases, templates, judge_prompts, "use judge prompts from the same dataset revision")
    return sample_cases(cases, per_group, level, seed), templates


def load_templates(judge_prompts: str) -> dict[str, str]:
    """The judge templates by cate-idx; raises DatasetError."""
    return build_templates(load_rows(parse_source(judge_prompts), "judge_prompts", JUDGE_COLUMNS))


def require_templates(cases: Iterable[Case], templates: dict[str, str], judge_prompts: str, hint: str) -> None:
    """Raise DatasetError, before any call, when a case has no judge template; `hint` says what to do."""
    missing = missing_templates(cases, templates)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetError(f"the judge templates in {judge_prompts!r} have no entry for cate-idx {shown}; {hint}.")
