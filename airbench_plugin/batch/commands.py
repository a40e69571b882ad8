"""`airbench batch status|cancel [--cache DIR]`: a cache's batches, as recorded and as the provider sees them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from airbench_plugin.batch.api import BatchAPI, BatchAPIError, batch_api
from airbench_plugin.batch.journal import BatchRecord, Journal
from airbench_plugin.credentials import find_key, read_dotenv
from airbench_plugin.providers import provider_class
from airbench_plugin.wording import plural


class BatchCommandError(Exception):
    """The command cannot do what was asked; one sentence."""


def api_for(record: BatchRecord, environ: Mapping[str, str], dotenv: Mapping[str, str]) -> BatchAPI:
    """The Batches client that reaches `record`'s batch, with the key the plugin would use there."""
    try:
        provider = provider_class(record.provider)
    except Exception:
        raise BatchCommandError(f"batch {record.batch_id} names an unknown provider {record.provider!r}") from None
    key = find_key(provider, environ, dotenv, base_url=record.base_url)
    if key is None and record.base_url is None:
        names = " or ".join(provider.key_env) or "its key"
        raise BatchCommandError(f"no API key for {record.provider}: set {names}, then run again")
    api = batch_api(provider(api_key=key, base_url=record.base_url, timeout=60.0))
    if api is None:
        raise BatchCommandError(f"{record.provider} has no Batches API")
    return api


def status_lines(cache: Path, environ: Mapping[str, str], workdir: Path) -> list[str]:
    """One line per recorded batch, newest last; a running one is asked for its status."""
    records = list(Journal(cache).records())
    if not records:
        return [f"no batches recorded in {cache}"]
    dotenv = read_dotenv(workdir)

    async def lines() -> list[str]:
        shown = []
        for record in records:
            status: str = record.status
            counts = f"{record.completed:,} done, {record.failed:,} failed"
            if record.open and record.batch_id is not None:
                api = api_for(record, environ, dotenv)
                try:
                    state = await api.retrieve(record.batch_id)
                    status, counts = state.status, f"{state.completed:,} done, {state.failed:,} failed"
                except BatchAPIError as exc:
                    status = f"{record.status} (now unknown: {exc})"
                finally:
                    await api.aclose()
            where = "collected" if record.collected else "not collected yet"
            shown.append(
                f"{record.batch_id or '(not created)'}  {record.provider} {record.model}  {record.role}, "
                f"{record.step}: {plural(len(record.lines), 'call')}, {status} ({counts}); {where}"
            )
        return shown

    return asyncio.run(lines())


def cancel_lines(cache: Path, environ: Mapping[str, str], workdir: Path) -> list[str]:
    """Cancel every batch not collected yet; the next run collects what they finished."""
    owed = [record for record in Journal(cache).open_records() if record.batch_id is not None]
    if not owed:
        return [f"no running batches recorded in {cache}"]
    dotenv = read_dotenv(workdir)

    async def cancel() -> list[str]:
        shown = []
        for record in owed:
            assert record.batch_id is not None
            api = api_for(record, environ, dotenv)
            try:
                state = await api.cancel(record.batch_id)
                shown.append(f"{record.batch_id}: {state.status}")
            except BatchAPIError as exc:
                shown.append(f"{record.batch_id}: not cancelled ({exc})")
            finally:
                await api.aclose()
        shown.append(
            f"a run with --airbench-cache {cache} collects what they finished and makes the other calls as usual"
        )
        return shown

    return asyncio.run(cancel())
