"""Rendering replies for Telegram: escaping, splitting at line boundaries, keyboards, captions."""
from __future__ import annotations

from pathlib import Path

from telegram import InlineKeyboardMarkup, ReplyKeyboardMarkup

from bot.telegram_channel import api_urls, command_menu
from bot.telegram_inbound import command_text
from bot.telegram_render import MAX_CAPTION, MAX_TEXT, messages_for, split, to_html, visible_length
from conversations.messages import Choice, OutFile, Reply
from conversations.rich import Rich, bold, code, link

HOSTILE = "<b>Evil</b> & Co. *_["


def test_every_span_is_escaped_and_styles_are_real_tags():
    text = Rich.of("Lead ", bold(HOSTILE), " ", code("a<b"), " ", link("x&y", "https://e.com/?a=1&b=\"2\""))
    assert to_html(text) == (
        "Lead <b>&lt;b&gt;Evil&lt;/b&gt; &amp; Co. *_[</b> <code>a&lt;b</code> "
        '<a href="https://e.com/?a=1&amp;b=&quot;2&quot;">x&amp;y</a>'
    )


def test_short_text_is_one_piece():
    assert [p.plain for p in split(Rich.of("one\ntwo"))] == ["one\ntwo"]


def test_long_text_splits_at_line_boundaries_keeping_every_line():
    lines = [f"Deal #{i:04d} · " + "x" * 80 for i in range(120)]  # ~11,000 characters
    pieces = split(Rich.of(bold("Pipeline"), "\n", "\n".join(lines)))
    assert len(pieces) == 3
    assert all(visible_length(p.plain) <= MAX_TEXT for p in pieces)
    joined = "\n".join(p.plain for p in pieces)
    assert joined == "Pipeline\n" + "\n".join(lines)
    assert pieces[0].spans[0] == bold("Pipeline")
    assert all(p.plain.startswith(("Pipeline", "Deal #")) for p in pieces)


def test_a_single_line_longer_than_a_message_is_cut_inside():
    pieces = split(Rich.of("😀" * 3000))  # each emoji is 2 UTF-16 units
    assert [visible_length(p.plain) for p in pieces] == [4096, 1904]
    assert "".join(p.plain for p in pieces) == "😀" * 3000


def test_choices_become_inline_buttons_on_the_last_piece():
    reply = Reply.say("x\n" * 3000, choices=[Choice("✅ Confirm", "nav:ok"), Choice("Skip", "nav:skip")])
    out = messages_for(reply)
    assert len(out) == 2
    assert out[0].markup is None
    markup = out[1].markup
    assert isinstance(markup, InlineKeyboardMarkup)
    assert [[b.callback_data for b in row] for row in markup.inline_keyboard] == [["nav:ok", "nav:skip"]]


def test_phone_steps_offer_the_share_contact_keyboard():
    reply = Reply.say("📞 Phone?", choices=[Choice("Skip", "nav:skip")], ask="phone", kind="phone")
    [message] = messages_for(reply)
    assert isinstance(message.markup, ReplyKeyboardMarkup)
    rows = message.markup.keyboard
    assert rows[0][0].request_contact is True
    assert rows[1][0].text == "Skip"  # typed as text, which the flow understands
    assert message.markup.one_time_keyboard is True


def test_long_captions_move_to_a_follow_up_message(tmp_path: Path):
    chart = OutFile(tmp_path / "chart.png", "chart.png")
    short = messages_for(Reply(text=Rich.of("Won this month"), image=chart))
    assert [(m.photo, m.text) for m in short] == [(chart, "Won this month")]
    long = messages_for(Reply(text=Rich.of("y" * (MAX_CAPTION + 1)), image=chart))
    assert [(m.photo, m.text) for m in long] == [(chart, ""), (None, "y" * (MAX_CAPTION + 1))]


def test_commands_for_this_bot_lose_the_mention_and_others_are_ignored():
    assert command_text("/tasks@ChatCRM_Bot today", "chatcrm_bot") == "/tasks today"
    assert command_text("/tasks@OtherBot", "chatcrm_bot") is None
    assert command_text("hello @someone", "chatcrm_bot") == "hello @someone"


def test_api_urls_accept_a_root_or_a_bot_url():
    assert api_urls(None) == ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot")
    assert api_urls("http://127.0.0.1:8081/bot") == ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot")
    assert api_urls("http://127.0.0.1:8081/") == ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot")


def test_command_menu_is_valid_for_telegram():
    menu = command_menu()
    names = [c.command for c in menu]
    assert {"newlead", "log", "followup", "move", "won", "pay", "find", "tasks"} <= set(names)
    assert len(names) == len(set(names)) <= 100
    assert all(1 <= len(c.description) <= 256 for c in menu)
