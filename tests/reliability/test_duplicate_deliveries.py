"""The platforms deliver the same thing twice: Telegram re-sends an update it has no answer for
(same `update_id`), Slack retries an event it thinks timed out (same `event_id`, with
`X-Slack-Retry-Num`). Each acts once: in the same process, and after a restart (a new channel
and a new Router over the same database)."""
from __future__ import annotations

from contextlib import asynccontextmanager

from bot.slack_channel import SlackChannel
from conversations.router import Router
from storage.models import ConversationState, Contact, Deal, Task
from tests.chat import count_rows
from tests.fakes.slack_harness import SlackHarness, slack_api, slack_settings  # noqa: F401
from tests.fakes.telegram_api import FakeTelegramAPI, running_bot

ANSWERS = ["Layla Nasser", "Acme Trading", "050 123 4567", "layla@acme.ae", "Website", "5k",
           "tomorrow 3pm"]


async def lead_rows(crm) -> tuple[int, int, int]:
    return await count_rows(crm, Contact), await count_rows(crm, Deal), await count_rows(crm, Task)


async def stored_field(crm, platform: str, chat: str, user: str) -> str | None:
    async with crm.reader() as uow:
        row = await uow.conversations.find(platform, chat, user)
        return None if row is None else row.field


async def first_poll_of_new_bot(api, since: int) -> None:
    """The stopped bot's last long poll is still open on the fake server, which (unlike
    Telegram) forgets an update once handed out: let it return before re-delivering."""
    await api.wait_for(lambda: any(
        c.method == "getUpdates" and c.params.get("offset") == "0" for c in api.calls[since:]))


def sent_texts(calls) -> list[str]:
    return [c.params.get("text", "") for c in calls if c.method == "sendMessage" and c.status == 200]


async def test_a_telegram_update_delivered_twice_acts_once_even_after_a_restart(crm, make_user):
    await make_user("Rana", identity=("telegram", "123"))
    async with FakeTelegramAPI() as api:
        async with running_bot(crm, api) as tg:
            await tg.say("/newlead")
            company = api.message(123, ANSWERS[0])
            await tg.deliver(company)
            assert sent_texts(await tg.deliver(dict(company))) == []  # same update_id: ignored
            assert await stored_field(crm, "telegram", "123", "123") == "company"
            for text in ANSWERS[1:-1]:
                await tg.say(text)
            last = api.message(123, ANSWERS[-1])
            assert any("Lead saved" in t for t in sent_texts(await tg.deliver(last)))

        # The bot restarts; Telegram, never told the updates were handled, sends them again.
        before_restart = len(api.calls)
        async with running_bot(crm, api, router=Router(crm)) as tg:
            await first_poll_of_new_bot(api, before_restart)
            assert sent_texts(await tg.deliver(dict(company))) == []
            assert sent_texts(await tg.deliver(dict(last))) == []
            assert "What I can do" in sent_texts(await tg.say("/help"))[0]  # new updates still go
    assert await lead_rows(crm) == (1, 1, 1)
    assert await count_rows(crm, ConversationState) == 0


@asynccontextmanager
async def slack_app(crm, settings, api):
    channel = SlackChannel(slack_settings(settings, api), Router(crm), crm=crm, pace_interval=0.0)
    try:
        yield SlackHarness(channel, api)
    finally:
        await channel.stop()


async def test_a_slack_event_retried_acts_once_even_after_a_restart(crm, settings, slack_api, make_user):
    await make_user("Rana", identity=("slack", "U1"))
    retry = {"headers": {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}}
    async with slack_app(crm, settings, slack_api) as slack:
        await slack.dm("U1", "/newlead", event_id="Ev0")
        await slack.dm("U1", ANSWERS[0], event_id="Ev1")
        posts = len(slack.texts())
        await slack.dm("U1", ANSWERS[0], event_id="Ev1", **retry)
        assert len(slack.texts()) == posts  # the retry was answered by nothing
        assert await stored_field(crm, "slack", "D1", "U1") == "company"
        for n, text in enumerate(ANSWERS[1:], start=2):
            await slack.dm("U1", text, event_id=f"Ev{n}")
        assert "Lead saved" in slack.texts()[-1]
        await slack.dm("U1", ANSWERS[-1], event_id=f"Ev{len(ANSWERS)}", **retry)

    async with slack_app(crm, settings, slack_api) as slack:  # restarted
        posts = len(slack.texts())
        await slack.dm("U1", ANSWERS[-1], event_id=f"Ev{len(ANSWERS)}", **retry)
        await slack.dm("U1", ANSWERS[0], event_id="Ev1", **retry)
        assert len(slack.texts()) == posts
    assert await lead_rows(crm) == (1, 1, 1)
    assert await count_rows(crm, ConversationState) == 0
