"""Long work interrupted half-way: an import cancelled (`task.cancel()`, as when the bot shuts
down) or its process killed, and an export cancelled mid-file. The database is left exactly as
it was, and no half-written export file is left behind to be mistaken for a whole one."""
from __future__ import annotations

import asyncio

import pytest

from handlers import exports
from handlers.exports import export
from handlers.imports import BATCH, apply_import
from storage.models import Contact
from tests.chat import count_rows
from tests.reliability.conftest import snapshot, sqlite_only
from tests.reliability.processes import Child

ROWS = 2 * BATCH + 100  # three batches: the interruption lands after the first


def leads_file(tmp_path):
    path = tmp_path / "old_crm.csv"
    lines = ["Name,Phone,Company,Stage,Value"]
    lines += [f"Lead {i},+97150{1000000 + i},Firm {i % 40},proposal,{1000 + i}" for i in range(ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
async def test_an_import_cancelled_half_way_leaves_the_database_as_it_was(crm, make_user, tmp_path):
    rana = await make_user("Rana", role="admin")
    before = await snapshot(crm.settings.database_url)
    half_way = asyncio.Event()

    async def progress(written: int, total: int) -> None:
        half_way.set()
        await asyncio.sleep(0)

    task = asyncio.create_task(apply_import(crm, rana, leads_file(tmp_path), progress=progress))
    await half_way.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await snapshot(crm.settings.database_url) == before
    # The same file imports whole afterwards: nothing was left locked or half-counted.
    result = await apply_import(crm, rana, leads_file(tmp_path))
    assert result.created == ROWS and await count_rows(crm, Contact) == ROWS


@pytest.mark.slow
@sqlite_only
async def test_an_import_killed_half_way_leaves_the_database_as_it_was(crm, make_user, tmp_path, data_dir):
    rana = await make_user("Rana", role="admin")
    url = crm.settings.database_url
    before = await snapshot(url)
    child = await Child.start("tests.reliability.import_process", url, str(data_dir),
                              str(leads_file(tmp_path)), str(rana.user_id))
    assert await child.read() == {"written": BATCH, "of": ROWS}  # rows written, not committed
    await child.kill()
    assert await snapshot(url) == before
    assert (await apply_import(crm, rana, leads_file(tmp_path))).created == ROWS


@pytest.mark.slow
async def test_an_export_cancelled_half_way_leaves_no_partial_file(crm, make_user, tmp_path, monkeypatch):
    rana = await make_user("Rana", role="admin")
    await apply_import(crm, rana, leads_file(tmp_path))
    before = await snapshot(crm.settings.database_url)
    first_batch_out, real_stream = asyncio.Event(), exports.TransferRepository.stream

    async def slow_after_first_batch(self, what, owners):
        async for batch in real_stream(self, what, owners):
            yield batch
            first_batch_out.set()
            await asyncio.Event().wait()  # the database is slow to give the next batch

    monkeypatch.setattr(exports.TransferRepository, "stream", slow_after_first_batch)
    task = asyncio.create_task(export(crm, rana, "all", "csv"))
    await first_batch_out.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await snapshot(crm.settings.database_url) == before
    assert list((crm.settings.data_dir / "exports").iterdir()) == []
