"""Telegram and Slack misbehave: 429 storms, 5xx answers, requests that time out and
connections dropped mid-request (a fault proxy sits between the bot and the fake API). Replies
and notifications are all delivered in the end, the bot keeps polling (no crash loop), and the
user never sees raw error text."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest
from telegram.request import HTTPXRequest

from bot.slack_channel import SlackChannel
from bot.telegram_channel import SendLimits, TelegramChannel
from conversations.messages import Reply
from conversations.router import Router
from jobs.outbox import enqueue
from jobs.sender import OutboxSender
from storage.models import OutboxMessage
from tests.chat import all_rows
from tests.fakes.slack_harness import SlackHarness, slack_api, slack_settings  # noqa: F401
from tests.fakes.telegram_api import FakeTelegramAPI, TelegramDriver, bot_settings
from tests.jobs_support import VirtualTime
from tests.reliability.conftest import sqlite_only
from tests.reliability.faulty_proxy import FaultyProxy
from tests.reliability.processes import HANG_GUARD_S

# What must never reach a rep's phone: status lines, exception names, library internals.
RAW = ("Bad Gateway", "Internal", "Too Many Requests", "retry after", "Timed out", "timeout",
       "Traceback", "Error", "httpx", "aiohttp", "ratelimited", "internal_error",
       "service_unavailable")
CLIENT_TIMEOUT_S = 0.5  # how long the bot waits for an answer before giving a request up


def no_raw_errors(texts: list[str]) -> bool:
    return not [t for t in texts if any(word in t for word in RAW)]


@pytest.fixture
async def telegram():
    async with FakeTelegramAPI() as api:
        proxy = await FaultyProxy.start(api.port)
        yield api, proxy
        await proxy.stop()


@asynccontextmanager
async def telegram_bot(crm, api, proxy, **kw):
    """The real Telegram channel talking to the fake Bot API through the fault proxy."""
    settings = bot_settings(crm.settings, api, telegram_api_url=f"http://127.0.0.1:{proxy.port}/bot")
    request = HTTPXRequest(connection_pool_size=8, read_timeout=CLIENT_TIMEOUT_S,
                           write_timeout=CLIENT_TIMEOUT_S, connect_timeout=CLIENT_TIMEOUT_S)
    kw.setdefault("limits", SendLimits(overall_per_s=1000, chat_interval=0, group_interval=0))
    channel = TelegramChannel(settings, Router(crm), request=request, poll_timeout=1.0, **kw)
    await channel.start()
    try:
        yield TelegramDriver(api, channel, 123)
    finally:
        await channel.stop()


@pytest.mark.slow
@sqlite_only  # the database plays no part in these faults
async def test_telegram_replies_get_through_429s_5xx_timeouts_and_drops(crm, make_user, telegram):
    api, proxy = telegram
    await make_user("Rana", identity=("telegram", "123"))
    faults = [
        lambda: api.flood("sendMessage", retry_after=1, times=2),
        lambda: api.fail("sendMessage", 502, "Bad Gateway", times=2),
        lambda: api.fail("sendMessage", 500, "Internal Server Error", times=1),
        lambda: proxy.plan("drop", "sendMessage", times=2),
        lambda: proxy.plan("stall", "sendMessage", times=1),
    ]
    async with telegram_bot(crm, api, proxy) as tg:
        for inject in faults:
            inject()
            await tg.say("/help")
            assert "What I can do" in api.texts_to(123)[-1]  # the real answer, not an apology
        # The long poll fails too: the bot backs off and keeps polling, then serves the user.
        api.fail("getUpdates", 502, "Bad Gateway", times=2)
        proxy.plan("drop", "getUpdates", times=1)
        await tg.say("/help")
        assert "What I can do" in api.texts_to(123)[-1]
    assert proxy.pending == 0 and len(proxy.injected) == 4
    assert no_raw_errors(api.texts_to(123))


async def queue_notices(crm, addresses: list[str]) -> None:
    async with crm.uow() as uow:
        for address in addresses:
            await enqueue(uow, f"notice:{address}", [address], Reply.say(f"Call back {address}"),
                          kind="test")
        await uow.commit()


async def deliver_all(crm, clock, sender: OutboxSender, vt: VirtualTime | None = None) -> list[OutboxMessage]:
    """Run the sender, moving the clock (and the sender's pacing clock, when virtual) past
    every retry-after, until nothing is pending."""
    async def _drain():
        while True:
            await sender.run_once()
            rows = await all_rows(crm, OutboxMessage)
            if all(r.status != "pending" for r in rows):
                return rows
            clock.advance(seconds=61)  # past the longest retry-after the channels ask for
            if vt is not None:
                vt.now += 61
            await asyncio.sleep(0.05)
    return await asyncio.wait_for(_drain(), HANG_GUARD_S)


@pytest.mark.slow
@sqlite_only  # the database plays no part in these faults
async def test_telegram_notifications_all_arrive_once_within_the_limits(crm, clock, make_user):
    chats = [str(2000 + i) for i in range(12)]
    async with FakeTelegramAPI(enforce_limits=True) as api:
        proxy = await FaultyProxy.start(api.port)
        async with telegram_bot(crm, api, proxy, limits=SendLimits()) as tg:
            await queue_notices(crm, [f"telegram:{c}" for c in chats])
            api.flood("sendMessage", retry_after=1, times=3)
            api.fail("sendMessage", 502, "Bad Gateway", times=2)
            proxy.plan("drop", "sendMessage", times=2)
            proxy.plan("stall", "sendMessage", times=2)
            rows = await deliver_all(crm, clock, OutboxSender(crm, {"telegram": tg.channel}))
        await proxy.stop()
    assert {r.status for r in rows} == {"sent"}
    assert sum(r.attempts for r in rows) == len(chats) + 9  # every fault cost one retry
    assert all(api.texts_to(c) == [f"Call back telegram:{c}"] for c in chats)
    assert api.floods == 0  # the sender's own pace never tripped Telegram's limits


@asynccontextmanager
async def slack_app(crm, settings, api, proxy):
    """The real Slack channel whose Web API calls go through the fault proxy."""
    via_proxy = api.api_url.replace(f":{api.port}/", f":{proxy.port}/")
    channel = SlackChannel(slack_settings(settings, api, slack_api_url=via_proxy), Router(crm),
                           crm=crm, pace_interval=0.0)
    channel.client.timeout = CLIENT_TIMEOUT_S
    try:
        yield SlackHarness(channel, api)
    finally:
        await channel.stop()


@pytest.mark.slow
@sqlite_only  # the database plays no part in these faults
async def test_slack_replies_and_notifications_get_through_trouble(crm, clock, settings, slack_api, make_user):
    await make_user("Rana", identity=("slack", "U1"))
    proxy = await FaultyProxy.start(slack_api.port)
    faults = [
        lambda: slack_api.fail_next("chat.postMessage", status=429, error="ratelimited", retry_after=1),
        lambda: slack_api.fail_next("chat.postMessage", status=500, error="internal_error"),
        lambda: slack_api.fail_next("chat.postMessage", status=503, error="service_unavailable"),
        lambda: proxy.plan("drop", "chat.postMessage"),
        lambda: proxy.plan("stall", "chat.postMessage"),
    ]
    async with slack_app(crm, settings, slack_api, proxy) as slack:
        for n, inject in enumerate(faults):
            inject()
            await slack.dm("U1", "/help", event_id=f"Ev{n}")
            assert "/newlead" in slack.texts("D1")[-1]  # the real answer arrived

        channels = [f"C{i}" for i in range(8)]
        await queue_notices(crm, [f"slack:{c}" for c in channels])
        for inject in faults:
            inject()
        # Slack asks for 30 s after an error: the sender's pacing runs on virtual time here.
        vt = VirtualTime()
        sender = OutboxSender(crm, {"slack": slack.channel}, monotonic=vt.monotonic, sleep=vt.sleep)
        rows = await deliver_all(crm, clock, sender, vt)
    await proxy.stop()
    assert {r.status for r in rows if r.address.startswith("slack:C")} == {"sent"}
    assert all(slack.texts(c) == [f"Call back slack:{c}"] for c in channels)
    assert proxy.pending == 0
    assert no_raw_errors(slack.texts("D1"))
