"""Report figures against hand-computed values on a small seeded team (clock: Fri 4 Dec 2026).

The team: admin Ada; manager Mia with reps Rana and Raj; rep Sam with no manager.
Hand-computed November figures are spelled out next to each assertion.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import pytest

from conversations.commands.reports import render_report
from handlers.errors import InvalidInput
from handlers.reports import Amount, report
from handlers.values import Money
from storage.enums import Stage
from storage.models import (
    Allocation,
    Contact,
    Contract,
    Deal,
    Installment,
    Interaction,
    Payment,
    StageChange,
)


def at(month: int, day: int, hour: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=timezone.utc)


@dataclass
class Team:
    ada: object
    mia: object
    rana: object
    raj: object
    sam: object


async def seed_team(make_user) -> Team:
    ada = await make_user("Ada", "admin")
    mia = await make_user("Mia", "manager")
    rana = await make_user("Rana", "rep", manager=mia)
    raj = await make_user("Raj", "rep", manager=mia)
    sam = await make_user("Sam", "rep")
    return Team(ada, mia, rana, raj, sam)


async def add_deal(uow, owner, *, name, created, stage, value, currency, source, moves, closed=None, phone=None):
    """A contact + deal with its stage history `moves` = [(at, to_stage), ...]."""
    contact = Contact(name=name, phone=phone, owner_id=owner.user_id, source=source, tags=[], created_at=created)
    uow.session.add(contact)
    await uow.flush()
    deal = Deal(
        contact_id=contact.id, title=name, value_minor=value, currency=currency, stage=stage,
        owner_id=owner.user_id, source=source, created_at=created, stage_changed_at=moves[-1][0],
        last_touched_at=moves[-1][0], closed_at=closed,
    )
    uow.session.add(deal)
    await uow.flush()
    previous = None
    for when, to in moves:
        uow.session.add(StageChange(deal_id=deal.id, from_stage=previous, to_stage=to, actor_id=owner.user_id, at=when))
        previous = to
    return contact, deal


async def seed_dataset(crm, make_user) -> Team:
    team = await seed_team(make_user)
    async with crm.uow() as uow:
        _, d1 = await add_deal(
            uow, team.rana, name="Omar", created=at(11, 2), stage="won", value=100000, currency="USD",
            source="website", closed=at(11, 12), phone="+971501234501",
            moves=[(at(11, 2), "new"), (at(11, 4), "contacted"), (at(11, 8), "proposal"), (at(11, 12), "won")],
        )
        _, d2 = await add_deal(
            uow, team.rana, name="Lena", created=at(11, 5), stage="won", value=50000, currency="EUR",
            source="referral", closed=at(11, 25), moves=[(at(11, 5), "new"), (at(11, 25), "won")],
        )
        await add_deal(
            uow, team.raj, name="Yusuf", created=at(11, 10), stage="lost", value=30000, currency="USD",
            source="website", closed=at(11, 20),
            moves=[(at(11, 10), "new"), (at(11, 12), "contacted"), (at(11, 20), "lost")],
        )
        await add_deal(
            uow, team.raj, name="Aisha", created=at(10, 20), stage="proposal", value=200000, currency="USD",
            source="ads", moves=[(at(10, 20), "new"), (at(11, 3), "proposal")],
        )
        await add_deal(
            uow, team.sam, name="Noor", created=at(11, 15), stage="new", value=40000, currency="USD",
            source="website", moves=[(at(11, 15), "new")],
        )
        await add_deal(
            uow, team.rana, name="Karim", created=at(12, 2), stage="contacted", value=5000, currency="USD",
            source="website", moves=[(at(12, 2), "new"), (at(12, 3), "contacted")],
        )
        await add_deal(
            uow, team.mia, name="Huda", created=at(11, 20), stage="negotiation", value=100000, currency="AED",
            source=None, moves=[(at(11, 20), "new"), (at(11, 22), "negotiation")],
        )
        for who, when in [(team.rana, at(11, 3)), (team.rana, at(11, 9)), (team.rana, at(11, 30, 23)),
                          (team.rana, at(10, 31)), (team.raj, at(11, 11)), (team.mia, at(11, 21)),
                          (team.mia, at(11, 23))]:
            uow.session.add(Interaction(
                contact_id=d1.contact_id, kind="call", summary="called", occurred_at=when,
                logged_by_id=who.user_id, created_at=when,
            ))
        c1 = Contract(deal_id=d1.id, number="CTR-1", signed_on=date(2026, 11, 12), total_minor=100000,
                      currency="USD", owner_id=team.rana.user_id, created_at=at(11, 12))
        c2 = Contract(deal_id=d2.id, number="CTR-2", signed_on=date(2026, 11, 25), total_minor=50000,
                      currency="EUR", owner_id=team.rana.user_id, created_at=at(11, 25))
        uow.session.add_all([c1, c2])
        await uow.flush()
        i1 = Installment(contract_id=c1.id, seq=1, invoice_number="INV-1", due_date=date(2026, 11, 15), amount_minor=40000, status="paid")
        i2 = Installment(contract_id=c1.id, seq=2, invoice_number="INV-2", due_date=date(2026, 11, 30), amount_minor=30000, status="partially_paid")
        i3 = Installment(contract_id=c1.id, seq=3, invoice_number="INV-3", due_date=date(2026, 12, 20), amount_minor=30000)
        i4 = Installment(contract_id=c2.id, seq=1, invoice_number="INV-4", due_date=date(2026, 11, 26), amount_minor=50000)
        i5 = Installment(contract_id=c2.id, seq=2, invoice_number="INV-5", due_date=date(2026, 11, 27), amount_minor=99900, status="void")
        uow.session.add_all([i1, i2, i3, i4, i5])
        await uow.flush()
        for amount, paid_on, inst, voided in [(40000, date(2026, 11, 14), i1, None),
                                              (10000, date(2026, 11, 29), i2, None),
                                              (20000, date(2026, 11, 20), i2, at(11, 21))]:
            payment = Payment(contract_id=c1.id, amount_minor=amount, currency="USD", paid_on=paid_on,
                              recorded_by_id=team.rana.user_id, created_at=at(11, 14), voided_at=voided)
            uow.session.add(payment)
            await uow.flush()
            uow.session.add(Allocation(payment_id=payment.id, installment_id=inst.id, amount_minor=amount))
        await uow.commit()
    return team


def usd(major: float) -> Money:
    return Money(round(major * 100), "USD")


async def test_admin_sees_every_figure_for_last_month(crm, make_user):
    team = await seed_dataset(crm, make_user)

    view = await report(crm, team.ada, "last month")

    assert view.period.label == "November 2026"
    assert view.scope == "everyone"
    # Deals created in November: Omar, Yusuf, Noor (website), Lena (referral), Huda (none).
    assert view.new_leads == (("website", 3), ("no source", 1), ("referral", 1))
    assert view.won == (Amount("EUR", 1, 50000), Amount("USD", 1, 100000))
    assert view.lost == (Amount("USD", 1, 30000),)
    assert view.close_rate == pytest.approx(2 / 3)
    assert view.average_days_to_close == pytest.approx(15.0)  # (10 + 20) / 2
    # Open now: Noor new $400, Karim contacted $50, Aisha proposal $2,000, Huda AED 1,000.
    assert [(f.stage, f.count, f.amounts) for f in view.pipeline] == [
        (Stage.NEW, 1, (usd(400),)),
        (Stage.CONTACTED, 1, (usd(50),)),
        (Stage.PROPOSAL, 1, (usd(2000),)),
        (Stage.NEGOTIATION, 1, (Money(100000, "AED"),)),
    ]
    # 400*10% + 50*25% + 2000*50% = 1,052.50 USD; 1000 AED * 75% = 750 AED.
    assert view.forecast == (Money(75000, "AED"), usd(1052.50))
    # Moved in November: Omar & Lena (won), Yusuf (contacted, then lost), Aisha (proposal),
    # Noor (new), Huda (negotiation).
    assert [(c.stage, c.reached, c.went_on) for c in view.conversion] == [
        (Stage.NEW, 6, 5), (Stage.CONTACTED, 5, 4), (Stage.PROPOSAL, 4, 3), (Stage.NEGOTIATION, 3, 2),
    ]
    # Stays overlapping November, open ones cut at 1 Dec 00:00:
    # new: 2, 20, 2, 14, 15.5, 2 -> 9.25; contacted: 4, 8; proposal: 4, 27.5; negotiation: 8.5.
    assert [(t.stage, t.stays, round(t.average_days, 4)) for t in view.time_in_stage] == [
        (Stage.NEW, 6, 9.25), (Stage.CONTACTED, 2, 6.0), (Stage.PROPOSAL, 2, 15.75), (Stage.NEGOTIATION, 1, 8.5),
    ]
    assert view.interactions == (("Rana", 3), ("Mia", 2), ("Raj", 1))
    # Due in November: $400 + $300 (void invoice left out); EUR 500.
    assert view.due == (Amount("EUR", 1, 50000), Amount("USD", 2, 70000))
    # Collected: $400 + $100; the voided $200 does not count.
    assert view.collected == (Amount("USD", 2, 50000),)
    # Overdue on 1 Dec: INV-2 $300 - $100 paid = $200; INV-4 EUR 500 unpaid.
    assert view.overdue == (Amount("EUR", 1, 50000), Amount("USD", 1, 20000))
    assert view.by == "rep"
    assert {r.label: (r.new_leads, r.won_count, r.interactions) for r in view.breakdown} == {
        "Rana": (2, 2, 3), "Raj": (1, 0, 1), "Mia": (1, 0, 2), "Sam": (1, 0, 0),
    }


async def test_manager_sees_the_team_with_a_per_rep_breakdown(crm, make_user):
    team = await seed_dataset(crm, make_user)

    view = await report(crm, team.mia, "1 Nov - 30 Nov")

    assert view.scope == "your team"
    assert view.new_leads == (("website", 2), ("no source", 1), ("referral", 1))  # not Sam's Noor
    assert view.lost == (Amount("USD", 1, 30000),)
    assert [f.stage for f in view.pipeline] == [Stage.CONTACTED, Stage.PROPOSAL, Stage.NEGOTIATION]
    rows = {r.label: r for r in view.breakdown}
    assert set(rows) == {"Rana", "Raj", "Mia"}
    assert rows["Rana"].won == (Money(50000, "EUR"), usd(1000))
    assert rows["Rana"].pipeline == (usd(50),)
    assert rows["Raj"].pipeline == (usd(2000),)
    assert rows["Mia"].pipeline == (Money(100000, "AED"),)


async def test_rep_sees_only_their_own_numbers(crm, make_user):
    team = await seed_dataset(crm, make_user)

    view = await report(crm, team.rana, "November")

    assert view.scope == "you"
    assert view.new_leads == (("referral", 1), ("website", 1))
    assert view.won_count == 2 and view.lost == ()
    assert view.close_rate == 1.0
    assert [(f.stage, f.count) for f in view.pipeline] == [(Stage.CONTACTED, 1)]
    assert view.interactions == (("Rana", 3),)
    assert view.breakdown == ()

    sam = await report(crm, team.sam, "last month")
    assert sam.won == () and sam.due == () and sam.overdue == ()
    assert [(f.stage, f.count) for f in sam.pipeline] == [(Stage.NEW, 1)]


async def test_an_empty_period_reports_zeros_not_errors(crm, make_user):
    team = await seed_dataset(crm, make_user)

    view = await report(crm, team.ada, "Q1 2025")

    assert view.new_leads == () and view.won == () and view.lost == ()
    assert view.close_rate is None and view.average_days_to_close is None
    assert view.due == () and view.collected == () and view.overdue == ()
    assert all(c.reached == 0 for c in view.conversion)
    text = render_report(view).plain
    assert "Q1 2025" in text and "No deals closed" in text


async def test_the_period_follows_the_users_time_zone(crm, make_user):
    dubai = await make_user("Dina", "rep", tz="Asia/Dubai")
    async with crm.uow() as uow:
        # 30 Nov 22:00 UTC is already 1 Dec 02:00 in Dubai.
        await add_deal(uow, dubai, name="Late", created=at(11, 30, 22), stage="won", value=1000,
                       currency="USD", source="ads", closed=at(11, 30, 22), moves=[(at(11, 30, 22), "won")])
        await uow.commit()

    november = await report(crm, dubai, "last month")
    december = await report(crm, dubai, "this month")

    assert november.won == () and november.new_leads == ()
    assert december.won == (Amount("USD", 1, 1000),)


async def test_breakdown_by_source_and_stage(crm, make_user):
    team = await seed_dataset(crm, make_user)

    by_source = await report(crm, team.ada, "last month", by="source")
    by_stage = await report(crm, team.ada, "last month", by="stage")

    sources = {r.label: (r.new_leads, r.won_count) for r in by_source.breakdown}
    assert sources == {"website": (3, 1), "referral": (1, 1), "no source": (1, 0), "ads": (0, 0)}
    assert [r.label for r in by_stage.breakdown] == ["New", "Contacted", "Proposal", "Negotiation", "Won", "Lost"]
    with pytest.raises(InvalidInput, match="rep, source or stage"):
        await report(crm, team.ada, "last month", by="colour")


async def test_rendered_report_is_short_and_formats_money_per_currency(crm, make_user):
    team = await seed_dataset(crm, make_user)

    text = render_report(await report(crm, team.ada, "last month")).plain

    assert "November 2026" in text
    assert "Won 2: €500.00, $1,000.00" in text
    assert "Close rate 67%" in text
    assert "Forecast AED750.00, $1,052.50" in text
    assert "Overdue (1 Dec 2026) €500.00, $200.00" in text
    assert "Rana" in text
    assert len(text) < 2500  # fits one phone message comfortably


async def test_won_value_per_week_and_per_local_month(crm, make_user):
    from handlers.periods import parse_period
    from handlers.reports import won_series
    from zoneinfo import ZoneInfo

    team = await seed_dataset(crm, make_user)
    dubai = await make_user("Dina", "rep", tz="Asia/Dubai")
    async with crm.uow() as uow:
        await add_deal(uow, dubai, name="Late", created=at(11, 30, 22), stage="won", value=1000,
                       currency="USD", source="ads", closed=at(11, 30, 22), moves=[(at(11, 30, 22), "won")])
        await uow.commit()

    weeks = await won_series(crm, team.ada, parse_period("last month", crm.now(), ZoneInfo("UTC")))
    months = await won_series(crm, dubai, parse_period("this year", crm.now(), ZoneInfo("Asia/Dubai")))

    # Omar won Thu 12 Nov (week of Mon 9 Nov), Lena Wed 25 Nov (week of 23 Nov); Late is 30 Nov UTC.
    assert weeks.unit == "week"
    assert weeks.points == (
        (date(2026, 11, 9), "USD", 100000), (date(2026, 11, 23), "EUR", 50000), (date(2026, 11, 30), "USD", 1000),
    )
    assert months.unit == "month" and months.points == ((date(2026, 12, 1), "USD", 1000),)  # Dubai time


async def test_days_in_stage_counts_deals_resting_since_before_the_period(crm, make_user):
    rep = await make_user("Rana", "rep")
    async with crm.uow() as uow:
        # A: contacted since 1 Oct and never moved again; B: new on 10 Nov, contacted on 20 Nov.
        await add_deal(uow, rep, name="A", created=at(9, 20), stage="contacted", value=100, currency="USD",
                       source=None, moves=[(at(9, 20), "new"), (at(10, 1), "contacted")])
        await add_deal(uow, rep, name="B", created=at(11, 10), stage="contacted", value=100, currency="USD",
                       source=None, moves=[(at(11, 10), "new"), (at(11, 20), "contacted")])
        await uow.commit()

    november = await report(crm, rep, "November")
    october = await report(crm, rep, "October")
    september = await report(crm, rep, "September")

    # November, cut at 1 Dec 00:00: A contacted 60.5 days, B contacted 10.5; B new 10.
    assert [(t.stage, t.stays, t.average_days) for t in november.time_in_stage] == [
        (Stage.NEW, 1, 10.0), (Stage.CONTACTED, 2, 35.5)]
    # October, cut at 1 Nov: A new 20 Sep -> 1 Oct (11 days), contacted 1 Oct noon -> 1 Nov (30.5).
    assert [(t.stage, t.stays, t.average_days) for t in october.time_in_stage] == [
        (Stage.NEW, 1, 11.0), (Stage.CONTACTED, 1, 30.5)]
    # September: A's stay in new is cut at 1 Oct 00:00 although it ended at noon.
    assert [(t.stage, t.stays, t.average_days) for t in september.time_in_stage] == [(Stage.NEW, 1, 10.5)]
