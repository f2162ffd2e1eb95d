"""A bot process for the crash tests: the composed CRM and Router (as `main.py` builds them)
over a database, fed inbound messages as JSON lines on stdin.

    python -m tests.reliability.bot_process DATABASE_URL DATA_DIR [--now ISO] [--die-in-submit]

In:  {"platform": "telegram", "user": "1", "text": "...", "event": "e7"}   (one per line)
Out: {"replies": [{"text": "...", "ask": "phone", "choices": ["Skip"]}]}   (one per line)

`--now` fixes the clock (so a reference run and a crashed run write the same rows);
`--die-in-submit` SIGKILLs the process inside the commit of the first submit, after the use
case has written its rows and before they land: the worst moment for a crash.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from datetime import datetime

from config import load_settings
from conversations.messages import Inbound
from conversations.router import _SUBMITTING
from handlers.context import FixedClock
from main import build_crm, build_router


async def _die_in_submit(_uow, _events) -> None:
    if _SUBMITTING.get() is not None:
        os.kill(os.getpid(), signal.SIGKILL)


def _emit(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def serve(args: argparse.Namespace) -> None:
    settings = load_settings(
        DATABASE_URL=args.database_url, CRM_DATA_DIR=args.data_dir, CRM_TIMEZONE="UTC",
        CRM_CURRENCY="USD", CRM_PHONE_REGION="AE",
    )
    crm = await build_crm(settings)
    if args.now:
        crm.clock = FixedClock(datetime.fromisoformat(args.now))
    router = build_router(crm)
    if args.die_in_submit:
        crm.hooks.append(_die_in_submit)  # after the router's hook: the state delete is written too
    _emit({"ready": True})
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            msg = json.loads(line)
            inbound = Inbound(
                platform=msg.get("platform", "telegram"), chat_id=msg["user"], user_id=msg["user"],
                text=msg.get("text"), action=msg.get("action"), event_key=msg.get("event"),
            )
            replies = await router.handle(inbound)
            _emit({"replies": [
                {"text": r.text.plain, "ask": r.ask, "choices": [c.label for c in r.choices]}
                for r in replies
            ]})
    finally:
        await crm.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("data_dir")
    parser.add_argument("--now", help="a fixed ISO time for the clock")
    parser.add_argument("--die-in-submit", action="store_true")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
