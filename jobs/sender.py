"""The outbox sender: claims due rows, paces them per platform limits, delivers, marks.

Delivery guarantee: a row is marked sent in its own short transaction right after the
platform accepted it. If the process dies between the platform's "ok" and that commit, the row
is re-claimed when its lease runs out and that message is sent again; nothing is lost, and
only messages in flight at the crash can repeat (at Telegram's pace one at most in practice;
never more than `max_in_flight`). Everything else (claiming, retries, dead letters) is
exactly-once through the `claimed_by` guard on every update.

Pacing (per sender process): Telegram about 30 messages/s overall, 1/s per chat and 20/min per
group chat (negative chat ids); Slack about 1/s per channel. A 429 (`RetryLater`) pauses that
chat and re-queues the row after `retry_after`; `Unreachable` marks the row dead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from bot.base import Channel, RetryLater, Unreachable
from conversations.messages import Address
from handlers.context import CRM
from jobs.payload import reply_from_json
from storage.models import OutboxMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """How fast one platform may be sent to. Intervals are seconds between two sends."""

    overall_per_s: float
    chat_interval: float
    group_interval: float


# A 5% margin under the documented rates absorbs network jitter at the platform's counter.
SAFETY = 1.05
PLATFORM_LIMITS: dict[str, Limits] = {
    "telegram": Limits(overall_per_s=30, chat_interval=1.0, group_interval=3.0),  # 20/min
    "slack": Limits(overall_per_s=20, chat_interval=1.0, group_interval=1.0),
}
REMEMBERED_CHATS = 10_000
UNLIMITED = Limits(overall_per_s=1000, chat_interval=0.0, group_interval=0.0)

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def is_group_chat(address: Address) -> bool:
    """Telegram group and supergroup chat ids are negative."""
    return address.platform == "telegram" and address.chat_id.startswith("-")


class Pacer:
    """Start times for sends on one platform: evenly spaced overall, and spaced per chat."""

    def __init__(self, limits: Limits, monotonic: Monotonic) -> None:
        self._gap = SAFETY / limits.overall_per_s
        self._limits = limits
        self._clock = monotonic
        self._next_any = 0.0
        self._next_chat: dict[str, float] = {}

    @property
    def gap(self) -> float:
        """Seconds between two sends on this platform; a row waits at most this for its chat
        inside a batch, longer waits go back to the queue so other chats use the slots."""
        return self._gap

    def busy_for(self, address: Address) -> float:
        """Seconds until `address`'s chat may receive again (0 if it may now)."""
        return max(0.0, self._next_chat.get(address.chat_id, 0.0) - self._clock())

    def reserve(self, address: Address) -> float:
        """Reserve and return the monotonic time at which a send to `address` may start."""
        start = max(self._clock(), self._next_any, self._next_chat.get(address.chat_id, 0.0))
        self._next_any = start + self._gap
        interval = (
            self._limits.group_interval if is_group_chat(address) else self._limits.chat_interval
        )
        self._next_chat[address.chat_id] = start + SAFETY * interval
        if len(self._next_chat) > REMEMBERED_CHATS:  # forget chats whose slot is long past
            now = self._clock()
            self._next_chat = {c: t for c, t in self._next_chat.items() if t > now}
        return start

    def pause(self, address: Address, seconds: float) -> None:
        """The platform said "retry after": keep off this chat for that long."""
        until = self._clock() + seconds
        self._next_chat[address.chat_id] = max(self._next_chat.get(address.chat_id, 0.0), until)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class OutboxSender:
    """Delivers outbox rows through `channels` (platform -> Channel).

    `run_once()` sends one batch and returns how many rows it handled; `run_forever(stop)`
    polls until `stop` is set. Only rows for platforms in `channels` are claimed, so a process
    without Slack leaves Slack rows to one that has it.
    """

    def __init__(
        self,
        crm: CRM,
        channels: Mapping[str, Channel],
        worker_id: str | None = None,
        *,
        batch_size: int = 100,
        lease: timedelta = timedelta(minutes=2),
        max_attempts: int = 10,
        max_in_flight: int = 50,
        poll_interval: float = 1.0,
        limits: Mapping[str, Limits] = PLATFORM_LIMITS,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.crm = crm
        self.channels = dict(channels)
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.lease = lease
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._pacers = {p: Pacer(limits.get(p, UNLIMITED), monotonic) for p in self.channels}

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; an idle poll waits `poll_interval` seconds."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:  # a database hiccup must not end delivery for good
                log.exception("outbox sender %s: batch failed", self.worker_id)
                handled = 0
            if handled == 0:
                try:
                    await asyncio.wait_for(stop.wait(), self.poll_interval)
                except asyncio.TimeoutError:
                    pass

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver it; returns the number of rows handled."""
        rows = await self._claim()
        deliveries = []
        for row in rows:
            try:
                address = Address.parse(row.address)
            except ValueError as err:
                await self._finish(row, "dead", error=str(err))
                continue
            pacer = self._pacers[address.platform]
            wait = pacer.busy_for(address)
            if wait > pacer.gap:
                await self._defer(row, wait)  # the chat is busy: give the slot to other chats
                continue
            deliveries.append(self._deliver(row, address, pacer.reserve(address)))
        for failure in await asyncio.gather(*deliveries, return_exceptions=True):
            if failure is not None:  # e.g. the database went away while marking: the lease
                log.error("outbox sender %s: %r", self.worker_id, failure)  # brings it back
        return len(rows)

    async def _claim(self) -> list[OutboxMessage]:
        now = self.crm.now()
        async with self.crm.uow(action="outbox_claim") as uow:
            rows = await uow.outbox.claim(
                self.worker_id,
                now=now,
                lease_until=now + self.lease,
                limit=self.batch_size,
                platforms=sorted(self.channels),
            )
            await uow.commit()
            return rows

    async def _deliver(self, row: OutboxMessage, address: Address, start: float) -> None:
        async with self._in_flight:
            delay = start - self._monotonic()
            if delay > 0:
                await self._sleep(delay)
            channel = self.channels[address.platform]
            try:
                ref = await channel.send(address, reply_from_json(row.payload))
            except Unreachable as err:
                await self._finish(row, "dead", error=f"unreachable: {err}")
            except RetryLater as err:
                self._pacers[address.platform].pause(address, err.retry_after)
                await self._retry(row, err.retry_after, f"retry later: {err}")
            except Exception as err:  # a channel bug or outage: back off, never crash the loop
                log.warning("outbox row %s to %s failed: %r", row.id, row.address, err)
                await self._retry(row, self._backoff(row.attempts), repr(err))
            else:
                await self._finish(row, "sent", message_ref=ref)

    @staticmethod
    def _backoff(attempts: int) -> float:
        return min(5.0 * 2**attempts, 3600.0)

    async def _retry(self, row: OutboxMessage, after: float, error: str) -> None:
        if row.attempts + 1 >= self.max_attempts:
            await self._finish(
                row, "dead", error=f"gave up after {row.attempts + 1} tries: {error}"
            )
            return
        async with self.crm.uow(action="outbox_retry") as uow:
            await uow.outbox.retry_at(
                row.id, self.worker_id, not_before=uow.now + timedelta(seconds=after), error=error
            )
            await uow.commit()

    async def _defer(self, row: OutboxMessage, seconds: float) -> None:
        async with self.crm.uow(action="outbox_defer") as uow:
            await uow.outbox.retry_at(
                row.id,
                self.worker_id,
                not_before=uow.now + timedelta(seconds=seconds),
                error=None,
                count_attempt=False,
            )
            await uow.commit()

    async def _finish(
        self, row: OutboxMessage, outcome: str, *, message_ref=None, error=""
    ) -> None:
        async with self.crm.uow(action="outbox_send") as uow:
            if outcome == "sent":
                ok = await uow.outbox.mark_sent(
                    row.id, self.worker_id, now=uow.now, message_ref=message_ref
                )
            else:
                ok = await uow.outbox.mark_dead(row.id, self.worker_id, error=error)
            await uow.commit()
        if not ok:
            log.warning("outbox row %s: lease lost before it was marked %s", row.id, outcome)
