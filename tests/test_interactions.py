"""Logging calls, meetings and files against a contact, and reading the history back."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.contacts import create_lead, get_contact
from handlers.deals import get_deal
from handlers.errors import InvalidInput, NotFound
from handlers.interactions import history, log_interaction
from storage.models import AuditEntry, Interaction, Task
from tests.conftest import T0


@pytest.fixture
async def team(make_user):
    maya = await make_user("Maya", "manager")
    return {
        "maya": maya,
        "rana": await make_user("Rana", "rep", manager=maya),
        "omar": await make_user("Omar", "rep", manager=maya),
        "lina": await make_user("Lina", "rep"),
    }


@pytest.fixture
async def lead(crm, team):
    return await create_lead(crm, team["rana"], name="Noor", company="Noor Shop")


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


async def counts(crm):
    async with crm.reader() as uow:
        return tuple([
            (await uow.session.execute(select(func.count()).select_from(m))).scalar_one()
            for m in (Interaction, Task, AuditEntry)
        ])


async def test_logging_a_call_touches_contact_and_deal_and_adds_the_follow_up(crm, team, lead, clock):
    rana = team["rana"]
    clock.advance(hours=3)
    call = await log_interaction(
        crm, rana, contact_id=lead.contact.id, deal_id=lead.deal.id, kind="Call",
        summary="Discussed the fit-out; wants a quote", outcome="interested", duration_minutes=15,
        occurred_at=T0 + timedelta(hours=2), follow_up_at=T0 + timedelta(days=1),
    )
    assert (call.kind, call.outcome, call.duration_minutes, call.occurred_at, call.logged_by_id) == (
        "call", "interested", 15, T0 + timedelta(hours=2), rana.user_id
    )
    assert (await get_contact(crm, rana, lead.contact.id)).last_touched_at == T0 + timedelta(hours=2)
    assert (await get_deal(crm, rana, lead.deal.id)).last_touched_at == T0 + timedelta(hours=2)
    async with crm.reader() as uow:
        tasks = [(t.title, t.due_at, t.deal_id, t.owner_id)
                 for t in await uow.tasks.open_of_contact(lead.contact.id)]
    assert tasks == [("Follow up with Noor", T0 + timedelta(days=1), lead.deal.id, rana.user_id)]


async def test_an_older_entry_never_moves_last_touched_backwards(crm, team, lead, clock):
    clock.advance(days=2)
    await log_interaction(crm, team["rana"], contact_id=lead.contact.id, deal_id=lead.deal.id,
                          kind="note", summary="Met at the expo", occurred_at=T0 - timedelta(days=3))
    assert (await get_contact(crm, team["rana"], lead.contact.id)).last_touched_at == T0
    assert (await get_deal(crm, team["rana"], lead.deal.id)).last_touched_at == T0


async def test_bad_entries_are_refused_and_nothing_is_written(crm, team, lead, tmp_path, data_dir):
    other = await create_lead(crm, team["rana"], name="Someone else")
    quote = tmp_path / "quote.pdf"
    quote.write_bytes(b"%PDF-1.4 quote")
    cid = lead.contact.id
    bad = [
        (dict(kind="fax", summary="x"), "kind", "call, message, meeting"),
        (dict(kind="call", summary="  "), "summary", "cannot be empty"),
        (dict(kind="call", summary="x", duration_minutes=0), "duration_minutes", "e.g. 15"),
        (dict(kind="call", summary="x", occurred_at=T0 + timedelta(hours=1)), "occurred_at", "future"),
        (dict(kind="call", summary="x", occurred_at=T0.replace(tzinfo=None)), "occurred_at", "time zone"),
        (dict(kind="call", summary="x", follow_up_at=T0.replace(tzinfo=None)), "follow_up_at", "time zone"),
        (dict(kind="file", summary="x", attachment_path=tmp_path / "missing.pdf"), "attachment", "send it again"),
        (dict(kind="quote", summary="x", deal_id=other.deal.id, attachment_path=quote,
              follow_up_at=T0 + timedelta(days=1)), "deal_id", "different contact"),
    ]
    before = await counts(crm)
    for kwargs, field, words in bad:
        with pytest.raises(InvalidInput) as err:
            await log_interaction(crm, team["rana"], contact_id=cid, **kwargs)
        assert err.value.field == field and words in str(err.value), kwargs
    assert await counts(crm) == before
    assert files_under(data_dir) == []
    assert (await get_contact(crm, team["rana"], cid)).last_touched_at == T0
    # a few minutes of clock drift on the phone is fine
    ok = await log_interaction(crm, team["rana"], contact_id=cid, kind="call", summary="x",
                               occurred_at=T0 + timedelta(minutes=3))
    assert ok.occurred_at == T0 + timedelta(minutes=3)


async def test_attachment_is_copied_under_the_data_dir_with_a_safe_name(crm, team, lead, tmp_path, data_dir):
    original = tmp_path / "upload.bin"
    original.write_bytes(b"%PDF-1.4 " + b"x" * 2048)
    entry = await log_interaction(
        crm, team["rana"], contact_id=lead.contact.id, kind="quote", summary="Sent the quote",
        attachment_path=original, attachment_name="../../Quote #7 (final).pdf",
    )
    stored = entry.attachment_path
    assert entry.attachment_name == "../../Quote #7 (final).pdf"
    assert entry.attachment_size == original.stat().st_size
    folder = (data_dir / "attachments" / str(lead.contact.id)).resolve()
    stored_path = Path(stored)
    assert stored_path.parent == folder and stored_path.read_bytes() == original.read_bytes()
    assert stored_path.name.endswith("-Quote_7_final_.pdf") and "/" not in stored_path.name
    assert original.exists()  # copied, not moved

    again = await log_interaction(
        crm, team["rana"], contact_id=lead.contact.id, kind="quote", summary="Resent",
        attachment_path=original, attachment_name="../../Quote #7 (final).pdf",
    )
    assert again.attachment_path != stored and len(list(folder.iterdir())) == 2


async def test_a_change_that_fails_at_commit_leaves_no_copied_file(crm, team, lead, tmp_path, data_dir):
    async def outbox_down(uow, events):
        raise RuntimeError("outbox unavailable")

    crm.hooks.append(outbox_down)
    upload = tmp_path / "plan.pdf"
    upload.write_bytes(b"%PDF-1.4 plan")
    before = await counts(crm)
    with pytest.raises(RuntimeError):
        await log_interaction(crm, team["rana"], contact_id=lead.contact.id, kind="file",
                              summary="Floor plan", attachment_path=upload,
                              follow_up_at=T0 + timedelta(days=1))
    assert await counts(crm) == before
    assert files_under(data_dir) == []


async def test_history_is_newest_first_in_pages_and_only_for_those_who_may_see(crm, team, lead, clock):
    rana = team["rana"]
    for i in range(5):
        await log_interaction(crm, rana, contact_id=lead.contact.id, kind="note", summary=f"note {i}",
                              occurred_at=T0 - timedelta(hours=5 - i))
    # two entries at the very same minute page in logging order
    await log_interaction(crm, rana, contact_id=lead.contact.id, kind="call", summary="same time A")
    await log_interaction(crm, rana, contact_id=lead.contact.id, kind="call", summary="same time B")

    first = await history(crm, rana, lead.contact.id, limit=3)
    assert [i.summary for i in first] == ["same time B", "same time A", "note 4"]
    rest = await history(crm, team["maya"], lead.contact.id, limit=10, before_id=first[-1].id)
    assert [i.summary for i in rest] == ["note 3", "note 2", "note 1", "note 0"]
    with pytest.raises(NotFound):
        await history(crm, team["omar"], lead.contact.id)
    with pytest.raises(NotFound):
        await log_interaction(crm, team["lina"], contact_id=lead.contact.id, kind="note", summary="hi")
    other = await create_lead(crm, rana, name="Other")
    with pytest.raises(NotFound):
        await history(crm, rana, other.contact.id, before_id=first[0].id)
