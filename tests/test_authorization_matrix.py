"""Who may do what: every use case x every role x ownership, as one table.

The world: Rana (a rep of Maya) owns a lead with an open deal, a second won deal with a
contract and a payment, a task and an interaction. Each row of the table runs one use case as
one of five people against Rana's records, on a fresh database:

    admin · manager_of_owner (Maya) · other_manager (Omar) · owner (Rana) · other_rep (Sami,
    Maya's other rep: same team, still not his records)

and expects it to pass, or to fail with `NotFound` (the record is outside their scope, and the
error does not reveal it exists) or `NotAllowed` (their role may not do it at all). Lists are
checked by what they contain instead. Forged button values replay as the wrong person below.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from conversations.commands import load_all
from conversations.registry import ACTIONS, COMMANDS
from handlers import audit, channels, contacts, contracts, deals, interactions, invites, tasks, team
from handlers.errors import Conflict, DomainError, NotAllowed, NotFound
from handlers.values import Money
from storage.enums import Role, Stage
from storage.models import TeamChannel
from tests.conftest import T0
from tests.test_team import turn_of

ROLES = ("admin", "manager_of_owner", "other_manager", "owner", "other_rep")
OK = "ok"


@dataclass
class World:
    people: dict  # role -> Actor
    contact: int
    deal: int
    won_deal: int
    contract: int
    payment: int
    task: int
    interaction: int
    channel: str


@pytest.fixture
async def world(crm, make_user) -> World:
    admin = await make_user("Ada", "admin", identity=("telegram", "1"))
    maya = await make_user("Maya", "manager", identity=("telegram", "2"))
    omar = await make_user("Omar", "manager", identity=("telegram", "3"))
    rana = await make_user("Rana", "rep", manager=maya, identity=("telegram", "4"))
    sami = await make_user("Sami", "rep", manager=maya, identity=("telegram", "5"))
    lead = await contacts.create_lead(crm, rana, name="Lina Haddad", phone="+971501234567",
                                      value=Money(500_000, "USD"), title="Website")
    won = await contacts.create_lead(crm, rana, name="Karim Nassar", company="Nassar LLC",
                                     value=Money(120_000, "USD"), title="Retainer")
    contract = await contracts.win_deal_with_contract(
        crm, rana, won.deal.id, count=2, frequency="monthly", first_due=date(2027, 1, 1))
    paid = await contracts.record_payment(crm, rana, contract_id=contract.contract.id, amount_minor=10_000)
    task = await tasks.create_task(crm, rana, title="Send the proposal", due_at=T0 + timedelta(days=1),
                                   contact_id=lead.contact.id)
    note = await interactions.log_interaction(crm, rana, contact_id=lead.contact.id, kind="call",
                                              summary="Intro call, wants a quote")
    async with crm.uow() as uow:  # written directly: Maya's channel, with no audit rows of hers
        uow.session.add(TeamChannel(address="telegram:-100", platform="telegram", manager_id=maya.user_id,
                                    created_at=T0))
        await uow.commit()
    people = dict(admin=admin, manager_of_owner=maya, other_manager=omar, owner=rana, other_rep=sami)
    return World(people, lead.contact.id, lead.deal.id, won.deal.id, contract.contract.id,
                 paid.payment.id, task.id, note.id, "telegram:-100")


Call = Callable[..., Awaitable[object]]


def expect(admin, manager_of_owner, other_manager, owner, other_rep) -> dict[str, object]:
    return dict(admin=admin, manager_of_owner=manager_of_owner, other_manager=other_manager,
                owner=owner, other_rep=other_rep)


# Rana's records: her, her manager and admins; nobody else learns they exist.
RECORD = expect(OK, OK, NotFound, OK, NotFound)
# Managing Rana as a person: her manager and admins; reps may not manage anyone.
MANAGE_REP = expect(OK, OK, NotFound, NotAllowed, NotAllowed)
# Leaders' tools with no particular record.
LEADERS = expect(OK, OK, OK, NotAllowed, NotAllowed)
ADMIN_ONLY = expect(OK, NotAllowed, NotAllowed, NotAllowed, NotAllowed)
# Maya's team channel.
CHANNEL = expect(OK, OK, NotFound, NotAllowed, NotAllowed)
# Giving Rana a new record: herself, her manager, an admin.
ASSIGN = expect(OK, OK, NotAllowed, OK, NotAllowed)
# Undo reverses only your own last change; only Rana has made any here.
OWN_UNDO = expect(Conflict, Conflict, Conflict, OK, Conflict)

MATRIX: list[tuple[str, Call, dict]] = [
    # contacts
    ("get_contact", lambda c, a, w: contacts.get_contact(c, a, w.contact), RECORD),
    ("contact_card", lambda c, a, w: contacts.contact_card(c, a, w.contact), RECORD),
    ("update_contact", lambda c, a, w: contacts.update_contact(c, a, w.contact, company="Haddad Co"), RECORD),
    ("create_lead_for_owner", lambda c, a, w: contacts.create_lead(
        c, a, name="Omar Saleh", owner_id=w.people["owner"].user_id), ASSIGN),
    # deals
    ("get_deal", lambda c, a, w: deals.get_deal(c, a, w.deal), RECORD),
    ("move_deal", lambda c, a, w: deals.move_deal(c, a, w.deal, Stage.CONTACTED), RECORD),
    ("update_deal", lambda c, a, w: deals.update_deal(c, a, w.deal, title="Website v2"), RECORD),
    ("next_step", lambda c, a, w: deals.next_step(c, a, w.deal), RECORD),
    # interactions
    ("log_interaction", lambda c, a, w: interactions.log_interaction(
        c, a, contact_id=w.contact, kind="note", summary="Called back"), RECORD),
    ("history", lambda c, a, w: interactions.history(c, a, w.contact), RECORD),
    # tasks
    ("create_task_on_contact", lambda c, a, w: tasks.create_task(
        c, a, title="Check in", due_at=T0 + timedelta(days=2), contact_id=w.contact), RECORD),
    ("create_task_for_owner", lambda c, a, w: tasks.create_task(
        c, a, title="Call back", due_at=T0 + timedelta(days=2), owner_id=w.people["owner"].user_id), ASSIGN),
    ("get_task", lambda c, a, w: tasks.get_task(c, a, w.task), RECORD),
    ("complete_task", lambda c, a, w: tasks.complete_task(c, a, w.task), RECORD),
    ("cancel_task", lambda c, a, w: tasks.cancel_task(c, a, w.task), RECORD),
    ("snooze_task", lambda c, a, w: tasks.snooze_task(c, a, w.task, T0 + timedelta(hours=3)), RECORD),
    ("reschedule_task", lambda c, a, w: tasks.reschedule_task(c, a, w.task, T0 + timedelta(days=3)), RECORD),
    # contracts and payments
    ("preview_contract", lambda c, a, w: contracts.preview_contract(
        c, a, w.deal, count=3, frequency="monthly", first_due=date(2027, 1, 1)), RECORD),
    ("win_deal_with_contract", lambda c, a, w: contracts.win_deal_with_contract(
        c, a, w.deal, count=3, frequency="monthly", first_due=date(2027, 1, 1)), RECORD),
    ("contract_view", lambda c, a, w: contracts.contract_view(c, a, w.contract), RECORD),
    ("contracts_for_deal", lambda c, a, w: contracts.contracts_for_deal(c, a, w.won_deal), RECORD),
    ("open_invoices", lambda c, a, w: contracts.open_invoices(c, a, contract_id=w.contract), RECORD),
    ("record_payment", lambda c, a, w: contracts.record_payment(
        c, a, contract_id=w.contract, amount_minor=5_000), RECORD),
    ("void_payment", lambda c, a, w: contracts.void_payment(c, a, w.payment, reason="typo"), RECORD),
    # audit
    ("history_of_deal", lambda c, a, w: audit.history_of(c, a, "deal", w.deal), RECORD),
    ("history_of_payment", lambda c, a, w: audit.history_of(c, a, "payment", w.payment), RECORD),
    ("undo_last", lambda c, a, w: audit.undo_last(c, a), OWN_UNDO),
    # team
    ("team", lambda c, a, w: team.team(c, a), LEADERS),
    ("member", lambda c, a, w: team.member(c, a, w.people["owner"].user_id), MANAGE_REP),
    ("set_manager", lambda c, a, w: team.set_manager(
        c, a, w.people["owner"].user_id, w.people["other_manager"].user_id), MANAGE_REP),
    ("deactivate", lambda c, a, w: team.deactivate(
        c, a, w.people["owner"].user_id, reassign_to=w.people["manager_of_owner"].user_id), MANAGE_REP),
    ("change_role", lambda c, a, w: team.change_role(c, a, w.people["owner"].user_id, Role.MANAGER),
     ADMIN_ONLY),
    # invites
    ("create_invite_rep", lambda c, a, w: invites.create_invite(c, a, Role.REP), LEADERS),
    ("create_invite_manager", lambda c, a, w: invites.create_invite(c, a, Role.MANAGER),
     expect(OK, NotAllowed, NotAllowed, NotAllowed, NotAllowed)),
    ("create_link_code", lambda c, a, w: invites.create_link_code(c, a), expect(OK, OK, OK, OK, OK)),
    # channels
    ("list_channels", lambda c, a, w: channels.list_channels(c, a), LEADERS),
    ("set_channel_alert", lambda c, a, w: channels.set_channel_alert(c, a, w.channel, "won", False), CHANNEL),
    ("unregister_channel", lambda c, a, w: channels.unregister_channel(c, a, w.channel), CHANNEL),
]

CASES = [
    pytest.param(call, role, table[role], id=f"{name}-{role}")
    for name, call, table in MATRIX
    for role in ROLES
]


@pytest.mark.parametrize("call, role, outcome", CASES)
async def test_use_case_matrix(crm, world, call, role, outcome):
    actor = world.people[role]
    if outcome == OK:
        await call(crm, actor, world)  # allowed: it completes
    else:
        with pytest.raises(outcome) as caught:
            await call(crm, actor, world)
        # The message never names Rana's records: only ids the caller already had.
        assert "Lina" not in str(caught.value) and "Karim" not in str(caught.value)


async def _deal_ids(crm, actor):
    return {d.id for d in await deals.list_deals(crm, actor, open_only=False)}


async def _contact_ids(crm, actor):
    return {c.id for c in await contacts.search_contacts(crm, actor, "Lina")}


async def _contract_ids(crm, actor):
    return {v.contract.id for v in await contracts.list_contracts(crm, actor, open_only=False)}


async def _task_ids(crm, actor):
    board = await tasks.task_board(crm, actor)
    return {t.id for t in (*board.overdue, *board.today, *board.upcoming)}


LISTS = [
    ("list_deals", _deal_ids, lambda w: w.deal),
    ("search_contacts", _contact_ids, lambda w: w.contact),
    ("list_contracts", _contract_ids, lambda w: w.contract),
]
# (task_board is each person's own to-do list by design, so it shows only the owner's task.)
SEES = dict(admin=True, manager_of_owner=True, other_manager=False, owner=True, other_rep=False)


@pytest.mark.parametrize("name, listing, record", LISTS, ids=[n for n, _, _ in LISTS])
async def test_lists_show_exactly_the_records_in_scope(crm, world, name, listing, record):
    seen = {role: record(world) in await listing(crm, world.people[role]) for role in ROLES}
    assert seen == SEES


async def test_duplicate_check_shows_outsiders_only_who_owns_the_client(crm, world):
    """Two reps must not chase one client, so a match names it and its owner; its phone and
    email stay with the people who may see the record."""
    for role in ROLES:
        [match] = await contacts.find_duplicates(crm, world.people[role], phone="+971501234567")
        assert (match.contact.id, match.owner_name) == (world.contact, "Rana")
        assert (match.contact.phone is not None) == SEES[role], role


async def test_pipeline_figures_count_only_the_records_in_scope(crm, world):
    for role in ROLES:
        view = await deals.pipeline(crm, world.people[role])
        assert sum(row.count for row in view.stages) == (1 if SEES[role] else 0), role


async def test_the_task_board_is_personal(crm, world):
    seen = {role: world.task in await _task_ids(crm, world.people[role]) for role in ROLES}
    assert seen == {role: role == "owner" for role in ROLES}


async def test_a_deactivated_user_can_do_nothing(crm, world):
    from handlers.errors import UnknownUser

    rana = world.people["owner"]
    await team.deactivate(crm, world.people["admin"], rana.user_id,
                          reassign_to=world.people["other_rep"].user_id)
    for name, call, table in MATRIX:
        if table["owner"] == OK:
            with pytest.raises(UnknownUser):
                await call(crm, rana, world)


# --- forged button values ---------------------------------------------------------------------


async def _buttons_seen_by(crm, actor, role: str) -> set[str]:
    """Every button value the owner's /find, /tasks, /pipeline, /team and their contact card show."""
    load_all()
    turn = turn_of(crm, actor, role, user_id="4")
    values: set[str] = set()
    for text in ("find Lina", "tasks", "pipeline"):
        name, _, args = text.partition(" ")
        if name in COMMANDS:
            for reply in await COMMANDS[name].run(turn, args):
                values.update(c.value for c in reply.choices)
    return {v for v in values if v.partition(":")[0] in ACTIONS}


async def test_forged_buttons_replayed_by_outsiders_reveal_nothing(crm, world):
    """Values an owner's screens carry (ids of her records) are pressed by people outside her
    scope, as a modified client would: each is refused by the use case behind it."""
    values = await _buttons_seen_by(crm, world.people["owner"], "rep")
    values |= {f"team:dt:{world.people['owner'].user_id}:{world.people['other_rep'].user_id}",
               f"team:m:{world.people['owner'].user_id}",
               f"card:{world.contact}", f"task:done:{world.task}"}
    for role in ("other_manager", "other_rep"):
        turn = turn_of(crm, world.people[role], "manager" if role == "other_manager" else "rep", user_id="9")
        for value in sorted(values):
            prefix, _, rest = value.partition(":")
            try:
                replies = await ACTIONS[prefix](turn, rest.split(":") if rest else [])
            except (NotFound, NotAllowed):
                continue
            except DomainError as err:  # any other refusal must not leak either
                assert "Lina" not in str(err), value
                continue
            shown = " ".join(r.text.plain for r in replies)
            assert "Lina" not in shown and "Send the proposal" not in shown, (role, value, shown)
    async with crm.reader() as uow:  # and nothing changed
        assert (await uow.tasks.get(world.task)).status == "open"
        assert (await uow.users.get(world.people["owner"].user_id)).active
