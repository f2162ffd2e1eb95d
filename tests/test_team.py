"""The team: listing, roles, managers, deactivation with hand-over, and own settings."""
from datetime import date, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

import conversations.commands.team  # noqa: F401  (registers the commands)
from conversations.messages import Inbound
from conversations.registry import ACTIONS, COMMANDS, Turn

from handlers.errors import Conflict, InvalidInput, NotAllowed, NotFound, UnknownUser
from handlers.team import change_role, deactivate, handover_candidates, set_manager, team
from handlers.users import identify, parse_days, update_settings
from storage.enums import Role
from storage.models import AuditEntry, Contact, Contract, Deal, Installment, Task, User
from tests.conftest import T0


@pytest.fixture
async def org(make_user):
    """An admin, two managers with a rep each, and a second rep under the first manager."""
    admin = await make_user("Ada", "admin", identity=("telegram", "1"))
    maya = await make_user("Maya", "manager", identity=("telegram", "2"))
    omar = await make_user("Omar", "manager", identity=("slack", "U3"))
    rana = await make_user("Rana", "rep", manager=maya, identity=("telegram", "4"))
    sami = await make_user("Sami", "rep", manager=maya, identity=("slack", "U5"))
    tess = await make_user("Tess", "rep", manager=omar, identity=("telegram", "6"))
    return dict(admin=admin, maya=maya, omar=omar, rana=rana, sami=sami, tess=tess)


async def give_work(crm, owner) -> dict[str, int]:
    """One contact with an open and a won deal, an open and a done task, an unsettled and a
    settled contract, all owned by `owner`."""
    async with crm.uow() as uow:
        contact = Contact(name="Lina", owner_id=owner.user_id, created_at=T0)
        uow.session.add(contact)
        await uow.flush()

        def deal(stage):
            return Deal(contact_id=contact.id, title=f"{stage} deal", currency="USD", stage=stage,
                        owner_id=owner.user_id, created_at=T0, stage_changed_at=T0, last_touched_at=T0)

        open_deal, won, won2 = deal("proposal"), deal("won"), deal("won")
        uow.session.add_all([open_deal, won, won2])
        await uow.flush()
        uow.session.add_all([
            Task(title="Call Lina", due_at=T0, owner_id=owner.user_id, status="open", created_at=T0),
            Task(title="Old", due_at=T0, owner_id=owner.user_id, status="done", created_at=T0),
        ])
        unsettled = Contract(deal_id=won.id, number="CTR-1", signed_on=date(2026, 12, 1), total_minor=1000,
                             currency="USD", owner_id=owner.user_id, created_at=T0)
        settled = Contract(deal_id=won2.id, number="CTR-2", signed_on=date(2026, 12, 1), total_minor=500,
                           currency="USD", owner_id=owner.user_id, created_at=T0)
        uow.session.add_all([unsettled, settled])
        await uow.flush()
        uow.session.add_all([
            Installment(contract_id=unsettled.id, seq=1, invoice_number="INV-1", due_date=date(2026, 12, 30),
                        amount_minor=1000, status="open"),
            Installment(contract_id=settled.id, seq=1, invoice_number="INV-2", due_date=date(2026, 11, 30),
                        amount_minor=500, status="paid"),
        ])
        await uow.commit()
        return dict(contact=contact.id, open_deal=open_deal.id, won=won.id, unsettled=unsettled.id,
                    settled=settled.id)


async def owners(crm, model, user_id) -> int:
    async with crm.reader() as uow:
        stmt = select(func.count()).select_from(model).where(model.owner_id == user_id)
        return (await uow.session.execute(stmt)).scalar_one()


async def test_admin_sees_everyone_with_platforms_and_open_deals(crm, org):
    await give_work(crm, org["rana"])
    members = await team(crm, org["admin"])
    assert [m.user.display_name for m in members] == ["Ada", "Maya", "Omar", "Rana", "Sami", "Tess"]
    rana = members[3]
    assert rana.platforms == ("telegram",) and rana.open_deals == 1  # the won deal is not open


async def test_manager_sees_only_their_team_and_a_rep_is_refused(crm, org):
    members = await team(crm, org["maya"])
    assert [m.user.display_name for m in members] == ["Maya", "Rana", "Sami"]
    with pytest.raises(NotAllowed, match="admin or manager"):
        await team(crm, org["rana"])


async def test_admin_changes_a_role_and_it_is_audited(crm, org):
    user = await change_role(crm, org["admin"], org["tess"].user_id, Role.MANAGER)
    assert user.role == "manager" and user.manager_id is None
    async with crm.reader() as uow:
        trail = {(e.field, e.new_value) for e in await uow.audit.trail("users", org["tess"].user_id)}
    assert trail >= {("role", '"manager"'), ("manager_id", None)}


async def test_only_an_admin_changes_roles(crm, org):
    with pytest.raises(NotAllowed):
        await change_role(crm, org["maya"], org["rana"].user_id, Role.MANAGER)


async def test_last_admin_cannot_be_demoted_and_a_manager_with_reps_cannot_become_a_rep(crm, org):
    with pytest.raises(Conflict, match="last admin"):
        await change_role(crm, org["admin"], org["admin"].user_id, Role.REP)
    with pytest.raises(Conflict, match="manages 2 rep"):
        await change_role(crm, org["admin"], org["maya"].user_id, Role.REP)


async def test_manager_moves_own_rep_to_another_manager_but_not_someone_elses(crm, org):
    moved = await set_manager(crm, org["maya"], org["rana"].user_id, org["omar"].user_id)
    assert moved.manager_id == org["omar"].user_id
    with pytest.raises(NotFound):  # Rana is Omar's now: Maya can no longer touch her
        await set_manager(crm, org["maya"], org["rana"].user_id, org["maya"].user_id)
    with pytest.raises(NotFound, match="No active manager"):
        await set_manager(crm, org["admin"], org["tess"].user_id, org["sami"].user_id)


async def test_deactivate_hands_over_everything_open_in_one_change(crm, org):
    ids = await give_work(crm, org["rana"])
    result = await deactivate(crm, org["maya"], org["rana"].user_id, reassign_to=org["sami"].user_id)
    assert (result.deals, result.contacts, result.tasks, result.contracts) == (1, 1, 1, 1)
    rana, sami = org["rana"].user_id, org["sami"].user_id
    async with crm.reader() as uow:
        assert (await uow.deals.get(ids["open_deal"])).owner_id == sami
        assert (await uow.deals.get(ids["won"])).owner_id == rana  # history stays hers
        assert (await uow.contacts.get(ids["contact"])).owner_id == sami
        assert (await uow.contracts.get(ids["unsettled"])).owner_id == sami
        assert (await uow.contracts.get(ids["settled"])).owner_id == rana
        changes = await uow.session.execute(
            select(func.count(func.distinct(AuditEntry.change_id))).where(AuditEntry.action == "deactivate")
        )
        assert changes.scalar_one() == 1
    assert await owners(crm, Task, sami) == 1 and await owners(crm, Task, rana) == 1  # the done one
    assert await identify(crm, "telegram", "4") is None
    with pytest.raises(UnknownUser):
        await team(crm, org["rana"])


async def test_deactivating_a_manager_moves_their_reps_to_the_new_manager(crm, org):
    result = await deactivate(crm, org["admin"], org["maya"].user_id, reassign_to=org["omar"].user_id)
    assert result.reps == 2
    assert [m.user.display_name for m in await team(crm, org["omar"])] == ["Omar", "Rana", "Sami", "Tess"]


async def test_deactivation_refusals(crm, org):
    with pytest.raises(NotAllowed, match="yourself"):
        await deactivate(crm, org["admin"], org["admin"].user_id, reassign_to=org["maya"].user_id)
    with pytest.raises(NotFound):  # not Maya's rep
        await deactivate(crm, org["maya"], org["tess"].user_id, reassign_to=org["maya"].user_id)
    with pytest.raises(NotFound, match="take over"):  # Tess is outside Maya's team
        await deactivate(crm, org["maya"], org["rana"].user_id, reassign_to=org["tess"].user_id)
    with pytest.raises(NotAllowed):
        await deactivate(crm, org["rana"], org["sami"].user_id, reassign_to=org["rana"].user_id)
    async with crm.reader() as uow:
        assert all(u.active for u in await uow.users.active()) and await uow.users.count() == 6


async def test_the_last_admin_cannot_be_deactivated(crm, org, make_user):
    second = await make_user("Bea", "admin")
    await deactivate(crm, second, org["admin"].user_id, reassign_to=second.user_id)
    third = await make_user("Cy", "admin")
    await change_role(crm, third, third.user_id, Role.REP)  # allowed: Bea is still an admin
    with pytest.raises(Conflict, match="last admin"):
        await change_role(crm, second, second.user_id, Role.REP)


async def test_handover_candidates_are_in_the_actors_scope(crm, org):
    names = [u.display_name for u in await handover_candidates(crm, org["maya"], org["rana"].user_id)]
    assert names == ["Maya", "Sami"]


async def test_update_settings_validates_and_normalises(crm, org):
    user = await update_settings(
        crm, org["rana"], timezone="asia/dubai", language="pt-BR", work_start="8:30",
        work_end="17:00", work_days="sun-thu", quiet_start="20:00", quiet_end="07:00",
    )
    assert (user.timezone, user.language, user.work_start, user.work_end) == (
        "Asia/Dubai", "pt_BR", time(8, 30), time(17, 0))
    assert user.work_days == "0,1,2,3,6"
    assert (user.quiet_start, user.quiet_end) == (time(20, 0), time(7, 0))
    cleared = await update_settings(crm, org["rana"], clear_quiet=True)
    assert cleared.quiet_start is None and cleared.quiet_end is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(timezone="Mars/Olympus"), "Try Asia/Dubai"),
        (dict(language="klingon"), "Try en, ar"),
        (dict(work_start="25:00"), "like 09:00"),
        (dict(work_start="19:00"), "end after they start"),
        (dict(work_days="funday"), "Try mon-fri"),
        (dict(quiet_start="20:00"), "start and end"),
        (dict(quiet_start="20:00", quiet_end="20:00"), "same time"),
    ],
)
async def test_bad_settings_change_nothing(crm, org, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        await update_settings(crm, org["rana"], **{"language": "fr", **kwargs})
    async with crm.reader() as uow:
        user = await uow.session.get(User, org["rana"].user_id)
        assert (user.timezone, user.language, user.work_start) == ("UTC", "en", time(9, 0))


def test_days_parse_ranges_lists_and_wrapping_weeks():
    assert parse_days("mon-fri") == (0, 1, 2, 3, 4)
    assert parse_days("Monday, Wednesday,fri") == (0, 2, 4)
    assert parse_days("sat-mon") == (0, 5, 6)


# --- chat commands --------------------------------------------------------------------------

def turn_of(crm, actor, role="rep", *, platform="telegram", user_id="1", chat_id=None,
            is_group=False, display_name=None, tz="UTC") -> Turn:
    """What the router hands a command: the actor (None for a stranger) and the message."""
    inbound = Inbound(platform=platform, chat_id=chat_id or user_id, user_id=user_id,
                      display_name=display_name, is_group=is_group)
    return Turn(crm=crm, actor=actor, inbound=inbound, tz=ZoneInfo(tz), role=role)


async def say(turn: Turn, text: str):
    """Run `/name args` as the router would; returns the replies."""
    name, _, args = text.lstrip("/").partition(" ")
    return await COMMANDS[name].run(turn, args.strip())


async def press(turn: Turn, value: str):
    prefix, _, rest = value.partition(":")
    return await ACTIONS[prefix](turn, rest.split(":") if rest else [])


def button(reply, label: str) -> str:
    return next(c.value for c in reply.choices if c.label.startswith(label))


async def test_team_command_lists_members_with_a_button_each(crm, org):
    [reply] = await say(turn_of(crm, org["maya"], "manager"), "/team")
    assert reply.text.plain.splitlines() == [
        "👥 Team (3)",
        "• Maya — manager · telegram · 0 open deals",
        "• Rana — rep (Maya) · telegram · 0 open deals",
        "• Sami — rep (Maya) · slack · 0 open deals",
        "Tap a name to change their role, manager, or deactivate them.",
    ]
    assert [c.label for c in reply.choices] == ["⚙️ Rana", "⚙️ Sami"]


async def test_deactivating_from_the_team_buttons(crm, org):
    await give_work(crm, org["rana"])
    admin = turn_of(crm, org["admin"], "admin")
    [listing] = await say(admin, "/team")
    [card] = await press(admin, button(listing, "⚙️ Rana"))
    assert [c.label for c in card.choices] == [
        "Make admin", "Make manager", "Move to another manager", "Deactivate"]
    [ask] = await press(admin, button(card, "Deactivate"))
    assert "Who takes over" in ask.text.plain
    assert [c.label for c in ask.choices] == ["Ada", "Maya", "Omar", "Sami", "Tess"]
    [done] = await press(admin, button(ask, "Sami"))
    assert done.text.plain == (
        "✅ Rana is deactivated. Sami took over 1 deal, 1 contact, 1 task, 1 contract.")


async def test_moving_and_promoting_from_the_buttons(crm, org):
    admin = turn_of(crm, org["admin"], "admin")
    [ask] = await press(admin, f"team:mv:{org['rana'].user_id}")
    assert [c.label for c in ask.choices] == ["Omar", "No manager"]
    [moved] = await press(admin, button(ask, "Omar"))
    assert moved.text.plain == "✅ Moved Rana."
    [promoted] = await press(admin, f"team:r:{org['tess'].user_id}:admin")
    assert promoted.text.plain == "✅ Tess is now an admin."


async def test_forged_team_buttons_are_refused_by_the_use_cases(crm, org):
    rana, sami, tess = org["rana"].user_id, org["sami"].user_id, org["tess"].user_id
    rep = turn_of(crm, org["rana"])
    with pytest.raises(NotAllowed):
        await press(rep, f"team:dt:{sami}:{rana}")
    with pytest.raises(NotAllowed):  # a manager forging an admin-only role button
        await press(turn_of(crm, org["maya"], "admin"), f"team:r:{rana}:admin")
    with pytest.raises(NotFound):  # Tess is on Omar's team
        await press(turn_of(crm, org["maya"], "manager"), f"team:dt:{tess}:{rana}")
    for junk in ("team", "team:zz:1", "team:m:²", "team:dt:abc:1", "team:dt:1", f"team:r:{rana}:king",
                 "team:m:99999999999999999"):
        [reply] = await press(rep, junk)
        assert reply.text.plain == "That button is out of date. Send /team again."
    async with crm.reader() as uow:
        assert [u.display_name for u in await uow.users.active()] == [
            "Ada", "Maya", "Omar", "Rana", "Sami", "Tess"]


async def test_settings_command(crm, org):
    turn = turn_of(crm, org["rana"])
    [shown] = await say(turn, "/settings")
    assert "Working hours: 09:00–18:00, mon, tue, wed, thu, fri" in shown.text.plain
    assert "/settings timezone Asia/Dubai" in shown.text.plain
    [saved] = await say(turn, "/settings hours 08:00-17:30")
    assert "Working hours: 08:00–17:30" in saved.text.plain
    [saved] = await say(turn, "/settings quiet 21:00-07:00")
    assert "Quiet hours: 21:00–07:00" in saved.text.plain
    [saved] = await say(turn, "/settings quiet off")
    assert "Quiet hours: off" in saved.text.plain
    [saved] = await say(turn, "/settings days sun-thu")
    assert "mon, tue, wed, thu, sun" in saved.text.plain
    with pytest.raises(InvalidInput, match="Try /settings hours 09:00-18:00"):
        await say(turn, "/settings colour blue")
    with pytest.raises(InvalidInput, match="like 09:00-18:00"):
        await say(turn, "/settings hours 9")
    with pytest.raises(InvalidInput, match="/settings language ar"):
        await say(turn, "/settings timezone")


async def test_history_and_undo_commands(crm, org, clock):
    from handlers import contacts, deals
    from handlers.values import Money

    rana = turn_of(crm, org["rana"], user_id="4")
    lead = await contacts.create_lead(crm, org["rana"], name="Lina Haddad", value=Money(90_000, "USD"),
                                      title="Website")
    clock.advance(minutes=1)
    await deals.move_deal(crm, org["rana"], lead.deal.id, "contacted")

    [reply] = await say(rana, f"/history deal {lead.deal.id}")
    lines = reply.text.plain.splitlines()
    assert lines[0] == f"🕓 History of deal #{lead.deal.id}"
    assert lines[1:] == [
        "Fri 04 Dec, 09:01 · Rana (telegram) · move deal: stage new → contacted",
        "Fri 04 Dec, 09:00 · Rana (telegram) · create lead: created",
    ]
    [by_name] = await say(rana, "/history lina")
    assert by_name.text.plain.startswith(f"🕓 History of contact #{lead.contact.id}")
    [none] = await say(rana, "/history Nobody Here")
    assert none.text.plain.startswith("🔎 No contact matches")
    with pytest.raises(NotFound):  # Tess is outside Maya's team
        await say(turn_of(crm, org["tess"], user_id="6"), f"/history deal {lead.deal.id}")
    [stale] = await press(rana, "hist:deal:x")
    assert stale.text.plain.startswith("That button is out of date")

    [undone] = await say(rana, "/undo")
    assert undone.text.plain.startswith("↩️ Undone (move deal)")
    async with crm.reader() as uow:
        assert (await uow.deals.get(lead.deal.id)).stage == "new"
    with pytest.raises(InvalidInput, match="/history deal 12"):
        await say(rana, "/history")


async def test_ids_beyond_32_bits_read_as_not_found(crm, org):
    with pytest.raises(NotFound):
        await set_manager(crm, org["admin"], 2**31, org["maya"].user_id)
    with pytest.raises(NotFound):
        await set_manager(crm, org["admin"], org["rana"].user_id, 2**40)
    with pytest.raises(NotFound):
        await deactivate(crm, org["admin"], org["rana"].user_id, reassign_to=2**63)
    [reply] = await press(turn_of(crm, org["admin"], "admin"), "team:m:2147483648")
    assert reply.text.plain.startswith("That button is out of date")


async def test_slack_profile_zone_is_adopted_until_the_user_chooses_one(crm, make_user):
    """The platform's zone applies while the user has not picked one in /settings."""
    from conversations.messages import Inbound
    from conversations.router import Router
    from handlers.users import update_settings
    from storage.models import User

    rep = await make_user("Sara", identity=("slack", "U1"))
    router = Router(crm)
    msg = Inbound(platform="slack", chat_id="D1", user_id="U1", text="/help", timezone="Asia/Dubai")
    await router.handle(msg)
    async with crm.reader() as uow:
        assert (await uow.session.get(User, rep.user_id)).timezone == "Asia/Dubai"
    await update_settings(crm, rep, timezone="Europe/Berlin")
    await router.handle(msg)
    async with crm.reader() as uow:
        assert (await uow.session.get(User, rep.user_id)).timezone == "Europe/Berlin"
