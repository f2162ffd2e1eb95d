"""Working hours, quiet hours and DST for notifications that can wait."""

from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from jobs.notify import dm_addresses, local_at, next_allowed_time
from storage.models import User
from tests.jobs_support import add_identity

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def user(**fields) -> User:
    base = dict(
        display_name="Rana",
        timezone="UTC",
        work_start=time(9),
        work_end=time(18),
        work_days="0,1,2,3,4",
        quiet_start=None,
        quiet_end=None,
    )
    return User(**{**base, **fields})


def test_inside_working_hours_goes_now():
    at = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)  # Friday
    assert next_allowed_time(user(), at) == at


def test_after_hours_on_friday_waits_for_monday_morning_in_the_users_zone():
    at = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)
    dubai = user(timezone="Asia/Dubai")  # UTC+4: Monday 09:00 is 05:00 UTC
    assert next_allowed_time(dubai, at) == datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def test_before_work_waits_for_the_start_of_work():
    at = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    assert next_allowed_time(user(work_start=time(8, 30)), at) == datetime(
        2026, 12, 3, 8, 30, tzinfo=UTC
    )


def test_quiet_hours_inside_the_working_day_and_across_midnight():
    lunch = user(quiet_start=time(12), quiet_end=time(13))
    assert next_allowed_time(lunch, datetime(2026, 12, 3, 12, 15, tzinfo=UTC)) == datetime(
        2026, 12, 3, 13, 0, tzinfo=UTC
    )
    night_owl = user(
        work_start=time(0),
        work_end=time(23, 59),
        work_days="0,1,2,3,4,5,6",
        quiet_start=time(22),
        quiet_end=time(7),
    )
    assert next_allowed_time(night_owl, datetime(2026, 12, 3, 23, 0, tzinfo=UTC)) == datetime(
        2026, 12, 4, 7, 0, tzinfo=UTC
    )


def test_urgent_messages_ignore_hours():
    at = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)  # Saturday night
    assert next_allowed_time(user(), at, urgent=True) == at


def test_dst_keeps_nine_oclock_local_on_both_sides_of_the_change():
    berliner = user(timezone="Europe/Berlin", work_days="0,1,2,3,4,5,6")
    # Spring: Sunday 29 March 2026 clocks jump 02:00 -> 03:00; 09:00 CEST is 07:00 UTC.
    assert next_allowed_time(berliner, datetime(2026, 3, 29, 1, 30, tzinfo=UTC)) == datetime(
        2026, 3, 29, 7, 0, tzinfo=UTC
    )
    # Autumn: Sunday 25 October 2026 clocks go back 03:00 -> 02:00; 09:00 CET is 08:00 UTC.
    assert next_allowed_time(berliner, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC
    )
    # The day before each change, 09:00 local is the other offset.
    assert local_at(datetime(2026, 3, 28).date(), time(9), BERLIN) == datetime(
        2026, 3, 28, 8, 0, tzinfo=UTC
    )
    assert local_at(datetime(2026, 10, 24).date(), time(9), BERLIN) == datetime(
        2026, 10, 24, 7, 0, tzinfo=UTC
    )


async def test_dm_addresses_lists_every_linked_chat(crm, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    await add_identity(crm, rana, "slack", "D01:U01")
    async with crm.reader() as uow:
        assert await dm_addresses(uow, rana.user_id) == ["telegram:111", "slack:D01:U01"]


def test_an_overnight_shift_is_not_held_back_by_working_hours():
    shift = user(work_start=time(22), work_end=time(6))
    at = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
    assert next_allowed_time(shift, at) == at
