"""The Slack app as Slack sees it: signed requests over HTTP, retried events, App Home, team
channels, and the two ways to connect."""
from __future__ import annotations

import time
from datetime import timedelta

import aiohttp
from sqlalchemy import func, select

from bot.slack_channel import SlackChannel
from handlers.contacts import create_lead
from handlers.values import Money
from storage.models import Contact, TeamChannel
from tests.fakes import slack_requests as sr
from tests.fakes.slack_harness import slack, slack_api, slack_settings  # noqa: F401  (fixtures)


async def post(port: int, body: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/slack/events", data=body.encode(), headers=headers) as resp:
            await resp.read()
            return resp


async def test_http_mode_serves_signed_requests_and_refuses_forged_or_stale_ones(settings, slack_api, crm, make_user):
    from conversations.router import Router

    await make_user("Rana", identity=("slack", "U1"))
    channel = SlackChannel(slack_settings(settings, slack_api, slack_port=0), Router(crm), crm=crm, pace_interval=0)
    await channel.start()
    try:
        body = sr.slash_body("U1", "help")
        assert (await post(channel.port, body, sr.signed_headers(body))).status == 200

        forged = sr.signed_headers(body, secret="not-the-secret")
        assert (await post(channel.port, body, forged)).status == 401

        stale = sr.signed_headers(body, timestamp=int(time.time()) - 6 * 60)
        assert (await post(channel.port, body, stale)).status == 401

        event = sr.event_body(sr.dm_event("U1", "/newlead"))
        refused = sr.signed_headers(event, secret="wrong", content_type="application/json")
        assert (await post(channel.port, event, refused)).status == 401
        await channel.drain()
        assert slack_api.called("chat.postMessage") == []  # nothing forged got through
    finally:
        await channel.stop()


async def test_a_retried_event_is_processed_once(slack, make_user, crm):
    await make_user("Rana", identity=("slack", "U1"))
    await slack.dm("U1", "/newlead Retry Co", event_id="Ev42")
    retry = {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    await slack.dm("U1", "/newlead Retry Co", event_id="Ev42", headers=retry)
    assert len(slack.texts("D1")) == 1
    async with crm.reader() as uow:
        assert (await uow.session.execute(select(func.count()).select_from(Contact))).scalar_one() == 0


async def test_app_home_lists_tasks_pipeline_and_quick_actions(slack, make_user, crm, clock):
    rana = await make_user("Rana", identity=("slack", "U1"))
    await create_lead(crm, rana, name="<!channel> Corp", value=Money(2_500_00, "USD"),
                      next_step_at=clock.now() + timedelta(hours=2))
    await create_lead(crm, rana, name="Late Ltd", value=Money(1_000_00, "USD"),
                      next_step_at=clock.now() + timedelta(minutes=5))
    clock.advance(minutes=30)  # Late Ltd's next step is now overdue

    await slack.dispatch(sr.event_body(sr.home_opened_event("U1")))
    [published] = slack.api.called("views.publish")
    assert published["user_id"] == "U1"
    text = "\n".join(b["text"]["text"] for b in published["view"]["blocks"] if b["type"] == "section")
    overdue, today = text.split("*📅 Today*")
    assert "Late Ltd" in overdue and "&lt;!channel&gt; Corp" in today
    assert "<!channel>" not in text
    assert "• New: 2 — $3,500.00" in text
    actions = [b for b in published["view"]["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [a["value"] for a in actions][:2] == ["newlead", "log"]

    # A quick action opens the flow's modal; a change made from Slack refreshes the tab.
    await slack.dispatch(sr.home_button_body("U1", "crm_home_form_newlead", "newlead"))
    assert slack.last_modal()["title"]["text"] == "New lead"
    await slack.dm("U1", "/tasks")
    assert len(slack.api.called("views.publish")) == 2

    # Done beside an overdue task closes it; the answer shows in the DM and the tab updates.
    late = next(b for b in published["view"]["blocks"] if "Late Ltd" in b.get("text", {}).get("text", ""))
    done = late["accessory"]
    assert done["text"]["text"] == "✅ Done" and done["value"].startswith("task:done:")
    await slack.dispatch(sr.home_button_body("U1", done["action_id"], done["value"]))
    # The task's line in the DM's /tasks list is the message that changes.
    assert slack.api.called("chat.update")[-1]["text"].startswith("✅ Done: Follow up with Late Ltd")
    refreshed = slack.api.called("views.publish")[-1]["view"]
    overdue = "\n".join(b["text"]["text"] for b in refreshed["blocks"] if b["type"] == "section").split("*📅 Today*")[0]
    assert "Late Ltd" not in overdue and "_Nothing here._" in overdue


async def test_app_home_for_a_stranger_explains_how_to_join(slack):
    await slack.dispatch(sr.event_body(sr.home_opened_event("U9")))
    [published] = slack.api.called("views.publish")
    assert "/crm join" in published["view"]["blocks"][1]["text"]["text"]


async def test_setchannel_registers_the_channel_for_a_manager_only(slack, make_user, crm):
    await make_user("Mona", role="manager", identity=("slack", "U2"))
    await make_user("Rana", role="rep", identity=("slack", "U1"))

    await slack.command("U1", "setchannel", channel="C55")
    async with crm.reader() as uow:
        assert (await uow.session.execute(select(TeamChannel))).scalars().all() == []

    await slack.command("U2", "setchannel", channel="C55")
    async with crm.reader() as uow:
        [registered] = (await uow.session.execute(select(TeamChannel))).scalars().all()
    assert (registered.address, registered.platform) == ("slack:C55", "slack")
    assert slack.texts("C55")  # the confirmation is posted in the channel itself


async def test_setchannel_in_a_channel_without_the_app_answers_privately(slack, make_user):
    await make_user("Mona", role="manager", identity=("slack", "U2"))
    slack.api.fail_next("chat.postMessage", error="not_in_channel")
    await slack.command("U2", "setchannel", channel="C56")
    assert "/invite @ChatCRM" in slack.api.responses[0]["text"]


async def test_a_private_command_from_a_channel_answers_in_the_dm(slack, make_user):
    await make_user("Rana", identity=("slack", "U1"))
    ack = slack.ack_json(await slack.command("U1", "tasks", channel="C55"))
    assert ack["text"] == "I'll answer in our direct messages."
    assert "No open follow-ups" in slack.texts("D1")[-1]
    assert slack.texts("C55") == []


async def test_socket_mode_is_chosen_by_an_app_token(settings, slack_api, crm):
    from pydantic import SecretStr
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from conversations.router import Router

    socket_settings = slack_settings(settings, slack_api, slack_signing_secret=None,
                                     slack_app_token=SecretStr("xapp-test"))
    channel = SlackChannel(socket_settings, Router(crm), crm=crm)
    assert channel.mode == "socket"
    handler = channel.socket_handler()
    assert isinstance(handler, AsyncSocketModeHandler)
    assert handler.app_token == "xapp-test"
    await handler.client.close()


def test_the_manifest_creates_what_the_app_listens_to():
    from pathlib import Path

    import yaml

    from bot.slack_channel import EVENTS_PATH

    manifest = yaml.safe_load((Path(__file__).parents[1] / "slack_manifest.yaml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/crm"
    settings = manifest["settings"]
    urls = [command["url"], settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]]
    assert all(url.endswith(EVENTS_PATH) for url in urls)
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_home_opened", "message.im"}
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    needed = {"commands", "chat:write", "im:history", "im:write", "users:read", "files:write", "files:read"}
    assert needed <= set(manifest["oauth_config"]["scopes"]["bot"])


class RecordingRouter:
    """Records what the channel hands over; answers nothing."""

    def __init__(self, crm) -> None:
        self.crm = crm
        self.inbound = []

    async def handle(self, inbound, progress=None):
        self.inbound.append(inbound)
        return []


async def test_inbound_carries_the_slack_profile_time_zone_and_event_id(settings, slack_api, crm):
    from tests.fakes.slack_harness import SlackHarness

    slack_api.user_tz["U1"] = "Asia/Dubai"
    router = RecordingRouter(crm)
    harness = SlackHarness(SlackChannel(slack_settings(settings, slack_api), router, pace_interval=0), slack_api)
    await harness.dm("U1", "hi &lt;b&gt; <mailto:jo@acme.co|jo@acme.co>", event_id="Ev1")
    await harness.dm("U1", "again", event_id="Ev2")

    first, second = router.inbound
    assert (first.platform, first.chat_id, first.user_id) == ("slack", "D1", "U1")
    assert (first.text, first.event_key, first.timezone) == ("hi <b> jo@acme.co", "Ev1", "Asia/Dubai")
    assert first.display_name == "User U1"
    assert second.timezone == "Asia/Dubai"
    assert len(slack_api.called("users.info")) == 1  # cached


async def test_edits_and_bot_messages_are_not_treated_as_answers(settings, slack_api, crm):
    from tests.fakes.slack_harness import SlackHarness

    router = RecordingRouter(crm)
    harness = SlackHarness(SlackChannel(slack_settings(settings, slack_api), router, pace_interval=0), slack_api)
    edited = sr.dm_event("U1", "changed") | {"subtype": "message_changed"}
    from_bot = sr.dm_event("U1", "echo") | {"bot_id": "B9"}
    in_channel = sr.dm_event("U1", "hello") | {"channel_type": "channel", "channel": "C1"}
    for event in (edited, from_bot, in_channel):
        await harness.dispatch(sr.event_body(event))
    assert router.inbound == []


async def test_a_stranger_joins_with_an_invite_code_and_keeps_their_slack_time_zone(slack, make_user, crm):
    from handlers.invites import create_invite
    from storage.models import Identity, User

    mona = await make_user("Mona", role="manager", identity=("slack", "U2"))
    invite = await create_invite(crm, mona, "rep")
    slack.api.user_tz["U7"] = "Asia/Dubai"

    ack = slack.ack_json(await slack.command("U7", f"join {invite.code}", channel="C55"))
    assert ack["text"] == "I'll answer in our direct messages."
    assert "Welcome to ChatCRM" in slack.texts("D7")[-1]
    async with crm.reader() as uow:
        identity = (await uow.session.execute(select(Identity).where(Identity.platform_user_id == "U7"))).scalar_one()
        user = await uow.session.get(User, identity.user_id)
    assert (user.display_name, user.timezone, user.manager_id) == ("User U7", "Asia/Dubai", mona.user_id)
    assert identity.dm_address == "slack:D7"

    await slack.command("U7", "tasks", channel="D7")
    assert "No open follow-ups" in slack.texts("D7")[-1]
