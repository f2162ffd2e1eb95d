"""The console chat: a scripted session piped into `main.py console`, and the channel's
numbered choices answered by number or by name."""
from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.console_channel import ConsoleChannel, render
from conversations.messages import Choice, Reply
from conversations.router import Router
from handlers.users import ensure_console_admin
from storage.models import Contact, Deal
from tests.chat import all_rows

ROOT = Path(__file__).resolve().parent.parent
# Anything that would make main.py open Telegram, Slack or the intake API instead.
SURFACE_VARS = ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "CRM_API_KEY")


def run_console(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SURFACE_VARS}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}", CRM_DATA_DIR=str(tmp_path / "data"),
               CRM_PHONE_REGION="AE", CRM_TIMEZONE="Asia/Dubai", CRM_CURRENCY="AED",
               CRM_LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "console"], input="\n".join(lines) + "\n",
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )


@pytest.mark.slow
def test_a_piped_session_creates_a_lead_and_exits_cleanly(tmp_path):
    result = run_console(tmp_path, [
        "/newlead Acme Trading +971501234567",
        "Acme",          # company
        "",              # blank lines are ignored
        "skip",          # email: the Skip choice, by name
        "2",             # source: the second choice (Referral), by number
        "1",             # value: a number here is an amount, never a pick
        "back",          # ... so take it back
        "1.5k",
        "tomorrow 3pm",
        "/find acme",
    ])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("ChatCRM console — /help lists commands, /quit leaves.")
    assert "> /newlead Acme Trading +971501234567" in out  # piped lines are echoed
    assert "[1] Website   [2] Referral" in out
    assert "✅ Lead saved: Acme Trading (Acme)" in out
    assert "AED" in out and "1,500.00" in out
    assert "Next step: " in out and "15:00 Asia/Dubai" in out
    assert "Owner: You · Source: referral" in out  # /find shows the card

    with sqlite3.connect(tmp_path / "crm.db") as db:
        contacts = db.execute("SELECT name, company, phone, source FROM contacts").fetchall()
        deals = db.execute("SELECT value_minor, currency FROM deals").fetchall()
    assert contacts == [("Acme Trading", "Acme", "+971501234567", "referral")]
    assert deals == [(150000, "AED")]


@pytest.mark.slow
def test_quit_leaves_and_an_unfinished_flow_waits_for_the_next_run(tmp_path):
    first = run_console(tmp_path, ["/newlead Globex", "/quit", "this line is never read"])
    assert first.returncode == 0, first.stderr
    assert "this line is never read" not in first.stdout
    second = run_console(tmp_path, ["Globex LLC"])  # answers the company question asked last time
    assert second.returncode == 0, second.stderr
    assert "Phone number?" in second.stdout


def test_render_numbers_choices_and_drops_control_characters():
    reply = Reply.say("Pick \x1b[2Jone", choices=(Choice("Website", "ans:website"), Choice("Ads", "ans:ads")))
    assert render(reply) == "Pick [2Jone\n   [1] Website   [2] Ads"


async def test_console_answers_by_number_and_by_name(crm):
    await ensure_console_admin(crm)
    script = "\n".join([
        "/newlead Rana Haddad", "skip", "skip", "skip",
        "website",  # a choice by its label
        "skip",     # value
        "1",        # a date question: a number picks the first quick answer, Tomorrow
        "/move", "1", "lost", "Too expensive",
    ]) + "\n"
    out = io.StringIO()
    await ConsoleChannel(Router(crm), stdin=io.StringIO(script), stdout=out).run()
    text = out.getvalue()
    assert "✅ Lead saved: Rana Haddad" in text and "Next step: Sat 5 Dec, 09:00 UTC" in text
    assert "is now Lost." in text
    [contact] = await all_rows(crm, Contact)
    assert contact.source == "website"
    [deal] = await all_rows(crm, Deal)
    assert (deal.stage, deal.lost_reason) == ("lost", "Too expensive")
