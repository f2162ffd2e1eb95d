"""Deals through the pipeline: moves and their history, edits, lists, the board, stalled deals."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from handlers.contacts import create_lead
from handlers.deals import get_deal, list_deals, move_deal, next_step, pipeline, update_deal
from handlers.errors import Conflict, InvalidInput, NotAllowed, NotFound
from handlers.interactions import log_interaction
from handlers.tasks import complete_task, create_task
from handlers.values import Money
from storage.enums import Stage
from storage.models import AuditEntry, Contract, StageChange
from tests.conftest import T0


@pytest.fixture
async def team(make_user):
    """Maya manages Rana and Omar; Karim manages Lina; Ada is the admin."""
    maya = await make_user("Maya", "manager")
    karim = await make_user("Karim", "manager")
    return {
        "admin": await make_user("Ada", "admin"),
        "maya": maya,
        "karim": karim,
        "rana": await make_user("Rana", "rep", manager=maya),
        "omar": await make_user("Omar", "rep", manager=maya),
        "lina": await make_user("Lina", "rep", manager=karim),
    }


@pytest.fixture
def events(crm):
    seen = []

    async def collect(uow, batch):
        seen.extend((e.name, e.data) for e in batch)

    crm.hooks.append(collect)
    return seen


async def new_deal(crm, actor, name, value=None, **kwargs):
    lead = await create_lead(crm, actor, name=name, value=value, allow_duplicate=True, **kwargs)
    return lead.deal


async def stage_rows(crm, deal_id):
    async with crm.reader() as uow:
        return [(h.from_stage, h.to_stage, h.actor_id, h.at) for h in await uow.deals.stage_history(deal_id)]


async def counts(crm):
    async with crm.reader() as uow:
        return tuple([
            (await uow.session.execute(select(func.count()).select_from(m))).scalar_one()
            for m in (StageChange, AuditEntry)
        ])


async def test_deal_moves_through_the_pipeline_with_full_history(crm, team, clock, events):
    rana = team["rana"]
    deal = await new_deal(crm, rana, "Noor")
    events.clear()

    clock.advance(hours=2)
    moved = await move_deal(crm, rana, deal.id, "Contacted")
    assert (moved.stage, moved.stage_changed_at, moved.last_touched_at, moved.closed_at) == (
        "contacted", T0 + timedelta(hours=2), T0 + timedelta(hours=2), None
    )
    clock.advance(days=1)
    won = await move_deal(crm, team["maya"], deal.id, Stage.WON)
    assert (won.stage, won.closed_at) == ("won", T0 + timedelta(days=1, hours=2))
    clock.advance(hours=1)
    reopened = await move_deal(crm, rana, deal.id, "negotiation")
    assert (reopened.stage, reopened.closed_at) == ("negotiation", None)

    assert await stage_rows(crm, deal.id) == [
        (None, "new", rana.user_id, T0),
        ("new", "contacted", rana.user_id, T0 + timedelta(hours=2)),
        ("contacted", "won", team["maya"].user_id, T0 + timedelta(days=1, hours=2)),
        ("won", "negotiation", rana.user_id, T0 + timedelta(days=1, hours=3)),
    ]
    assert events == [
        ("deal_moved", {"deal_id": deal.id, "from_stage": "new", "to_stage": "contacted"}),
        ("deal_moved", {"deal_id": deal.id, "from_stage": "contacted", "to_stage": "won"}),
        ("deal_won", {"deal_id": deal.id}),
        ("deal_moved", {"deal_id": deal.id, "from_stage": "won", "to_stage": "negotiation"}),
    ]


async def test_lost_needs_a_reason_and_reopening_clears_it(crm, team, events):
    rana = team["rana"]
    deal = await new_deal(crm, rana, "Noor")
    before = await counts(crm)
    with pytest.raises(InvalidInput) as err:
        await move_deal(crm, rana, deal.id, "lost", lost_reason="  ")
    assert err.value.field == "lost_reason" and "price too high" in str(err.value)
    assert await counts(crm) == before and (await get_deal(crm, rana, deal.id)).stage == "new"

    lost = await move_deal(crm, rana, deal.id, "lost", lost_reason="Went with a competitor")
    assert (lost.stage, lost.lost_reason, lost.closed_at) == ("lost", "Went with a competitor", T0)
    assert ("deal_lost", {"deal_id": deal.id}) in events
    back = await move_deal(crm, rana, deal.id, "proposal")
    assert (back.lost_reason, back.closed_at) == (None, None)


async def test_refused_moves_write_nothing(crm, team):
    rana = team["rana"]
    deal = await new_deal(crm, rana, "Noor")
    before = await counts(crm)
    with pytest.raises(Conflict, match="already in New"):
        await move_deal(crm, rana, deal.id, "new")
    with pytest.raises(InvalidInput, match="new, contacted, proposal") as err:
        await move_deal(crm, rana, deal.id, "closed")
    assert err.value.field == "stage"
    for outsider in ("omar", "lina", "karim"):
        with pytest.raises(NotFound, match=f"No deal #{deal.id} that you can see"):
            await move_deal(crm, team[outsider], deal.id, "contacted")
    assert await counts(crm) == before


async def test_a_won_deal_with_a_contract_stays_won(crm, team):
    rana = team["rana"]
    deal = await new_deal(crm, rana, "Noor")
    await move_deal(crm, rana, deal.id, "won")
    async with crm.uow() as uow:
        uow.session.add(Contract(deal_id=deal.id, number="CTR-2026-0001", signed_on=date(2026, 12, 4),
                                 total_minor=1000, currency="USD", owner_id=rana.user_id, created_at=T0))
        await uow.commit()
    with pytest.raises(Conflict, match="has a contract"):
        await move_deal(crm, rana, deal.id, "lost", lost_reason="changed mind")
    assert (await get_deal(crm, rana, deal.id)).stage == "won"


async def test_update_deal_changes_and_audits_fields(crm, team):
    rana = team["rana"]
    deal = await new_deal(crm, rana, "Noor")
    updated = await update_deal(crm, rana, deal.id, title="Fit-out", value=Money(1_250_000, "aed"),
                                expected_close=date(2027, 1, 31), source="event")
    assert (updated.title, updated.value_minor, updated.currency, updated.expected_close, updated.source) == (
        "Fit-out", 1_250_000, "AED", date(2027, 1, 31), "event"
    )
    async with crm.reader() as uow:
        fields = sorted(a.field for a in await uow.audit.trail("deals", deal.id) if a.action == "update_deal")
    assert fields == ["currency", "expected_close", "source", "title", "value_minor"]

    before = await counts(crm)
    bad = [
        (dict(title=" "), "title"),
        (dict(value=Money(-5, "USD")), "value"),
        (dict(value="5000"), "value"),
        (dict(expected_close="soon"), "expected_close"),
        (dict(source="tv"), "source"),
        (dict(stage="won"), "stage"),
    ]
    for changes, field in bad:
        with pytest.raises(InvalidInput) as err:
            await update_deal(crm, rana, deal.id, **changes)
        assert err.value.field == field
    with pytest.raises(NotAllowed):
        await update_deal(crm, rana, deal.id, owner_id=team["omar"].user_id)
    with pytest.raises(NotFound):
        await update_deal(crm, team["lina"], deal.id, title="Mine")
    assert await counts(crm) == before
    assert (await update_deal(crm, team["maya"], deal.id, owner_id=team["omar"].user_id)).owner_id == team["omar"].user_id


async def test_list_deals_by_scope_stage_contact_and_query(crm, team, clock):
    rana, omar = team["rana"], team["omar"]
    noor = await new_deal(crm, rana, "Noor Al Huda", title="Villa interiors")
    clock.advance(minutes=1)
    acme = await new_deal(crm, rana, "Sam Lee", company="Acme Trading", title="Office fit-out")
    clock.advance(minutes=1)
    lost = await new_deal(crm, rana, "Zed")
    await move_deal(crm, rana, lost.id, "lost", lost_reason="no budget")
    theirs = await new_deal(crm, omar, "Omar's client")

    assert [d.id for d in await list_deals(crm, rana)] == [acme.id, noor.id]
    assert [d.id for d in await list_deals(crm, rana, open_only=False)] == [lost.id, acme.id, noor.id]
    assert [d.id for d in await list_deals(crm, rana, stage="lost")] == [lost.id]
    assert [d.id for d in await list_deals(crm, rana, contact_id=noor.contact_id)] == [noor.id]
    assert [d.id for d in await list_deals(crm, rana, query="acme")] == [acme.id]
    assert [d.id for d in await list_deals(crm, rana, query="vila interior")] == [noor.id]
    assert [d.id for d in await list_deals(crm, rana, query="noor")] == [noor.id]
    assert {d.id for d in await list_deals(crm, team["maya"])} == {noor.id, acme.id, theirs.id}
    assert await list_deals(crm, team["lina"]) == []
    assert len(await list_deals(crm, team["admin"])) == 3


async def test_pipeline_sums_per_stage_and_currency_in_scope(crm, team):
    rana, omar, lina = team["rana"], team["omar"], team["lina"]
    await new_deal(crm, rana, "A", Money(100_00, "USD"))
    await new_deal(crm, rana, "B", Money(250_00, "USD"))
    await new_deal(crm, rana, "C", Money(5_000_00, "AED"))
    moved = await new_deal(crm, omar, "D", Money(7_00, "USD"))
    await move_deal(crm, omar, moved.id, "proposal")
    won = await new_deal(crm, omar, "E", Money(999_00, "USD"))
    await move_deal(crm, omar, won.id, "won")
    await new_deal(crm, lina, "F", Money(1, "EUR"))

    def board(view):
        return {s.stage.value: (s.count, s.value) for s in view.stages}

    mine = await pipeline(crm, rana)
    assert board(mine) == {
        "new": (3, {"USD": 350_00, "AED": 5_000_00}),
        "contacted": (0, {}), "proposal": (0, {}), "negotiation": (0, {}),
    }
    assert [s.label for s in mine.stages] == ["New", "Contacted", "Proposal", "Negotiation"]
    assert mine.totals == {"USD": 350_00, "AED": 5_000_00}
    team_view = await pipeline(crm, team["maya"])
    assert board(team_view)["proposal"] == (1, {"USD": 7_00})
    assert team_view.totals == {"USD": 357_00, "AED": 5_000_00}
    assert (await pipeline(crm, team["admin"])).totals == {"USD": 357_00, "AED": 5_000_00, "EUR": 1}


async def test_stalled_deals_follow_each_stages_threshold(crm, team, clock):
    rana = team["rana"]
    fresh_lead = await new_deal(crm, rana, "Fresh")
    old_lead = await new_deal(crm, rana, "Old")
    talking = await new_deal(crm, rana, "Talking")
    await move_deal(crm, rana, talking.id, "contacted")
    hidden = await new_deal(crm, team["lina"], "Not mine")

    clock.advance(days=2)  # past "new" (1 day), within "contacted" (3 days)
    await log_interaction(crm, rana, contact_id=fresh_lead.contact_id, deal_id=fresh_lead.id,
                          kind="call", summary="Intro call")
    assert [d.id for d in (await pipeline(crm, rana)).stalled] == [old_lead.id]
    assert [d.id for d in (await pipeline(crm, team["admin"])).stalled] == [old_lead.id, hidden.id]

    clock.advance(days=2)  # four days: "contacted" has now waited too long as well
    assert [d.id for d in (await pipeline(crm, rana)).stalled] == [old_lead.id, talking.id, fresh_lead.id]
    custom = await pipeline(crm, rana, stalled_after_days={"new": 30, Stage.CONTACTED: 10})
    assert custom.stalled == []


async def test_next_step_is_the_earliest_open_task(crm, team):
    rana = team["rana"]
    lead = await create_lead(crm, rana, name="Noor", next_step_at=T0 + timedelta(days=2))
    assert (await next_step(crm, rana, lead.deal.id)).id == lead.task.id
    sooner = await create_task(crm, rana, title="Send brochure", due_at=T0 + timedelta(hours=3),
                               deal_id=lead.deal.id)
    assert (await next_step(crm, rana, lead.deal.id)).title == "Send brochure"
    await complete_task(crm, rana, sooner.id)
    await complete_task(crm, rana, lead.task.id)
    assert await next_step(crm, rana, lead.deal.id) is None
    with pytest.raises(NotFound):
        await next_step(crm, team["omar"], lead.deal.id)

