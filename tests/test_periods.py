"""Natural periods read in the user's time zone, with a fixed clock (Fri 4 Dec 2026 09:00 UTC)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from handlers.errors import InvalidInput
from handlers.periods import parse_period, period_from_days

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc)
UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    "text, first, end, label",
    [
        ("", date(2026, 12, 1), date(2027, 1, 1), "December 2026"),
        ("today", date(2026, 12, 4), date(2026, 12, 5), "Today, 4 Dec 2026"),
        ("Yesterday", date(2026, 12, 3), date(2026, 12, 4), "Yesterday, 3 Dec 2026"),
        ("this week", date(2026, 11, 30), date(2026, 12, 7), "This week (from 30 Nov 2026)"),
        ("last week", date(2026, 11, 23), date(2026, 11, 30), "Last week (from 23 Nov 2026)"),
        ("this month", date(2026, 12, 1), date(2027, 1, 1), "December 2026"),
        ("last  month", date(2026, 11, 1), date(2026, 12, 1), "November 2026"),
        ("Q3", date(2026, 7, 1), date(2026, 10, 1), "Q3 2026"),
        ("q4 2025", date(2025, 10, 1), date(2026, 1, 1), "Q4 2025"),
        ("this year", date(2026, 1, 1), date(2027, 1, 1), "2026"),
        ("last year", date(2025, 1, 1), date(2026, 1, 1), "2025"),
        ("since 1 Nov", date(2026, 11, 1), date(2026, 12, 5), "Since 1 Nov 2026"),
        ("since 20 Dec", date(2025, 12, 20), date(2026, 12, 5), "Since 20 Dec 2025"),
        ("1 Oct - 15 Nov", date(2026, 10, 1), date(2026, 11, 16), "1 Oct 2026 – 15 Nov 2026"),
        ("1 Dec – 15 Jan", date(2025, 12, 1), date(2026, 1, 16), "1 Dec 2025 – 15 Jan 2026"),
        ("Nov 2026", date(2026, 11, 1), date(2026, 12, 1), "November 2026"),
        ("march", date(2026, 3, 1), date(2026, 4, 1), "March 2026"),
        ("2026-11-03", date(2026, 11, 3), date(2026, 11, 4), "3 Nov 2026"),
    ],
)
def test_natural_periods(text, first, end, label):
    period = parse_period(text, NOW, UTC)

    assert (period.first_day, period.end_day, period.label) == (first, end, label)
    assert period.start.tzinfo == UTC and period.start.hour == 0


def test_today_depends_on_the_users_zone():
    # 09:00 UTC on Friday is already Saturday 04:00 in Auckland, still Friday in Los Angeles.
    auckland = parse_period("today", datetime(2026, 12, 4, 15, 0, tzinfo=timezone.utc), ZoneInfo("Pacific/Auckland"))
    los_angeles = parse_period("today", NOW, ZoneInfo("America/Los_Angeles"))

    assert auckland.first_day == date(2026, 12, 5)
    assert los_angeles.first_day == date(2026, 12, 4)
    assert auckland.start == datetime(2026, 12, 4, 11, 0, tzinfo=timezone.utc)  # midnight NZDT
    assert los_angeles.end == datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc)  # midnight PST


def test_a_month_in_dubai_starts_four_hours_before_utc():
    period = parse_period("last month", NOW, ZoneInfo("Asia/Dubai"))

    assert period.start == datetime(2026, 10, 31, 20, 0, tzinfo=timezone.utc)
    assert period.end == datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)


def test_new_year_rolls_this_week_and_last_month_back():
    new_year = datetime(2027, 1, 1, 12, 0, tzinfo=timezone.utc)  # a Friday

    assert parse_period("last month", new_year, UTC).label == "December 2026"
    assert parse_period("this week", new_year, UTC).first_day == date(2026, 12, 28)


@pytest.mark.parametrize("text", ["blah", "next fortnight", "Q5", "13/13", "30 Feb", "since soon"])
def test_unreadable_periods_explain_what_works(text):
    with pytest.raises(InvalidInput) as err:
        parse_period(text, NOW, UTC)

    assert err.value.field == "period"
    assert "Nov" in str(err.value)  # every message carries an example


def test_period_rebuilt_from_button_days():
    period = period_from_days(date(2026, 10, 1), date(2026, 11, 16), ZoneInfo("Asia/Dubai"))

    assert period.label == "1 Oct 2026 – 15 Nov 2026"
    assert period.start == datetime(2026, 9, 30, 20, 0, tzinfo=timezone.utc)


def test_whole_months_quarters_and_years_keep_their_names_on_buttons():
    assert period_from_days(date(2026, 11, 1), date(2026, 12, 1), UTC).label == "November 2026"
    assert period_from_days(date(2026, 10, 1), date(2027, 1, 1), UTC).label == "Q4 2026"
    assert period_from_days(date(2026, 1, 1), date(2027, 1, 1), UTC).label == "2026"
    assert period_from_days(date(2026, 12, 4), date(2026, 12, 5), UTC).label == "4 Dec 2026"
