"""Contacts and leads, as a rep would meet them: new leads, duplicates, search, cards, edits."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from handlers.contacts import (
    contact_card,
    create_lead,
    find_duplicates,
    get_contact,
    recent_contacts,
    search_contacts,
    update_contact,
)
from handlers.errors import Duplicate, InvalidInput, NotAllowed, NotFound, UnknownUser
from handlers.context import Actor
from handlers.interactions import log_interaction
from handlers.tasks import complete_task
from handlers.values import Money
from storage.models import AuditEntry, Contact, Contract, Deal, StageChange, Task
from tests.conftest import T0


@pytest.fixture
async def team(make_user):
    """Two managers; Rana and Omar report to Maya, Lina to Karim; Ada is the admin."""
    admin = await make_user("Ada", "admin")
    maya = await make_user("Maya", "manager")
    karim = await make_user("Karim", "manager")
    return {
        "admin": admin,
        "maya": maya,
        "karim": karim,
        "rana": await make_user("Rana", "rep", manager=maya),
        "omar": await make_user("Omar", "rep", manager=maya),
        "lina": await make_user("Lina", "rep", manager=karim),
    }


@pytest.fixture
def events(crm):
    """Domain events of every committed change, in order."""
    seen = []

    async def collect(uow, batch):
        seen.extend(batch)

    crm.hooks.append(collect)
    return seen


async def count(crm, model) -> int:
    async with crm.reader() as uow:
        return (await uow.session.execute(select(func.count()).select_from(model))).scalar_one()


async def counts(crm) -> tuple[int, ...]:
    return tuple([await count(crm, m) for m in (Contact, Deal, StageChange, Task, AuditEntry)])


async def test_rep_adds_a_lead_with_a_next_step(crm, team, events):
    rana = team["rana"]
    lead = await create_lead(
        crm, rana, name="  Rana Haddad ", company="Acme Trading", phone="050 123 4567",
        email="Rana.Haddad@Example.COM", source="Referral", value=Money(500_000, "aed"),
        tags=["#vip", "VIP", "Dubai"], next_step_at=T0 + timedelta(days=1),
    )
    c, d, t = lead.contact, lead.deal, lead.task
    assert (c.name, c.company, c.phone, c.email) == (
        "Rana Haddad", "Acme Trading", "+971501234567", "rana.haddad@example.com"
    )
    assert c.source == "referral" and c.tags == ["vip", "Dubai"] and c.owner_id == rana.user_id
    assert (d.stage, d.value_minor, d.currency, d.title) == ("new", 500_000, "AED", "Rana Haddad (Acme Trading)")
    assert d.contact_id == c.id and d.owner_id == rana.user_id and d.source == "referral"
    assert (t.title, t.due_at, t.deal_id, t.status) == ("Follow up with Rana Haddad", T0 + timedelta(days=1), d.id, "open")

    async with crm.reader() as uow:
        history = [(h.from_stage, h.to_stage, h.actor_id, h.at) for h in await uow.deals.stage_history(d.id)]
        audited = [(a.action, a.field) for a in await uow.audit.trail("deals", d.id)]
    assert history == [(None, "new", rana.user_id, T0)]
    assert audited == [("create_lead", "*created")]
    assert [e.name for e in events] == ["task_created", "lead_created"]
    assert events[-1].data == {"contact_id": c.id, "deal_id": d.id, "owner_id": rana.user_id}


async def test_lead_defaults_to_zero_in_team_currency_and_no_task(crm, team):
    lead = await create_lead(crm, team["rana"], company="Blue Fin LLC")
    assert (lead.deal.value_minor, lead.deal.currency, lead.deal.title) == (0, "USD", "Blue Fin LLC")
    assert lead.task is None
    assert await count(crm, Task) == 0


BAD_LEADS = [
    (dict(), "name", "name or a company"),
    (dict(name="   \x00 "), "name", "name or a company"),
    (dict(name="x" * 201), "name", "too long"),
    (dict(name="Sam", phone="12ab"), "phone", "Try +971 50 123 4567"),
    (dict(name="Sam", phone="+971 50 12"), "phone", "not a valid phone"),
    (dict(name="Sam", email="sam@"), "email", "name@example.com"),
    (dict(name="Sam", source="tv"), "source", "website, referral"),
    (dict(name="Sam", value=Money(-1, "USD")), "value", "negative"),
    (dict(name="Sam", value=Money(100, "XYZ")), "value", "USD or AED"),
    (dict(name="Sam", next_step="Send quote"), "next_step_at", "tomorrow 10:00"),
    (dict(name="Sam", next_step_at=T0.replace(tzinfo=None)), "next_step_at", "time zone"),
    (dict(name="Sam", tags=[f"t{i}" for i in range(21)]), "tags", "At most 20"),
]


@pytest.mark.parametrize("kwargs, field, words", BAD_LEADS)
async def test_bad_lead_input_is_refused_and_nothing_is_written(crm, team, kwargs, field, words):
    before = await counts(crm)
    with pytest.raises(InvalidInput) as err:
        await create_lead(crm, team["rana"], **kwargs)
    assert err.value.field == field and words in str(err.value)
    assert await counts(crm) == before


async def test_owner_assignment_follows_the_team(crm, team):
    with pytest.raises(NotAllowed, match="only assign records to yourself"):
        await create_lead(crm, team["rana"], name="Sam", owner_id=team["omar"].user_id)
    with pytest.raises(NotAllowed, match="your team"):
        await create_lead(crm, team["maya"], name="Sam", owner_id=team["lina"].user_id)
    assert await count(crm, Contact) == 0

    by_manager = await create_lead(crm, team["maya"], name="Sam", owner_id=team["omar"].user_id)
    by_admin = await create_lead(crm, team["admin"], name="Zed", owner_id=team["lina"].user_id)
    assert by_manager.contact.owner_id == by_manager.deal.owner_id == team["omar"].user_id
    assert by_admin.deal.owner_id == team["lina"].user_id


async def test_stranger_cannot_add_leads(crm, team):
    with pytest.raises(UnknownUser):
        await create_lead(crm, Actor(user_id=999), name="Sam")


async def test_same_phone_in_another_format_is_a_duplicate_even_in_another_pipeline(crm, team):
    await create_lead(crm, team["lina"], name="Rana Haddad", company="Acme", phone="+971 50 123 4567")
    before = await counts(crm)
    with pytest.raises(Duplicate) as err:
        await create_lead(crm, team["rana"], name="R. H.", phone="0501234567")
    match = err.value.candidates[0]
    assert (match.contact.name, match.owner_name, match.reason) == ("Rana Haddad", "Lina", "same phone")
    assert (match.contact.company, match.contact.phone, match.contact.email) == ("Acme", None, None)
    assert (await find_duplicates(crm, team["karim"], phone="0501234567"))[0].contact.phone == "+971501234567"
    assert str(err.value) == (
        "This looks like Rana Haddad (Acme), owned by Lina: same phone. "
        "Add the deal to that contact, or save a new contact anyway."
    )
    assert await counts(crm) == before


async def test_same_email_ignoring_case_is_a_duplicate(crm, team):
    await create_lead(crm, team["omar"], name="Noor", email="noor@shop.ae")
    matches = await find_duplicates(crm, team["rana"], email=" NOOR@Shop.AE ")
    assert [(m.contact.name, m.reason) for m in matches] == [("Noor", "same email")]


async def test_similar_name_is_a_duplicate_and_different_names_are_not(crm, team):
    await create_lead(crm, team["omar"], name="John Smith", company="Smith & Sons, Ltd.")
    await create_lead(crm, team["omar"], name="Maria Lopez")
    matches = await find_duplicates(crm, team["rana"], name="jon smith")
    assert [(m.contact.name, m.reason) for m in matches] == [("John Smith", "similar name (95%)")]
    company = await find_duplicates(crm, team["rana"], company="smith sons ltd")
    assert [m.reason for m in company] == ["similar company (100%)"]
    assert await find_duplicates(crm, team["rana"], name="Mario Lopes Gonzalez") == []
    assert await find_duplicates(crm, team["rana"], name="Peter Parker", phone="+971501112233") == []


async def test_exclude_id_ignores_the_contact_being_edited(crm, team):
    lead = await create_lead(crm, team["rana"], name="Noor", phone="+971501234567")
    assert await find_duplicates(crm, team["rana"], name="Noor", phone="+971501234567",
                                 exclude_id=lead.contact.id) == []


async def test_duplicate_allowed_on_purpose_or_deal_added_to_existing_contact(crm, team, events):
    first = await create_lead(crm, team["rana"], name="Noor", phone="+971501234567")
    second = await create_lead(crm, team["rana"], name="Noor", phone="+971501234567", allow_duplicate=True)
    assert second.contact.id != first.contact.id

    repeat = await create_lead(
        crm, team["rana"], existing_contact_id=first.contact.id, title="Second order",
        value=Money(12_000, "USD"),
    )
    assert repeat.contact.id == first.contact.id and repeat.deal.title == "Second order"
    assert await count(crm, Contact) == 2 and await count(crm, Deal) == 3
    with pytest.raises(NotFound):
        await create_lead(crm, team["lina"], existing_contact_id=first.contact.id, title="Mine now")


async def test_search_by_name_company_phone_and_email_only_in_scope(crm, team):
    rana, omar = team["rana"], team["omar"]
    haddad = (await create_lead(crm, rana, name="Rana Haddad", company="Acme Trading",
                                phone="+971 50 123 4567", email="rana@acme.ae")).contact
    await create_lead(crm, rana, name="Rami Hadid", company="Hadid Steel")
    await create_lead(crm, rana, name="Peter Parker", company="Daily Bugle")
    hidden = (await create_lead(crm, omar, name="Rana Haddadi", phone="+971 55 765 4321",
                              allow_duplicate=True)).contact

    names = [c.name for c in await search_contacts(crm, rana, "rana hadad")]
    assert names[0] == "Rana Haddad" and "Rana Haddadi" not in names and "Peter Parker" not in names
    assert [c.id for c in await search_contacts(crm, rana, "acme")] == [haddad.id]
    assert [c.id for c in await search_contacts(crm, rana, "4567")] == [haddad.id]
    assert [c.id for c in await search_contacts(crm, rana, "050-123-4567")] == [haddad.id]
    assert [c.id for c in await search_contacts(crm, rana, "RANA@acme")] == [haddad.id]
    assert await search_contacts(crm, rana, "4321") == []
    assert [c.id for c in await search_contacts(crm, team["maya"], "4321")] == [hidden.id]
    with pytest.raises(InvalidInput, match="4567"):
        await search_contacts(crm, rana, "   ")


async def test_recent_contacts_put_the_last_touched_first(crm, team, clock):
    rana = team["rana"]
    a = (await create_lead(crm, rana, name="Alpha")).contact
    clock.advance(minutes=5)
    await create_lead(crm, rana, name="Bravo")
    clock.advance(minutes=5)
    await log_interaction(crm, rana, contact_id=a.id, kind="call", summary="Called back")
    await create_lead(crm, team["omar"], name="Charlie")
    assert [c.name for c in await recent_contacts(crm, rana)] == ["Alpha", "Bravo"]
    assert [c.name for c in await recent_contacts(crm, team["maya"], limit=2)] == ["Charlie", "Alpha"]


async def test_visibility_rep_manager_admin(crm, team):
    contact = (await create_lead(crm, team["rana"], name="Noor")).contact
    for outsider in ("omar", "lina", "karim"):
        with pytest.raises(NotFound, match=f"No contact #{contact.id} that you can see"):
            await get_contact(crm, team[outsider], contact.id)
    for insider in ("rana", "maya", "admin"):
        assert (await get_contact(crm, team[insider], contact.id)).name == "Noor"


async def test_contact_card_shows_deals_tasks_history_and_contracts(crm, team, clock):
    rana = team["rana"]
    lead = await create_lead(crm, rana, name="Noor", next_step_at=T0 + timedelta(days=3))
    cid = lead.contact.id
    second = await create_lead(crm, rana, existing_contact_id=cid, title="Refill",
                               next_step_at=T0 + timedelta(days=1))
    for i in range(6):
        clock.advance(minutes=1)
        await log_interaction(crm, rana, contact_id=cid, kind="note", summary=f"note {i}")
    await complete_task(crm, rana, second.task.id)
    async with crm.uow() as uow:
        uow.session.add(Contract(deal_id=lead.deal.id, number="CTR-2026-0001", signed_on=date(2026, 12, 4),
                                 total_minor=1000, currency="USD", owner_id=rana.user_id, created_at=T0))
        await uow.commit()

    card = await contact_card(crm, team["maya"], cid)
    assert card.owner_name == "Rana" and card.contact.name == "Noor"
    assert [d.title for d in card.deals] == ["Noor", "Refill"]
    assert [t.id for t in card.open_tasks] == [lead.task.id]
    assert [i.summary for i in card.last_interactions] == ["note 5", "note 4", "note 3", "note 2", "note 1"]
    assert len(card.contract_ids) == 1
    with pytest.raises(NotFound):
        await contact_card(crm, team["omar"], cid)


async def test_update_contact_validates_and_audits_each_field(crm, team):
    rana = team["rana"]
    contact = (await create_lead(crm, rana, name="Noor", email="noor@shop.ae")).contact
    updated = await update_contact(crm, rana, contact.id, phone="050 123 4567", company="Noor Shop",
                                   email="noor@shop.ae")
    assert (updated.phone, updated.company) == ("+971501234567", "Noor Shop")
    async with crm.reader() as uow:
        trail = [(a.action, a.field, a.old_value, a.new_value)
                 for a in await uow.audit.trail("contacts", contact.id)]
    assert sorted(row[1:] for row in trail if row[0] == "update_contact") == [
        ("company", None, '"Noor Shop"'),
        ("phone", None, '"+971501234567"'),
    ]

    before = await counts(crm)
    with pytest.raises(InvalidInput, match="name@example.com"):
        await update_contact(crm, rana, contact.id, company="Other", email="nope")
    with pytest.raises(InvalidInput, match="name or a company"):
        await update_contact(crm, rana, contact.id, name="", company=" ")
    with pytest.raises(InvalidInput, match="You can change"):
        await update_contact(crm, rana, contact.id, stage="won")
    with pytest.raises(NotAllowed):
        await update_contact(crm, rana, contact.id, owner_id=team["omar"].user_id)
    with pytest.raises(NotFound):
        await update_contact(crm, team["lina"], contact.id, name="Mine")
    assert await counts(crm) == before
    assert (await get_contact(crm, rana, contact.id)).company == "Noor Shop"

    moved = await update_contact(crm, team["maya"], contact.id, owner_id=team["omar"].user_id)
    assert moved.owner_id == team["omar"].user_id


async def test_update_contact_to_someone_elses_phone_is_a_duplicate(crm, team):
    await create_lead(crm, team["lina"], name="Sara", phone="+971501234567")
    mine = (await create_lead(crm, team["rana"], name="Noor")).contact
    with pytest.raises(Duplicate, match="Sara"):
        await update_contact(crm, team["rana"], mine.id, phone="0501234567")
    assert (await get_contact(crm, team["rana"], mine.id)).phone is None
    forced = await update_contact(crm, team["rana"], mine.id, phone="0501234567", allow_duplicate=True)
    assert forced.phone == "+971501234567"
