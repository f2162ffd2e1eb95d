"""Who gets a notification where, and when they may be disturbed.

- `dm_addresses`: a user's direct-message addresses, one per chat account.
- `next_allowed_time`: the first moment at or after `at` that is inside the user's working
  hours on a work day and outside their quiet hours, in their own time zone. All arithmetic is
  on local wall-clock dates and times converted back to UTC, so a DST change neither skips nor
  doubles anything (09:00 stays 09:00 local on both sides of the change).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.models import User
from storage.uow import UnitOfWork

# Enough to cross a long weekend plus quiet hours; a misconfigured user (no work days) still
# gets the message after a week rather than never.
MAX_DAYS_AHEAD = 8


async def dm_addresses(uow: UnitOfWork, user_id: int) -> list[str]:
    """The addresses where `user_id` receives direct messages (every linked chat account)."""
    return [i.dm_address for i in await uow.users.identities_of(user_id) if i.dm_address]


def user_zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def work_days(user: User) -> frozenset[int]:
    """Weekday numbers (Monday = 0) the user works; Monday to Friday if unset or garbled."""
    try:
        days = frozenset(int(d) for d in (user.work_days or "").split(",") if d.strip())
    except ValueError:
        days = frozenset()
    return days or frozenset(range(5))


def local_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`day` at wall-clock `at` in `tz`, as UTC. In the autumn overlap the first 09:00 is
    meant; a time inside a spring-forward gap shifts by the gap (02:30 becomes 03:30)."""
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def in_quiet_hours(user: User, local: time) -> bool:
    start, end = user.quiet_start, user.quiet_end
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # wraps midnight, e.g. 22:00-07:00


def next_allowed_time(user: User, at: datetime, *, urgent: bool = False) -> datetime:
    """The earliest moment >= `at` when a non-urgent message may reach `user`.

    Urgent messages (a follow-up reminder the rep set for that time, a welcome) go at once.
    """
    if urgent:
        return at
    tz = user_zone(user)
    days = work_days(user)
    start, end = user.work_start or time(9, 0), user.work_end or time(18, 0)
    if end <= start:  # an overnight shift (22:00-06:00): working hours cannot hold anything back
        start, end = time(0), time.max
    candidate = at
    for _ in range(MAX_DAYS_AHEAD * 3):
        local = candidate.astimezone(tz)
        today = local.date()
        moved = None
        if local.weekday() not in days or local.time() >= end:
            moved = local_at(today + timedelta(days=1), start, tz)
        elif local.time() < start:
            moved = local_at(today, start, tz)
        elif in_quiet_hours(user, local.time()):
            quiet_end = user.quiet_end
            end_day = today if local.time() < quiet_end else today + timedelta(days=1)
            moved = local_at(end_day, quiet_end, tz)
        if moved is None:
            return candidate
        candidate = max(moved, candidate + timedelta(minutes=1))
    return candidate
