"""Team channels: who may register them, alert switches, and where alerts go."""
import pytest

from handlers.channels import (
    list_channels,
    register_channel,
    set_channel_alert,
    team_channels_for,
    unregister_channel,
)
from handlers.errors import InvalidInput, NotAllowed, NotFound
from tests.test_team import say, turn_of


@pytest.fixture
async def org(make_user):
    admin = await make_user("Ada", "admin", tz="Asia/Dubai")
    maya = await make_user("Maya", "manager")
    omar = await make_user("Omar", "manager")
    rana = await make_user("Rana", "rep", manager=maya)
    tess = await make_user("Tess", "rep", manager=omar)
    return dict(admin=admin, maya=maya, omar=omar, rana=rana, tess=tess)


async def test_a_managers_channel_is_for_their_team_and_an_admins_for_everyone(crm, org):
    team_chat = await register_channel(crm, org["maya"], address="telegram:-1001", platform="telegram",
                                       title="Maya's <b>team</b>")
    company = await register_channel(crm, org["admin"], address="slack:C42", platform="slack")
    assert (team_chat.manager_id, team_chat.title) == (org["maya"].user_id, "Maya's <b>team</b>")
    assert (company.manager_id, company.timezone) == (None, "Asia/Dubai")

    assert [c.address for c in await team_channels_for(crm, org["rana"].user_id)] == [
        "telegram:-1001", "slack:C42"]
    assert [c.address for c in await team_channels_for(crm, org["maya"].user_id)] == [
        "telegram:-1001", "slack:C42"]
    assert [c.address for c in await team_channels_for(crm, org["tess"].user_id)] == ["slack:C42"]
    assert await team_channels_for(crm, 999) == []


async def test_registering_again_is_idempotent(crm, org):
    first = await register_channel(crm, org["maya"], address="telegram:-1001", platform="telegram")
    again = await register_channel(crm, org["maya"], address="telegram:-1001", platform="telegram",
                                   title="Sales")
    assert again.id == first.id and again.title == "Sales"
    assert len(await list_channels(crm, org["admin"])) == 1


async def test_another_manager_cannot_take_over_a_channel(crm, org):
    await register_channel(crm, org["maya"], address="telegram:-1001", platform="telegram")
    with pytest.raises(NotAllowed, match="another team"):
        await register_channel(crm, org["omar"], address="telegram:-1001", platform="telegram")
    with pytest.raises(NotFound):
        await set_channel_alert(crm, org["omar"], "telegram:-1001", "won", False)
    with pytest.raises(NotFound):
        await unregister_channel(crm, org["omar"], "telegram:-1001")


async def test_reps_cannot_manage_channels(crm, org):
    with pytest.raises(NotAllowed):
        await register_channel(crm, org["rana"], address="telegram:-1001", platform="telegram")
    with pytest.raises(NotAllowed):
        await list_channels(crm, org["rana"])


async def test_alert_switches_filter_where_alerts_go(crm, org):
    await register_channel(crm, org["maya"], address="telegram:-1001", platform="telegram")
    await register_channel(crm, org["admin"], address="slack:C42", platform="slack")
    channel = await set_channel_alert(crm, org["admin"], "slack:C42", "New-Lead", False)
    assert channel.alert_new_lead is False and channel.alert_won is True
    assert [c.address for c in await team_channels_for(crm, org["rana"].user_id, "new_lead")] == [
        "telegram:-1001"]
    assert len(await team_channels_for(crm, org["rana"].user_id, "won")) == 2
    with pytest.raises(InvalidInput, match="new_lead, won, payment, summary, overdue"):
        await set_channel_alert(crm, org["maya"], "telegram:-1001", "gossip", True)


async def test_lists_and_unregistering(crm, org):
    await register_channel(crm, org["maya"], address="telegram:-1001", platform="telegram")
    await register_channel(crm, org["omar"], address="telegram:-1002", platform="telegram")
    await register_channel(crm, org["admin"], address="slack:C42", platform="slack")
    assert [c.address for c in await list_channels(crm, org["maya"])] == ["telegram:-1001", "slack:C42"]
    await unregister_channel(crm, org["maya"], "telegram:-1001")
    assert [c.address for c in await list_channels(crm, org["admin"])] == ["telegram:-1002", "slack:C42"]
    async with crm.reader() as uow:
        trail = await uow.audit.trail("team_channels", 1)
        assert [e.field for e in trail] == ["*deleted", "*created"]


@pytest.mark.parametrize("address", ["telegram:", "nonsense", "slack:<!channel>", "telegram:1\x00", "x" * 300])
async def test_bad_addresses_are_refused(crm, org, address):
    with pytest.raises(InvalidInput):
        await register_channel(crm, org["admin"], address=address, platform="telegram")
    assert await list_channels(crm, org["admin"]) == []


# --- chat commands --------------------------------------------------------------------------


async def test_setchannel_and_channel_commands_in_a_group(crm, org):
    group = turn_of(crm, org["maya"], "manager", user_id="2", chat_id="-1001", is_group=True)
    [private] = await say(turn_of(crm, org["maya"], "manager", user_id="2"), "/setchannel")
    assert private.text.plain.startswith("Run /setchannel inside the group chat")
    [made] = await say(group, "/setchannel Maya's team")
    assert made.text.plain.startswith(
        "📣 This chat now gets alerts for the team: new_lead on, won on, payment on, summary on, overdue on.")
    [switched] = await say(group, "/channel alerts won off")
    assert "won off" in switched.text.plain
    [status] = await say(group, "/channel")
    assert status.text.plain == (
        "📣 Alerts here for the team: new_lead on, won off, payment on, summary on, overdue on.")
    [listing] = await say(turn_of(crm, org["admin"], "admin"), "/channel")
    assert listing.text.plain.splitlines()[1].startswith("• Maya's team — the team:")
    with pytest.raises(InvalidInput, match="/channel alerts won off"):
        await say(group, "/channel shout")
    with pytest.raises(NotFound):  # another manager's group is not theirs to change
        await say(turn_of(crm, org["omar"], "manager", chat_id="-1001", is_group=True), "/channel remove")
    [removed] = await say(group, "/channel remove")
    assert removed.text.plain.startswith("🔕")
    assert await list_channels(crm, org["admin"]) == []
