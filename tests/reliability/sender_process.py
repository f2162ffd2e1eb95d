"""An outbox sender process for the crash tests: the real `OutboxSender` with a channel that
"delivers" by appending a line to a file (what the user's phone would show).

    python -m tests.reliability.sender_process DATABASE_URL LOG_FILE [--lease-seconds S]
                                               [--die-after N]

Prints {"ready": true}, sends until stdin closes. `--die-after N` SIGKILLs the process right
after the platform accepted the Nth message and before the outbox row is marked: the worst
moment for a crash.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

from config import load_settings
from conversations.messages import Address, Reply
from handlers.context import CRM
from jobs.sender import OutboxSender
from storage.db import open_database


class FileChannel:
    """A Telegram stand-in: every accepted message becomes one line `<address>\t<text>`."""

    platform = "telegram"

    def __init__(self, path: Path, die_after: int | None) -> None:
        self._out = path.open("a", encoding="utf-8")
        self._die_after = die_after
        self._sent = 0

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self._out.close()

    async def send(self, address: Address, reply: Reply) -> str:
        await asyncio.sleep(0.005)  # the request's round trip: other sends overlap it
        self._out.write(f"{address}\t{reply.text.plain.splitlines()[0]}\n")
        self._out.flush()  # in the kernel's hands: survives a SIGKILL of this process
        self._sent += 1
        if self._sent == self._die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return f"file-{self._sent}"

    async def edit(self, address: Address, message_ref: str, reply: Reply) -> None: ...


async def serve(args: argparse.Namespace) -> None:
    settings = load_settings(DATABASE_URL=args.database_url, CRM_DATA_DIR=str(Path(args.log).parent))
    crm = CRM(db=open_database(settings.database_url), settings=settings)
    channel = FileChannel(Path(args.log), args.die_after)
    sender = OutboxSender(crm, {"telegram": channel}, lease=timedelta(seconds=args.lease_seconds),
                          poll_interval=0.1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)))
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    try:
        await sender.run_forever(stop)
    finally:
        await channel.stop()
        await crm.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("log")
    parser.add_argument("--lease-seconds", type=float, default=120)
    parser.add_argument("--die-after", type=int)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
