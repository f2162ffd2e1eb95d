"""Putting notifications in the outbox: once per dedupe key, at the right time for the reader.

Keys name what the message is about and when, so running a scan twice enqueues once:
`reminder:task:42:2026-12-05T06:00Z`, `morning:user:7:2026-12-05`. A message to several
addresses (a user on Telegram and Slack) becomes one row per address, keyed `<key>@<address>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from conversations.messages import Reply
from jobs.notify import dm_addresses, next_allowed_time
from jobs.payload import reply_to_json
from storage.models import User
from storage.uow import UnitOfWork


def utc_key(at: datetime) -> str:
    """A minute-precision UTC stamp for keys: 2026-12-05T06:00Z."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


async def already_queued(uow: UnitOfWork, key: str, addresses: Iterable[str]) -> bool:
    """Whether `key` was queued to any of `addresses` (exact keys: the unique index answers)."""
    for address in addresses:
        if await uow.outbox.by_key(f"{key}@{address}") is not None:
            return True
    return False


async def enqueue(
    uow: UnitOfWork,
    key: str,
    addresses: Iterable[str],
    reply: Reply,
    *,
    kind: str,
    not_before: datetime | None = None,
) -> int:
    """Queue `reply` to each address under `key`; returns how many rows were new."""
    payload = reply_to_json(reply)
    added = 0
    for address in addresses:
        added += await uow.outbox.enqueue(
            dedupe_key=f"{key}@{address}",
            address=address,
            kind=kind,
            payload=payload,
            not_before=not_before or uow.now,
            now=uow.now,
        )
    return added


async def enqueue_dm(
    uow: UnitOfWork, user: User, key: str, reply: Reply, *, kind: str, urgent: bool = False
) -> int:
    """Queue `reply` to every DM of `user`, held back to their working hours unless urgent."""
    addresses = await dm_addresses(uow, user.id)
    when = next_allowed_time(user, uow.now, urgent=urgent)
    return await enqueue(uow, key, addresses, reply, kind=kind, not_before=when)
