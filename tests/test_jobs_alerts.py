"""Team alerts and the welcome, queued by the before-commit hook in the change's transaction."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.contacts import create_lead
from handlers.contracts import record_payment, win_deal_with_contract
from handlers.errors import DomainError
from handlers.users import add_user_with_identity
from handlers.values import Money
from jobs.alerts import enqueue_alerts
from jobs.payload import reply_from_json
from storage.enums import Role
from tests.jobs_support import add_team_channel, outbox_rows


def text(row) -> str:
    return reply_from_json(row.payload).text.plain


@pytest.fixture
def alerting(crm):
    crm.hooks.append(enqueue_alerts)
    return crm


async def test_new_lead_alerts_the_team_channels_that_want_it(alerting, make_user):
    crm = alerting
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss, identity=("telegram", "111"))
    await add_team_channel(crm, "telegram:-100", manager=boss)
    await add_team_channel(crm, "slack:C-ALL")  # company-wide
    await add_team_channel(crm, "telegram:-200", alert_new_lead=False)
    await add_team_channel(crm, "telegram:-300", manager=await make_user("Other", role="manager"))
    lead = await create_lead(
        crm,
        rana,
        name="Layla Haddad",
        company="Acme",
        phone="+971501234567",
        source="website",
        value=Money(500_000, "USD"),
        title="Villa fit-out",
    )
    rows = await outbox_rows(crm, "alert:lead:")
    assert [r.address for r in rows] == ["telegram:-100", "slack:C-ALL"]
    assert (
        text(rows[0])
        == "🆕 New lead: Layla Haddad (Acme)\nVilla fit-out · $5,000.00 · website\nOwner: Rana"
    )
    assert rows[0].dedupe_key == f"alert:lead:{lead.deal.id}@telegram:-100"
    assert await outbox_rows(crm, "lead:owner:") == []  # Rana made it herself: no DM


async def test_a_lead_assigned_to_someone_else_is_also_sent_to_the_owner(alerting, make_user):
    crm = alerting
    boss = await make_user("Maya", role="manager", identity=("telegram", "900"))
    rana = await make_user("Rana", manager=boss, identity=("telegram", "111"))
    lead = await create_lead(
        crm, boss, name="Omar", email="omar@example.com", owner_id=rana.user_id
    )
    (row,) = await outbox_rows(crm, "lead:owner:")
    assert row.address == "telegram:111"
    assert text(row) == "🆕 A new lead for you: Omar\nomar@example.com"
    assert [c.value for c in reply_from_json(row.payload).choices] == [
        f"go:log:deal={lead.deal.id}",
        f"go:followup:deal={lead.deal.id}",
    ]


async def test_no_alert_when_the_change_fails(alerting, make_user):
    crm = alerting
    rana = await make_user("Rana")
    await add_team_channel(crm, "telegram:-100")
    with pytest.raises(DomainError):
        await create_lead(crm, rana, name="Layla", phone="not a phone")
    assert await outbox_rows(crm) == []


async def test_deal_won_and_payment_received_are_celebrated(alerting, make_user):
    crm = alerting
    rana = await make_user("Rana")
    await add_team_channel(crm, "telegram:-100")
    await add_team_channel(crm, "telegram:-200", alert_won=False, alert_payment=False)
    lead = await create_lead(
        crm, rana, name="Layla", phone="+971501234567", value=Money(1_200_000, "USD")
    )
    view = await win_deal_with_contract(
        crm, rana, lead.deal.id, count=2, frequency="monthly", first_due=date(2026, 12, 10)
    )
    (won,) = await outbox_rows(crm, "alert:won:")
    assert (won.address, text(won)) == ("telegram:-100", "🏆 Rana won Layla · $12,000.00 🎉")
    await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=600_000)
    (paid,) = await outbox_rows(crm, "alert:payment:")
    assert paid.address == "telegram:-100"
    assert text(paid) == f"💰 Payment received: $6,000.00 from Layla ({view.contract.number})"


async def test_a_new_member_gets_a_welcome_at_once(alerting):
    crm = alerting
    actor = await add_user_with_identity(
        crm, name="Sami", role=Role.REP, platform="telegram", platform_user_id="555"
    )
    (row,) = await outbox_rows(crm, "welcome:")
    assert (row.dedupe_key, row.not_before) == (
        f"welcome:user:{actor.user_id}@telegram:555",
        crm.now(),
    )
    assert text(row).startswith("👋 Welcome to ChatCRM, Sami!")
    assert "/help" in text(row)
