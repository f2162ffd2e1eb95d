"""The Telegram channel end to end: the real PTB Application polls a local fake Bot API and
talks to the real Router on a real database. Delivery rules: escaping, splitting, 429s,
blocked users, migrated groups, duplicates, forged buttons, errors, groups, webhooks."""
from __future__ import annotations

import asyncio
import html
import re

import httpx
import pytest
from pydantic import SecretStr

from bot.base import RetryLater, Unreachable
from bot.base import SORRY
from bot.telegram_channel import SendLimits, TelegramChannel
from config.settings import SettingsError
from conversations.messages import Address, Choice, OutFile, Reply
from conversations.rich import Rich, bold
from conversations.router import Router
from handlers import contacts as contacts_uc
from handlers.invites import create_invite
from handlers.users import identify
from storage.models import TeamChannel
from tests.fakes.telegram_api import FakeTelegramAPI, bot_settings, running_bot

HOSTILE = "<b>Evil</b> & Co. *_["


@pytest.fixture
async def api():
    async with FakeTelegramAPI() as server:
        yield server


@pytest.fixture
async def tg(crm, api):
    async with running_bot(crm, api) as driver:
        yield driver


@pytest.fixture
async def rana(make_user):
    return await make_user("Rana", identity=("telegram", "123"))


def texts(calls) -> list[str]:
    return [c.params.get("text") or c.params.get("caption") or "" for c in calls
            if c.method in ("sendMessage", "sendPhoto", "sendDocument") and c.status == 200]


async def test_start_fills_the_command_menu(tg, api):
    [call] = api.calls_to("setMyCommands")
    menu = {c["command"]: c["description"] for c in call.params["commands"]}
    assert {"newlead", "log", "followup", "move", "won", "pay", "find", "tasks", "help"} <= menu.keys()
    assert menu["newlead"] == "Add a lead: contact and deal, with a next step"
    assert api.calls_to("deleteWebhook")  # polling mode clears any old webhook


async def test_a_stranger_is_told_their_telegram_id(tg):
    calls = await tg.say("/start", chat_id=555)
    [text] = texts(calls)
    assert "not on this team" in text and "<code>555</code>" in text


async def test_start_with_an_invite_code_joins_the_team(tg, crm, make_user):
    admin = await make_user("Boss", role="admin")
    invite = await create_invite(crm, admin, "rep")
    [text] = texts(await tg.say(f"/start {invite.code}", chat_id=777, first_name="Omar"))
    assert "Welcome to the team" in text
    assert await identify(crm, "telegram", "777") is not None


async def test_a_hostile_name_arrives_escaped_and_reads_as_typed(tg, crm, rana):
    await contacts_uc.create_lead(crm, rana, name=HOSTILE)
    [text] = texts(await tg.say("/find Evil"))
    assert html.escape(HOSTILE, quote=False) in text
    assert "<b>Evil</b>" not in text
    # What the phone shows once Telegram parsed the HTML: the name exactly as typed.
    assert HOSTILE in html.unescape(re.sub(r"<[^>]+>", "", text))


async def test_a_duplicate_update_is_processed_once(tg, rana):
    update = tg.api.message(123, "/help")
    first = await tg.deliver(update)
    again = await tg.deliver(dict(update))  # Telegram re-delivers the same update_id
    assert len(texts(first)) == 1
    assert texts(again) == []


async def test_every_button_press_is_answered_and_a_forged_one_shows_nothing(tg, crm, rana, make_user):
    other = await make_user("Sami", identity=("telegram", "456"))
    secret = await contacts_uc.create_lead(crm, other, name="Sami's secret client")
    calls = await tg.press(f"card:{secret.contact.id}")  # Rana forges a press on Sami's contact
    calls += await tg.press("card:999999")
    calls += await tg.press("nonsense:%%")
    assert len([c for c in calls if c.method == "answerCallbackQuery"]) == 3
    shown = " ".join(texts(calls))
    assert "secret" not in shown
    assert shown.count("⚠️") + shown.count("out of date") >= 3


async def test_a_429_on_a_reply_is_waited_out_and_delivered(tg, api, rana):
    api.flood("sendMessage", retry_after=1)
    calls = await tg.say("/help")
    statuses = [c.status for c in calls if c.method == "sendMessage"]
    assert statuses == [429, 200]
    assert "What I can do" in texts(calls)[0]


async def test_a_user_who_blocked_the_bot_breaks_nothing(tg, api, rana, make_user):
    await make_user("Sami", identity=("telegram", "456"))
    api.block(123)
    calls = await tg.say("/help")
    assert [c.status for c in calls if c.method == "sendMessage"] == [403]
    assert texts(await tg.say("/help", chat_id=456))  # the bot carries on for everyone else
    with pytest.raises(Unreachable):
        await tg.channel.send(Address("telegram", "123"), Reply.say("Reminder"))


async def test_a_handler_error_is_logged_and_the_user_told(crm, api, rana, caplog):
    router = Router(crm)
    real = router.handle
    failures = []

    async def flaky(inbound, progress=None):
        if not failures:
            failures.append(inbound)
            raise RuntimeError("database hiccup")
        return await real(inbound, progress)

    router.handle = flaky
    async with running_bot(crm, api, router=router) as tg:
        assert texts(await tg.say("/help")) == [SORRY]
        assert "What I can do" in texts(await tg.say("/help"))[0]
    assert "database hiccup" in caplog.text


async def test_notifications_map_429_to_retry_later(tg, api):
    api.flood("sendMessage", retry_after=7)
    with pytest.raises(RetryLater) as err:
        await tg.channel.send(Address("telegram", "123"), Reply.say("Call Rana"))
    assert err.value.retry_after == 7
    ref = await tg.channel.send(Address("telegram", "123"), Reply.say("Call Rana"))
    assert api.messages["123"][int(ref)]["text"] == "Call Rana"


async def test_a_long_notification_is_split_at_lines_with_buttons_last(tg, api):
    lines = [f"Task {i}: call client number {i}" for i in range(400)]  # ~12,000 characters
    reply = Reply(text=Rich.lines(lines), choices=(Choice("✅ Done", "task:done:1"),))
    await tg.channel.send(Address("telegram", "123"), reply)
    sent = api.sent_to(123)
    assert len(sent) == 4
    assert all(len(c.params["text"]) <= 4096 for c in sent)
    assert "\n".join(c.params["text"] for c in sent) == "\n".join(lines)
    assert [bool(c.keyboard) for c in sent] == [False, False, False, True]


async def test_a_migrated_group_is_followed_to_its_new_id(tg, api):
    api.migrate(-5, -1005)
    await tg.channel.send(Address("telegram", "-5"), Reply.say("🎉 Deal won"))
    await tg.channel.send(Address("telegram", "-5"), Reply.say("💰 Payment"))
    assert texts(api.sent_to(-1005)) == ["🎉 Deal won", "💰 Payment"]
    assert len([c for c in api.calls if c.chat_id == "-5"]) == 1  # asked the old id once


async def test_edit_replaces_a_notification_in_place(tg, api):
    ref = await tg.channel.send(Address("telegram", "123"), Reply.say("Call Rana", choices=[Choice("✅ Done", "task:done:1")]))
    await tg.channel.edit(Address("telegram", "123"), ref, Reply.say("✅ ", bold("Call Rana"), " done"))
    message = api.messages["123"][int(ref)]
    assert message["text"] == "✅ <b>Call Rana</b> done"
    assert "reply_markup" not in message


async def test_in_a_group_only_commands_for_this_bot_are_handled(tg, api, crm, make_user):
    await make_user("Maya", role="manager", identity=("telegram", "321"))
    group = -1001234
    assert texts(await tg.say("lunch anyone?", chat_id=group, user_id=321)) == []
    assert texts(await tg.say("/setchannel@SomeOtherBot", chat_id=group, user_id=321)) == []
    [text] = texts(await tg.say(f"/setchannel@{api.bot_username} Sales", chat_id=group, user_id=321))
    assert "now gets alerts" in text
    async with crm.reader() as uow:
        channel = await uow.channels.by_address(f"telegram:{group}")
    assert isinstance(channel, TeamChannel) and channel.title == "Sales"


@pytest.mark.slow
async def test_pacing_keeps_a_burst_under_telegram_limits(crm, rana):
    async with FakeTelegramAPI(enforce_limits=True) as strict:
        async with running_bot(crm, strict, limits=SendLimits()) as tg:
            for text in ("/help", "/tasks", "/help"):
                await tg.say(text)
            assert strict.floods == 0
            assert len(strict.sent_to(123)) >= 3


def test_webhook_mode_refuses_to_start_without_a_secret(settings):
    broken = settings.model_copy(update={
        "telegram_bot_token": SecretStr("123:ABC"), "telegram_webhook_url": "https://crm.example.com/tg",
    })
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramChannel(broken, router=None)


def test_no_token_is_a_clear_error(settings):
    with pytest.raises(SettingsError, match="BotFather"):
        TelegramChannel(settings, router=None)


@pytest.mark.slow
async def test_webhook_mode_checks_the_secret_token(crm, api, rana, unused_tcp_port):
    url = f"http://127.0.0.1:{unused_tcp_port}/tg-hook"
    settings = bot_settings(
        crm.settings, api, telegram_webhook_url=url, telegram_webhook_listen="127.0.0.1",
        telegram_webhook_port=unused_tcp_port, telegram_webhook_secret=SecretStr("s3cret_hook"),
    )
    channel = TelegramChannel(settings, Router(crm), limits=SendLimits(1000, 0, 0))
    await channel.start()
    try:
        [hook] = api.calls_to("setWebhook")
        assert hook.params["url"] == url and hook.params["secret_token"] == "s3cret_hook"
        update = {"update_id": 9001, **api.message(123, "/help")}
        async with httpx.AsyncClient() as client:
            forged = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
            assert forged.status_code == 403
            good = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret_hook"})
            assert good.status_code == 200
        await api.wait_for(lambda: api.sent_to(123))
        assert "What I can do" in texts(api.sent_to(123))[0]
    finally:
        await channel.stop()


async def test_chats_run_concurrently_but_each_chat_in_order(crm, api):
    """Chat 1's first message waits until chat 2 was served (a deadlock if chats were
    serialised); chat 1's second message starts only after its first finished."""
    log: list[str] = []
    chat2_served = asyncio.Event()

    class Recorder:
        async def handle(self, inbound, progress=None):
            log.append(f"start {inbound.chat_id} {inbound.text}")
            if inbound.text == "first":
                await chat2_served.wait()
            if inbound.chat_id == "2":
                chat2_served.set()
            log.append(f"end {inbound.chat_id} {inbound.text}")
            return [Reply.say("ok ", inbound.text)]

    async with running_bot(crm, api, router=Recorder(), chat_id=1) as tg:
        updates = [api.message(1, "first"), api.message(1, "second"), api.message(2, "other")]
        for update in updates:
            api.push_update(update)
        await api.wait_for(lambda: all(u["update_id"] in tg.handled for u in updates))
    assert log.index("end 2 other") < log.index("end 1 first")
    assert log.index("end 1 first") < log.index("start 1 second")
    assert texts(api.sent_to(1)) == ["ok first", "ok second"]


async def test_charts_and_files_go_out_with_captions(tg, api, tmp_path):
    chart = tmp_path / "won.png"
    chart.write_bytes(b"\x89PNG chart")
    sheet = tmp_path / "deals.xlsx"
    sheet.write_bytes(b"PK sheet")
    reply = Reply(text=Rich.of("📈 Won by month"), image=OutFile(chart, "won.png"),
                  file=OutFile(sheet, "deals.xlsx"))
    await tg.channel.send(Address("telegram", "123"), reply)
    photo, document = api.sent_to(123)
    assert (photo.method, photo.params["caption"], photo.files) == ("sendPhoto", "📈 Won by month", {"won.png": b"\x89PNG chart"})
    assert (document.method, document.files) == ("sendDocument", {"deals.xlsx": b"PK sheet"})

    long_caption = Reply(text=Rich.of("y" * 1500), image=OutFile(chart, "won.png"))
    await tg.channel.send(Address("telegram", "123"), long_caption)
    photo, follow_up = api.sent_to(123)[2:]
    assert "caption" not in photo.params and follow_up.params["text"] == "y" * 1500


async def test_a_document_name_cannot_escape_the_inbox(tg, api, rana, data_dir):
    api.add_file("doc9", b"%PDF quote", "documents/file_9.pdf")
    document = {"file_id": "doc9", "file_unique_id": "ud9", "file_name": "../../quote <v2>.pdf",
                "mime_type": "application/pdf"}
    calls = await tg.say(None, document=document)
    assert "received" in texts(calls)[0]
    [saved] = list((data_dir / "inbox").iterdir())
    assert saved.parent == data_dir / "inbox" and saved.name.endswith("quote_v2_.pdf")
    assert saved.read_bytes() == b"%PDF quote"


async def test_a_notification_that_cannot_be_edited_is_sent_anew(tg, api):
    api.fail("editMessageText", 400, "Bad Request: message to edit not found")
    await tg.channel.edit(Address("telegram", "123"), "4242", Reply.say("✅ Done: Call Layla"))
    assert texts(api.sent_to(123)) == ["✅ Done: Call Layla"]


async def test_a_wrong_token_is_a_clear_error(crm, api):
    settings = bot_settings(crm.settings, api, telegram_bot_token=SecretStr("999:WRONG"))
    channel = TelegramChannel(settings, Router(crm))
    with pytest.raises(SettingsError, match="refused TELEGRAM_BOT_TOKEN") as err:
        await channel.start()
    assert "WRONG" not in str(err.value) and err.value.__cause__ is None


def test_pacer_lets_a_short_burst_through_then_spaces_a_chat():
    """A reply of three messages goes at once; the fourth waits a second; groups get no burst."""
    from bot.telegram_channel import Pacer

    now = [100.0]
    pacer = Pacer(SendLimits(overall_per_s=1000), lambda: now[0])
    waits = [pacer.reserve("42") for _ in range(4)]
    assert waits[:3] == [0.0, pytest.approx(0.00105), pytest.approx(0.0021)]
    assert waits[3] == pytest.approx(1.05, abs=0.01)
    group = Pacer(SendLimits(overall_per_s=1000), lambda: now[0])
    assert group.reserve("-100") == 0.0 and group.reserve("-100") == pytest.approx(3.15, abs=0.01)
    paused = Pacer(SendLimits(overall_per_s=1000), lambda: now[0])
    paused.pause("7", 5.0)
    assert paused.reserve("7") == pytest.approx(5.0, abs=0.01)
