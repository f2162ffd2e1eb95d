"""The bot process is SIGKILLed in the middle of each guided flow, twice: once at a random step
while it is handling an answer, once inside the commit of the final submit. A new process over
the same database continues from the same step with the earlier answers kept, and the records
written in the end are exactly those of a run that never crashed; in between, nothing is
half-written.

The platform re-delivers the message that was being handled when the process died (Telegram
and Slack do: it was never acknowledged), with the same update/event id.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from conversations.router import Router
from handlers.contacts import create_lead
from handlers.values import Money
from tests.chat import Chat
from tests.conftest import T0
from tests.reliability.conftest import copy_sqlite, flow_state, snapshot, sqlite_only
from tests.reliability.processes import Child

BOT = "tests.reliability.bot_process"
USER = "7"

SCRIPTS = {
    "newlead": ["/newlead", "Layla Nasser", "Acme Trading", "050 123 4567", "layla@acme.ae",
                "Website", "5k", "tomorrow 3pm"],
    "log": ["/log", "Layla", "Call", "Discussed the quote", "interested", "skip"],
    "followup": ["/followup", "Layla", "Send revised quote", "monday 10am"],
    "move": ["/move", "Layla", "Lost", "price"],
    "won": ["/won", "Layla", "skip", "2000", "Monthly", "2", "next week", "confirm"],
    "pay": ["/pay", "Layla", "Oldest open first", "2,000", "today", "Cash", "skip", "confirm"],
}


async def prepare(crm, make_user, flow: str) -> None:
    """Rana, and what the flow works on: a lead (and for /pay a won deal with a contract)."""
    rana = await make_user("Rana", identity=("telegram", USER))
    if flow == "newlead":
        return
    await create_lead(crm, rana, name="Layla Nasser", company="Acme Trading",
                      value=Money(500_000, "USD"), next_step_at=T0 + timedelta(days=1))
    if flow == "pay":
        chat = Chat(Router(crm), platform="telegram", user_id=USER)
        for text in SCRIPTS["won"]:
            await chat.say(text)
        assert "Deal won!" in chat.last_text


def bot(url: str, data_dir, *extra: str):
    return Child.start(BOT, url, str(data_dir), "--now", T0.isoformat(), *extra)


def message(steps: list[str], i: int) -> dict:
    return {"user": USER, "text": steps[i], "event": f"update-{i}"}


async def reference_run(url: str, tmp_path, data_dir, steps: list[str]):
    """The flow on a copy of the database, never crashed: the replies, the stored state after
    each step, and the rows it ends with."""
    ref_url = copy_sqlite(url, tmp_path / "reference.db")
    child = await bot(ref_url, data_dir)
    replies, states = [], []
    for i in range(len(steps)):
        replies.append((await child.ask(message(steps, i)))["replies"])
        states.append(await flow_state(ref_url, "telegram", USER))
    assert await child.stop() == 0
    return replies, states, await snapshot(ref_url)


@pytest.mark.slow
@sqlite_only
@pytest.mark.parametrize("flow", list(SCRIPTS))
async def test_a_killed_bot_resumes_the_flow_and_writes_each_record_once(
    flow, crm, make_user, data_dir, tmp_path, rng
):
    url = crm.settings.database_url
    steps = SCRIPTS[flow]
    await prepare(crm, make_user, flow)
    replies, states, expected = await reference_run(url, tmp_path, data_dir, steps)
    assert states[-1] is None and expected != await snapshot(url)  # the flow does write
    before = await snapshot(url)

    # 1. Killed while handling a random middle answer (it may or may not have been applied).
    crash_at = rng.randrange(1, len(steps) - 1)
    child = await bot(url, data_dir)
    for i in range(crash_at):
        assert (await child.ask(message(steps, i)))["replies"] == replies[i]
    await child.send(message(steps, crash_at))
    await asyncio.sleep(rng.uniform(0, 0.05))
    await child.kill()
    assert await snapshot(url) == before  # nothing is written before the last answer
    assert await flow_state(url, "telegram", USER) in (states[crash_at - 1], states[crash_at])

    # 2. A new process gets the re-delivered answer, then dies inside the final commit.
    child = await bot(url, data_dir, "--die-in-submit")
    again = (await child.ask(message(steps, crash_at)))["replies"]
    assert again in ([], replies[crash_at])  # acted on once: by the dead process or this one
    assert await flow_state(url, "telegram", USER) == states[crash_at]
    for i in range(crash_at + 1, len(steps) - 1):
        assert (await child.ask(message(steps, i)))["replies"] == replies[i]
    await child.send(message(steps, len(steps) - 1))
    assert await child.proc.wait() < 0  # killed by its own SIGKILL mid-commit
    await child.kill()
    assert await snapshot(url) == before  # the submit's rows were rolled back, all of them
    assert await flow_state(url, "telegram", USER) == states[-2]  # still at the last question

    # 3. The platform re-delivers the last answer to a healthy process: saved exactly once.
    child = await bot(url, data_dir)
    assert (await child.ask(message(steps, len(steps) - 1)))["replies"] == replies[-1]
    assert await child.stop() == 0
    assert await snapshot(url) == expected
    assert await flow_state(url, "telegram", USER) is None
