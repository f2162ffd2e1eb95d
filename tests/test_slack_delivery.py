"""Notifications through `SlackChannel.send`: addresses, buttons acting in place, files, pacing,
429s and unreachable channels."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.base import RetryLater, Unreachable
from bot.slack_channel import SlackChannel
from conversations.messages import Address, Choice, OutFile, Reply
from conversations.rich import bold
from conversations.router import Router
from handlers.contacts import create_lead
from handlers.values import Money
from storage.models import Task
from tests.fakes.slack_harness import slack, slack_api, slack_settings  # noqa: F401  (fixtures)


def reminder(task_id: int, title: str) -> Reply:
    return Reply.say("⏰ ", bold(title), choices=(Choice("✅ Done", f"task:done:{task_id}"),),
                     edit_key=f"task:{task_id}")


async def test_a_user_address_goes_to_their_dm(slack):
    ts = await slack.channel.send(Address.parse("slack:U1"), Reply.say("Morning plan"))
    assert slack.api.called("conversations.open") == [{"users": "U1"}]
    assert slack.last_post("D1")["ts"] == ts

    await slack.channel.send(Address.parse("slack:C42:U1"), Reply.say("Team alert"))
    assert slack.texts("C42") == ["Team alert"]
    assert len(slack.api.called("conversations.open")) == 1  # the DM id is cached


async def test_notification_buttons_act_and_update_in_place(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    lead = await create_lead(crm, rana, name="Acme", value=Money(100_00, "USD"),
                             next_step_at=crm.now() + timedelta(hours=1))
    ts = await slack.channel.send(Address.parse("slack:U1"), reminder(lead.task.id, lead.task.title))
    done = slack.last_post("D1")["blocks"][-1]["elements"][0]
    assert (done["text"]["text"], done["value"]) == ("✅ Done", f"task:done:{lead.task.id}")

    await slack.press("U1", done["value"], message_ts=ts)
    [update] = slack.api.called("chat.update")
    assert (update["channel"], update["ts"]) == ("D1", ts)
    assert update["text"].startswith("✅ Done:")
    assert len(slack.texts("D1")) == 1  # nothing new posted: the reminder itself changed
    async with crm.reader() as uow:
        assert (await uow.session.get(Task, lead.task.id)).status == "done"


async def test_edit_updates_a_sent_message(slack):
    ts = await slack.channel.send(Address.parse("slack:C7"), Reply.say("Pending"))
    await slack.channel.edit(Address.parse("slack:C7"), ts, Reply.say("Paid"))
    assert slack.api.called("chat.update") == [
        {"channel": "C7", "ts": ts, "text": "Paid",
         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Paid"}}]}
    ]


async def test_hostile_names_ping_nobody(slack):
    await slack.channel.send(Address.parse("slack:C7"), Reply.say("New lead: ", bold("<!channel> & <@U123>")))
    post = slack.last_post("C7")
    assert post["text"] == "New lead: &lt;!channel&gt; &amp; &lt;@U123&gt;"
    assert post["blocks"][0]["text"]["text"] == "New lead: *&lt;!channel&gt; &amp; &lt;@U123&gt;*"


async def test_a_429_is_reported_with_its_retry_after(slack):
    slack.api.fail_next("chat.postMessage", status=429, error="ratelimited", retry_after=7)
    with pytest.raises(RetryLater) as raised:
        await slack.channel.send(Address.parse("slack:C7"), Reply.say("Won!"))
    assert raised.value.retry_after == 7
    assert slack.texts("C7") == []


async def test_a_direct_reply_waits_out_a_429(settings, slack_api, make_user, crm):
    await make_user("Rana", identity=("slack", "U1"))
    waits: list[float] = []
    now = [100.0]

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    channel = SlackChannel(slack_settings(settings, slack_api), Router(crm), crm=crm,
                           sleep=fake_sleep, monotonic=lambda: now[0])
    from tests.fakes.slack_harness import SlackHarness

    harness = SlackHarness(channel, slack_api)
    slack_api.fail_next("chat.postMessage", status=429, error="ratelimited", retry_after=3)
    await harness.dm("U1", "/newlead")
    assert waits == [3.0]  # Retry-After honoured before the one retry
    assert "What's the person's name?" in harness.texts("D1")[-1]
    await channel.stop()


async def test_posts_to_one_channel_are_paced_about_one_per_second_after_a_short_burst(settings, slack_api, crm):
    waits: list[float] = []
    now = [50.0]

    async def fake_sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        now[0] += seconds

    channel = SlackChannel(slack_settings(settings, slack_api), Router(crm), crm=crm,
                           sleep=fake_sleep, monotonic=lambda: now[0])
    texts = [f"message {i}" for i in range(1, 7)]
    for text in texts:
        await channel.send(Address.parse("slack:C7"), Reply.say(text))
    await channel.send(Address.parse("slack:C8"), Reply.say("other channel"))
    assert waits == [1.0, 1.0]  # a burst of 4, then one per second; C8 did not wait
    assert [a["text"] for a in slack_api.called("chat.postMessage")] == texts + ["other channel"]


@pytest.mark.parametrize("error", ["channel_not_found", "is_archived", "not_in_channel", "account_inactive"])
async def test_gone_channels_are_unreachable(slack, error):
    slack.api.fail_next("chat.postMessage", error=error)
    with pytest.raises(Unreachable):
        await slack.channel.send(Address.parse("slack:C7"), Reply.say("hello"))


async def test_images_and_files_are_uploaded_to_the_channel(slack, tmp_path):
    chart = tmp_path / "pipeline.png"
    chart.write_bytes(b"\x89PNG fake")
    reply = Reply.say("Your pipeline", image=OutFile(chart, "pipeline.png", caption="Deals <by> stage"))
    ts = await slack.channel.send(Address.parse("slack:C7"), reply)

    assert slack.last_post("C7")["ts"] == ts
    [complete] = slack.api.called("files.completeUploadExternal")
    assert complete["channel_id"] == "C7"
    assert complete["initial_comment"] == "Deals &lt;by&gt; stage"
    assert list(slack.api.uploads.values()) == [b"\x89PNG fake"]
