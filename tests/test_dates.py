"""Natural dates as reps type them, on a fixed clock in several zones, across DST changes."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from conversations.dates import format_when, parse_day, parse_when
from handlers.errors import InvalidInput

UTC = timezone.utc
DUBAI = ZoneInfo("Asia/Dubai")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # Fri 4 Dec: 13:00 in Dubai, 04:00 in New York


def when(text: str, tz: ZoneInfo, now: datetime = NOW) -> str:
    """The parse, echoed back the way the bot shows it."""
    return format_when(parse_when(text, now=now, tz=tz), tz)


@pytest.mark.parametrize("text, echoed", [
    ("tomorrow", "Sat 5 Dec, 09:00 Asia/Dubai"),
    ("tmrw", "Sat 5 Dec, 09:00 Asia/Dubai"),
    ("tomorrow 3pm", "Sat 5 Dec, 15:00 Asia/Dubai"),
    ("tmrw 9:15", "Sat 5 Dec, 09:15 Asia/Dubai"),
    ("fri 10:30", "Fri 11 Dec, 10:30 Asia/Dubai"),  # today's 10:30 has passed: next Friday
    ("next week", "Mon 7 Dec, 09:00 Asia/Dubai"),
    ("in 2 weeks", "Fri 18 Dec, 09:00 Asia/Dubai"),
    ("eom", "Thu 31 Dec, 09:00 Asia/Dubai"),
    ("end of month", "Thu 31 Dec, 09:00 Asia/Dubai"),
    ("today 5pm", "Fri 4 Dec, 17:00 Asia/Dubai"),
    ("10am", "Sat 5 Dec, 10:00 Asia/Dubai"),  # a time already past today means tomorrow
    ("monday", "Mon 7 Dec, 09:00 Asia/Dubai"),
    ("15 Dec", "Tue 15 Dec, 09:00 Asia/Dubai"),
    ("2026-12-20 14:00", "Sun 20 Dec, 14:00 Asia/Dubai"),
    ("in 2 hours", "Fri 4 Dec, 15:00 Asia/Dubai"),  # relative times keep their time of day
    ("in 30 minutes", "Fri 4 Dec, 13:30 Asia/Dubai"),
])
def test_dubai_phrases(text, echoed):
    assert when(text, DUBAI) == echoed


@pytest.mark.parametrize("text, echoed", [
    ("tomorrow", "Sat 5 Dec, 09:00 America/New_York"),
    ("tomorrow 3pm", "Sat 5 Dec, 15:00 America/New_York"),
    ("fri 10:30", "Fri 4 Dec, 10:30 America/New_York"),  # still ahead in New York (04:00 now)
    ("next fri 10:30", "Fri 11 Dec, 10:30 America/New_York"),
    ("next week", "Mon 7 Dec, 09:00 America/New_York"),
    ("3am", "Sat 5 Dec, 03:00 America/New_York"),
])
def test_new_york_phrases(text, echoed):
    assert when(text, NEW_YORK) == echoed


def test_the_same_words_are_different_instants_in_different_zones():
    dubai = parse_when("tomorrow", now=NOW, tz=DUBAI)
    new_york = parse_when("tomorrow", now=NOW, tz=NEW_YORK)
    assert dubai.astimezone(UTC) == datetime(2026, 12, 5, 5, 0, tzinfo=UTC)
    assert new_york.astimezone(UTC) == datetime(2026, 12, 5, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize("tz, local_now, utc_expected", [
    # Spring forward in New York (Sun 8 Mar 2026): 09:00 EDT is 13:00 UTC, not 14:00.
    (NEW_YORK, datetime(2026, 3, 7, 15, 0), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
    # Fall back in New York (Sun 1 Nov 2026): 09:00 EST is 14:00 UTC, not 13:00.
    (NEW_YORK, datetime(2026, 10, 31, 15, 0), datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),
    # Summer time starts in Berlin on Sun 29 Mar 2026: 09:00 CEST is 07:00 UTC.
    (BERLIN, datetime(2026, 3, 28, 15, 0), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),
])
def test_tomorrow_across_a_dst_change_is_nine_local(tz, local_now, utc_expected):
    result = parse_when("tomorrow", now=local_now.replace(tzinfo=tz), tz=tz)
    assert (result.hour, result.minute) == (9, 0)
    assert result.astimezone(UTC) == utc_expected


def test_a_wall_time_inside_the_spring_gap_lands_on_a_real_instant():
    # 02:30 does not exist in New York on 8 Mar 2026; it becomes 03:30 EDT.
    result = parse_when("tomorrow 2:30am", now=datetime(2026, 3, 7, 15, 0, tzinfo=NEW_YORK), tz=NEW_YORK)
    assert result.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert format_when(result, NEW_YORK) == "Sun 8 Mar, 03:30 America/New_York"


def test_next_week_across_berlins_dst_change_is_monday_nine():
    now = datetime(2026, 3, 28, 15, 0, tzinfo=BERLIN)
    assert when("next week", BERLIN, now) == "Mon 30 Mar, 09:00 Europe/Berlin"


def test_next_week_on_a_monday_is_the_following_monday():
    assert when("next week", DUBAI, datetime(2026, 12, 7, 10, 0, tzinfo=DUBAI)) == "Mon 14 Dec, 09:00 Asia/Dubai"


def test_end_of_month_on_its_last_afternoon_is_next_months_end():
    assert when("eom", DUBAI, datetime(2026, 12, 31, 10, 0, tzinfo=DUBAI)) == "Sun 31 Jan, 09:00 Asia/Dubai"


@pytest.mark.parametrize("text, message", [
    ("5", "“5” is just a number. Try a date like tomorrow 3pm"),
    ("12.5", "is just a number"),
    ("yesterday", "Thu 3 Dec, 09:00 Asia/Dubai is in the past. Try tomorrow 3pm"),
    ("today 8am", "Fri 4 Dec, 08:00 Asia/Dubai is in the past"),
    ("someday maybe", "I couldn't read “someday maybe” as a date. Try tomorrow 3pm, fri 10:30"),
    ("", "When? For example: tomorrow 3pm"),
])
def test_numbers_past_times_and_garbage_are_refused_with_an_example(text, message):
    with pytest.raises(InvalidInput) as err:
        parse_when(text, now=NOW, tz=DUBAI)
    assert message in str(err.value)


@pytest.mark.parametrize("text, kwargs, expected", [
    ("today", {}, date(2026, 12, 4)),
    ("yesterday", {}, date(2026, 12, 3)),
    ("15 Dec", {}, date(2026, 12, 15)),
    ("2026-12-20", {}, date(2026, 12, 20)),
    ("eom", {}, date(2026, 12, 31)),
    ("next week", {}, date(2026, 12, 7)),
    ("15 Dec", {"allow_future": False}, date(2025, 12, 15)),  # a payment day is in the past
    ("last monday", {"allow_future": False}, date(2026, 11, 30)),
])
def test_days(text, kwargs, expected):
    assert parse_day(text, now=NOW, tz=DUBAI, **kwargs) == expected


@pytest.mark.parametrize("text, kwargs, message", [
    ("5", {}, "“5” is just a number. Try a day like 15 Dec or 2026-12-20."),
    ("2026-12-20", {"allow_future": False}, "Sun 20 Dec 2026 is in the future. Pick today or an earlier day."),
    ("next week", {"allow_future": False}, "is in the future"),
    ("eom", {"allow_future": False}, "is in the future"),
    ("yesterday", {"allow_past": False}, "Thu 3 Dec 2026 is in the past. Pick today or a later day."),
    ("gibberish", {}, "I couldn't read “gibberish” as a day. Try 15 Dec or 2026-12-20."),
])
def test_days_refused(text, kwargs, message):
    with pytest.raises(InvalidInput) as err:
        parse_day(text, now=NOW, tz=DUBAI, **kwargs)
    assert str(err.value) == message or message in str(err.value)


def test_today_is_the_users_local_day_not_utcs():
    late_utc = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)  # already Sat 5 Dec in Dubai
    assert parse_day("today", now=late_utc, tz=DUBAI) == date(2026, 12, 5)
    assert parse_day("today", now=late_utc, tz=NEW_YORK) == date(2026, 12, 4)


def test_tomorrow_is_the_users_local_tomorrow_not_utcs():
    late_utc = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)  # Sat 02:00 in Dubai, Fri 17:00 in New York
    assert when("tomorrow", DUBAI, late_utc) == "Sun 6 Dec, 09:00 Asia/Dubai"
    assert when("tomorrow", NEW_YORK, late_utc) == "Sat 5 Dec, 09:00 America/New_York"
    assert when("today 5pm", DUBAI, late_utc) == "Sat 5 Dec, 17:00 Asia/Dubai"
