"""Benchmark: 1,000 follow-up reminders due in the same minute, to 1,000 reps, through the
outbox sender, against Telegram's limits (30 messages/s overall, 1/s per chat).

    .venv/bin/python bench/bench_fanout.py               # both runs below, 1,000 reminders
    .venv/bin/python bench/bench_fanout.py --reps 300    # a quicker look

1. A fake channel in process that enforces the limits with real time and raises `RetryLater`
   beyond them (what the real channel does on a 429).
2. If `tests/fakes/telegram_api.py` exists: the real `TelegramChannel` (python-telegram-bot)
   over HTTP against that fake Bot API server with `enforce_limits=True`.

For each it prints the total time against the floor the limits allow (reps / 30 s), the
429s met, and how many reminders were lost or delivered twice. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from bot.base import RetryLater  # noqa: E402
from config import load_settings  # noqa: E402
from conversations.messages import Address, Reply  # noqa: E402
from handlers.context import CRM, SystemClock  # noqa: E402
from jobs.scans import followup_reminders  # noqa: E402
from jobs.sender import OutboxSender  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.migrate import upgrade_async  # noqa: E402
from storage.models import Identity, Task, User  # noqa: E402

OVERALL_PER_S = 30
FAKE_API = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "telegram_api.py"


class LimitedChannel:
    """Telegram's limits with real time: sliding 1 s windows overall (30) and per chat (1)."""

    platform = "telegram"

    def __init__(self) -> None:
        self.delivered: Counter[str] = Counter()
        self.floods = 0
        self._overall: deque[float] = deque()
        self._chats: dict[str, float] = defaultdict(lambda: -10.0)

    async def send(self, address: Address, reply: Reply) -> str:
        await asyncio.sleep(0.002)  # a round trip to the API
        now = time.monotonic()
        while self._overall and self._overall[0] <= now - 1.0:
            self._overall.popleft()
        wait = max(
            self._chats[address.chat_id] + 1.0 - now,
            self._overall[0] + 1.0 - now if len(self._overall) >= OVERALL_PER_S else 0.0,
        )
        if wait > 0:
            self.floods += 1
            raise RetryLater(max(1, round(wait)), "429 Too Many Requests")
        self._overall.append(now)
        self._chats[address.chat_id] = now
        self.delivered[address.chat_id] += 1
        return str(sum(self.delivered.values()))


async def seeded_crm(reps: int, tmp: Path) -> tuple[CRM, datetime]:
    url = f"sqlite:///{tmp / 'bench.db'}"
    await upgrade_async(url)
    settings = load_settings(DATABASE_URL=url, CRM_DATA_DIR=str(tmp))
    crm = CRM(db=open_database(url), settings=settings, clock=SystemClock())
    now = crm.now().replace(second=0, microsecond=0)
    async with crm.db.engine.begin() as conn:
        await conn.execute(
            insert(User),
            [
                dict(id=i, display_name=f"Rep {i}", role="rep", timezone="UTC", created_at=now)
                for i in range(1, reps + 1)
            ],
        )
        await conn.execute(
            insert(Identity),
            [
                dict(
                    user_id=i,
                    platform="telegram",
                    platform_user_id=str(10_000 + i),
                    dm_address=f"telegram:{10_000 + i}",
                    created_at=now,
                )
                for i in range(1, reps + 1)
            ],
        )
        await conn.execute(
            insert(Task),
            [
                dict(
                    title=f"Call client {i}", due_at=now, owner_id=i, status="open", created_at=now
                )
                for i in range(1, reps + 1)
            ],
        )
    return crm, now


async def deliver_all(crm: CRM, channel, reps: int, delivered) -> tuple[float, int]:
    """Run one sender until every reminder is sent or dead; (seconds, rows still pending)."""
    sender = OutboxSender(crm, {"telegram": channel}, "bench")
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(sender.run_forever(stop))
    while (
        sum(delivered().values()) < reps and time.monotonic() - started < 10 * reps / OVERALL_PER_S
    ):
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    stop.set()
    await task
    async with crm.reader() as uow:
        counts = await uow.outbox.counts_by_status()
    return elapsed, counts.get("pending", 0)


def report(
    title: str,
    reps: int,
    elapsed: float,
    delivered: Counter,
    floods: int,
    pending: int,
    queued: int,
) -> None:
    floor = reps / OVERALL_PER_S
    print(f"\n{title}")
    print(f"  reminders queued by the scan: {queued}")
    print(
        f"  total time: {elapsed:.2f} s   floor {floor:.2f} s   ({(elapsed / floor - 1) * 100:+.1f}% over)"
    )
    print(
        f"  delivered: {len(delivered)}   lost: {reps - len(delivered)}   "
        f"duplicated: {sum(n - 1 for n in delivered.values() if n > 1)}   "
        f"429s met: {floods}   still pending: {pending}"
    )


async def bench_fake_channel(reps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        crm, now = await seeded_crm(reps, Path(tmp))
        try:
            queued = await followup_reminders(crm, now)
            channel = LimitedChannel()
            elapsed, pending = await deliver_all(crm, channel, reps, lambda: channel.delivered)
            report(
                "1) sender -> in-process channel with Telegram's limits",
                reps,
                elapsed,
                channel.delivered,
                channel.floods,
                pending,
                queued,
            )
        finally:
            await crm.db.dispose()


async def bench_real_telegram_channel(reps: int) -> None:
    sys.path.insert(0, str(FAKE_API.parent.parent.parent))
    from bot.telegram_channel import TelegramChannel
    from tests.fakes.telegram_api import FakeTelegramAPI, bot_settings

    with tempfile.TemporaryDirectory() as tmp:
        crm, now = await seeded_crm(reps, Path(tmp))
        try:
            queued = await followup_reminders(crm, now)
            async with FakeTelegramAPI(enforce_limits=True) as api:
                channel = TelegramChannel(
                    bot_settings(crm.settings, api), router=None, poll_timeout=1.0
                )
                await channel.start()
                try:

                    def delivered() -> Counter:
                        return Counter(
                            c.chat_id for c in api.calls_to("sendMessage") if c.status == 200
                        )

                    elapsed, pending = await deliver_all(crm, channel, reps, delivered)
                finally:
                    await channel.stop()
                report(
                    "2) sender -> real TelegramChannel (PTB over HTTP) -> fake Bot API with limits",
                    reps,
                    elapsed,
                    delivered(),
                    api.floods,
                    pending,
                    queued,
                )
        finally:
            await crm.db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"{args.reps} reminders due at once; Telegram allows {OVERALL_PER_S}/s overall, 1/s per chat"
    )
    await bench_fake_channel(args.reps)
    if FAKE_API.exists():
        await bench_real_telegram_channel(args.reps)
    else:
        print("\n2) skipped: tests/fakes/telegram_api.py is not there yet")


if __name__ == "__main__":
    asyncio.run(main())
