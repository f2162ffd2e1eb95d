"""Invites (join with a role) and link codes (one person on two platforms)."""
import re

import pytest
from sqlalchemy import func, select

from handlers.errors import Conflict, InvalidInput, NotAllowed, NotFound, UnknownUser
from handlers.invites import create_invite, create_link_code, join, link_identity
from handlers.team import deactivate, team
from handlers.users import identify
from storage.enums import Role
from storage.models import Identity
from tests.test_team import say, turn_of

TELEGRAM_START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")


@pytest.fixture
async def org(make_user):
    admin = await make_user("Ada", "admin", identity=("telegram", "1"))
    maya = await make_user("Maya", "manager", identity=("telegram", "2"))
    rana = await make_user("Rana", "rep", manager=maya, identity=("telegram", "4"))
    return dict(admin=admin, maya=maya, rana=rana)


async def user_count(crm) -> int:
    async with crm.reader() as uow:
        return await uow.users.count()


async def test_manager_invites_a_rep_who_joins_their_team(crm, org, clock):
    invite = await create_invite(crm, org["maya"], Role.REP, bot_username="acme_crm_bot")
    assert TELEGRAM_START_PAYLOAD.fullmatch(invite.code) and len(invite.code) <= 32
    assert invite.deep_link == f"https://t.me/acme_crm_bot?start={invite.code}"
    assert (invite.expires_at - clock.now()).total_seconds() == 72 * 3600

    actor = await join(crm, code=invite.code, platform="slack", platform_user_id="U77",
                       display_name="Noor ✨ نور", timezone="Asia/Dubai")
    assert await identify(crm, "slack", "U77") == actor
    async with crm.reader() as uow:
        user = await uow.users.get(actor.user_id)
        assert (user.display_name, user.role, user.manager_id, user.timezone) == (
            "Noor ✨ نور", "rep", org["maya"].user_id, "Asia/Dubai")
        identity = await uow.users.identity("slack", "U77")
        assert identity.dm_address == "slack:U77"
    assert "Noor ✨ نور" in [m.user.display_name for m in await team(crm, org["maya"])]


async def test_join_emits_user_joined(crm, org):
    seen = []

    async def hook(uow, events):
        seen.extend(e for e in events if e.name == "user_joined")

    crm.hooks.append(hook)
    invite = await create_invite(crm, org["admin"], Role.MANAGER)
    actor = await join(crm, code=invite.code, platform="telegram", platform_user_id="9", display_name="Zed")
    assert [e.data for e in seen] == [{"user_id": actor.user_id}]


async def test_an_invite_works_once(crm, org):
    invite = await create_invite(crm, org["admin"], Role.REP)
    await join(crm, code=invite.code, platform="telegram", platform_user_id="9", display_name="Zed")
    with pytest.raises(Conflict, match="already used"):
        await join(crm, code=invite.code, platform="telegram", platform_user_id="10", display_name="Yara")
    assert await identify(crm, "telegram", "10") is None


async def test_an_invite_expires(crm, org, clock):
    invite = await create_invite(crm, org["admin"], Role.REP, ttl_hours=1)
    clock.advance(hours=1)
    with pytest.raises(Conflict, match="expired"):
        await join(crm, code=invite.code, platform="telegram", platform_user_id="9", display_name="Zed")


async def test_an_existing_user_is_told_so_and_nothing_is_used_up(crm, org):
    invite = await create_invite(crm, org["admin"], Role.REP)
    with pytest.raises(Conflict, match="already a ChatCRM user"):
        await join(crm, code=invite.code, platform="telegram", platform_user_id="4", display_name="Rana")
    await join(crm, code=invite.code, platform="telegram", platform_user_id="9", display_name="Zed")


@pytest.mark.parametrize("code, error", [
    ("short", InvalidInput), ("<b>x</b>" * 5, InvalidInput), ("A" * 24, NotFound), ("", InvalidInput),
])
async def test_bad_codes_get_a_clear_message_and_create_nobody(crm, org, code, error):
    before = await user_count(crm)
    with pytest.raises(error, match="code"):
        await join(crm, code=code, platform="telegram", platform_user_id="9", display_name="Zed")
    assert await user_count(crm) == before


async def test_who_may_invite_whom(crm, org):
    with pytest.raises(NotAllowed, match="reps only"):
        await create_invite(crm, org["maya"], Role.MANAGER)
    with pytest.raises(NotAllowed, match="own team"):
        await create_invite(crm, org["maya"], Role.REP, manager_id=org["admin"].user_id)
    with pytest.raises(NotAllowed):
        await create_invite(crm, org["rana"], Role.REP)
    with pytest.raises(InvalidInput, match="active manager"):
        await create_invite(crm, org["admin"], Role.REP, manager_id=org["rana"].user_id)
    admin_invite = await create_invite(crm, org["admin"], Role.ADMIN)
    assert admin_invite.deep_link is None and admin_invite.role == Role.ADMIN


async def test_an_invite_from_someone_since_deactivated_is_void(crm, org, make_user):
    invite = await create_invite(crm, org["maya"], Role.REP)
    await deactivate(crm, org["admin"], org["maya"].user_id, reassign_to=org["admin"].user_id)
    with pytest.raises(Conflict, match="no longer valid"):
        await join(crm, code=invite.code, platform="telegram", platform_user_id="9", display_name="Zed")


async def test_a_nameless_newcomer_gets_a_readable_name(crm, org):
    invite = await create_invite(crm, org["admin"], Role.REP)
    actor = await join(crm, code=invite.code, platform="slack", platform_user_id="U9",
                       display_name="\x00\x07  ", timezone="Not/AZone")
    async with crm.reader() as uow:
        user = await uow.users.get(actor.user_id)
        assert (user.display_name, user.timezone) == ("Slack user U9", "UTC")


async def test_link_code_attaches_a_second_platform_to_the_same_user(crm, org):
    code = await create_link_code(crm, org["rana"])
    actor = await link_identity(crm, code=code, platform="slack", platform_user_id="U4",
                                dm_address="slack:D4:U4")
    assert actor.user_id == org["rana"].user_id
    assert (await identify(crm, "slack", "U4")).user_id == org["rana"].user_id
    members = {m.user.display_name: m.platforms for m in await team(crm, org["maya"])}
    assert members["Rana"] == ("telegram", "slack")
    with pytest.raises(Conflict, match="already used"):
        await link_identity(crm, code=code, platform="console", platform_user_id="local")


async def test_link_refusals(crm, org, clock):
    code = await create_link_code(crm, org["rana"])
    with pytest.raises(Conflict, match="already use ChatCRM on Telegram"):
        await link_identity(crm, code=code, platform="telegram", platform_user_id="99")
    with pytest.raises(Conflict, match="already linked to you"):
        await link_identity(crm, code=code, platform="telegram", platform_user_id="4")
    with pytest.raises(Conflict, match="another ChatCRM user"):
        await link_identity(crm, code=code, platform="telegram", platform_user_id="2")
    invite = await create_invite(crm, org["admin"], Role.REP)
    with pytest.raises(NotFound):  # an invite is not a link code
        await link_identity(crm, code=invite.code, platform="slack", platform_user_id="U4")
    clock.advance(minutes=15)
    with pytest.raises(Conflict, match="expired"):
        await link_identity(crm, code=code, platform="slack", platform_user_id="U4")
    async with crm.reader() as uow:
        count = select(func.count(Identity.id)).where(Identity.user_id == org["rana"].user_id)
        assert (await uow.session.execute(count)).scalar_one() == 1


async def test_a_stranger_cannot_make_link_codes(crm, org):
    from handlers.context import Actor

    with pytest.raises(UnknownUser):
        await create_link_code(crm, Actor(user_id=999))


async def test_join_and_link_are_audited_as_the_newcomer(crm, org):
    invite = await create_invite(crm, org["admin"], Role.REP)
    actor = await join(crm, code=invite.code, platform="telegram", platform_user_id="9", display_name="Zed")
    async with crm.reader() as uow:
        trail = await uow.audit.trail("users", actor.user_id)
        assert [(e.action, e.actor_id, e.platform) for e in trail] == [("join", actor.user_id, "telegram")]


async def test_add_member_directly_follows_the_invite_rules(crm, org):
    from handlers.invites import add_member

    actor = await add_member(crm, org["maya"], platform="slack", platform_user_id="U8", display_name="Kai")
    async with crm.reader() as uow:
        user = await uow.users.get(actor.user_id)
        assert (user.role, user.manager_id) == ("rep", org["maya"].user_id)
    with pytest.raises(Conflict, match="Kai is already on ChatCRM"):
        await add_member(crm, org["admin"], platform="slack", platform_user_id="U8", display_name="Kai")
    with pytest.raises(NotAllowed, match="reps only"):
        await add_member(crm, org["maya"], platform="slack", platform_user_id="U9", display_name="X",
                         role=Role.ADMIN)
    with pytest.raises(NotAllowed):
        await add_member(crm, org["rana"], platform="slack", platform_user_id="U9", display_name="X")
    with pytest.raises(InvalidInput, match="rep, manager or admin"):
        await add_member(crm, org["admin"], platform="slack", platform_user_id="U9", display_name="X",
                         role="boss")
    assert await identify(crm, "slack", "U9") is None


# --- chat commands --------------------------------------------------------------------------


async def test_invite_then_join_in_chat(crm, org):
    [reply] = await say(turn_of(crm, org["maya"], "manager"), "/invite rep")
    lines = reply.text.plain.splitlines()
    assert lines[0] == "🎟 Invite for a rep (one use, until Mon 07 Dec, 09:00)."
    assert len(lines) == 2  # no Telegram bot username configured: no deep link line
    join_text = lines[1].removeprefix("Anywhere else they send: ")
    stranger = turn_of(crm, None, platform="slack", user_id="U77", chat_id="D77", display_name="Noor")
    [welcome] = await say(stranger, join_text)
    assert welcome.text.plain.startswith("🎉 Welcome to ChatCRM!")
    actor = await identify(crm, "slack", "U77")
    async with crm.reader() as uow:
        assert (await uow.users.identity("slack", "U77")).dm_address == "slack:D77"
        assert (await uow.users.get(actor.user_id)).manager_id == org["maya"].user_id
    [again] = await say(turn_of(crm, actor, platform="slack", user_id="U77"), join_text)
    assert again.text.plain.startswith("You're already on ChatCRM")


async def test_invite_shows_the_telegram_deep_link_when_the_bot_is_known(crm, org, monkeypatch):
    monkeypatch.setattr(crm, "settings", crm.settings.model_copy(update={"telegram_bot_username": "acme_bot"}),
                        raising=False)
    [reply] = await say(turn_of(crm, org["admin"], "admin"), "/invite manager")
    [deep] = [s for s in reply.text.spans if s.style == "link"]
    assert deep.url.startswith("https://t.me/acme_bot?start=")


async def test_invite_command_refusals(crm, org):
    with pytest.raises(InvalidInput, match="/invite rep"):
        await say(turn_of(crm, org["admin"], "admin"), "/invite boss")
    with pytest.raises(NotAllowed):
        await say(turn_of(crm, org["rana"]), "/invite rep")
    with pytest.raises(InvalidInput, match="/join Ab3x"):
        await say(turn_of(crm, None, user_id="55"), "/join")


async def test_link_in_chat(crm, org):
    [reply] = await say(turn_of(crm, org["rana"], user_id="4"), "/link")
    command = reply.text.spans[-1].text
    assert command.startswith("/link ") and "15 minutes" in reply.text.plain
    [linked] = await say(turn_of(crm, None, platform="slack", user_id="U4", chat_id="D4"), command)
    assert linked.text.plain.startswith("🔗 Linked.")
    assert (await identify(crm, "slack", "U4")).user_id == org["rana"].user_id
    with pytest.raises(InvalidInput, match="in the app you already use"):
        await say(turn_of(crm, None, user_id="55"), "/link")


async def test_two_people_racing_for_one_invite_make_one_user(crm, org):
    import asyncio

    invite = await create_invite(crm, org["admin"], Role.REP)
    before = await user_count(crm)
    results = await asyncio.gather(
        *(join(crm, code=invite.code, platform="telegram", platform_user_id=str(100 + i), display_name="Zed")
          for i in range(3)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert await user_count(crm) == before + 1


async def test_a_stranger_joins_and_links_through_the_router(crm, org):
    from conversations.messages import Inbound
    from conversations.router import Router

    router = Router(crm)

    def from_slack(text):
        return Inbound(platform="slack", chat_id="D9", user_id="U9", text=text, display_name="Noor")

    [refused] = await router.handle(from_slack("hello"))
    assert "U9" in refused.text.plain and "/join" in refused.text.plain
    invite = await create_invite(crm, org["admin"], Role.REP)
    [welcome] = await router.handle(from_slack(f"/join {invite.code}"))
    assert welcome.text.plain.startswith("🎉 Welcome to ChatCRM!")
    [again] = await router.handle(from_slack(f"/join {invite.code}"))
    assert again.text.plain.startswith("You're already on ChatCRM")

    [made] = await router.handle(Inbound(platform="telegram", chat_id="4", user_id="4", text="/link"))
    link_text = made.text.spans[-1].text
    [linked] = await router.handle(Inbound(platform="console", chat_id="local", user_id="local", text=link_text))
    assert linked.text.plain.startswith("🔗 Linked.")
    assert (await identify(crm, "console", "local")).user_id == org["rana"].user_id


async def test_slack_admin_adds_a_workspace_member_by_mention(crm, make_user):
    """`/crm invite @sara rep` on Slack adds the member at once; they are then recognised."""
    from conversations.messages import Inbound
    from conversations.router import Router
    from handlers.users import identify

    await make_user("Boss", role="admin", identity=("slack", "UADMIN"))
    router = Router(crm)
    replies = await router.handle(Inbound(platform="slack", chat_id="DADMIN", user_id="UADMIN",
                                          text="/invite <@U0456|sara> rep"))
    assert "Added sara as a rep" in replies[0].text.plain
    sara = await identify(crm, "slack", "U0456")
    assert sara is not None
    async with crm.reader() as uow:
        assert (await uow.users.get(sara.user_id)).role == "rep"
