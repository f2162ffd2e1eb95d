"""Natural report periods ("last month", "Q3 2026", "since 1 Nov", "1 Oct - 15 Nov") as
half-open [start, end) ranges of aware datetimes in the actor's time zone."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers.errors import InvalidInput

EXAMPLES = "today, this week, last month, Q3, Nov 2026, since 1 Nov, 1 Oct - 15 Nov"
MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"


@dataclass(frozen=True)
class Period:
    """[start, end) in the actor's zone, and a label to echo back ("November 2026")."""

    start: datetime
    end: datetime
    label: str

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def end_day(self) -> date:
        """The first local day after the period (exclusive bound for date columns)."""
        return self.end.date()


def parse_period(text: str | None, now: datetime, tz: ZoneInfo) -> Period:
    """Read a period typed by a user; empty means this month. Raises `InvalidInput`."""
    raw = " ".join((text or "").lower().replace("–", "-").replace("—", "-").split())
    today = now.astimezone(tz).date()
    if not raw:
        raw = "this month"
    named = _named(raw, today)
    if named:
        return _period(*named, tz)
    if raw.startswith("since "):
        first = _day(raw[6:], today)
        return _period(first, today + timedelta(days=1), f"Since {_fmt(first)}", tz)
    if "-" in raw and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        left, _, right = raw.partition(" - ") if " - " in raw else raw.partition("-")
        return _range(left.strip(), right.strip(), today, tz)
    month = re.fullmatch(_MONTH + r"(?: (\d{4}))?", raw)
    if month:
        year = int(month.group(2)) if month.group(2) else _recent_year(MONTHS[month.group(1)], 1, today)
        first = date(year, MONTHS[month.group(1)], 1)
        return _period(first, _next_month(first), first.strftime("%B %Y"), tz)
    if re.fullmatch(r"\d{4}", raw):
        first = date(int(raw), 1, 1)
        return _period(first, date(first.year + 1, 1, 1), raw, tz)
    day = _day(raw, today, strict=False)
    if day:
        return _period(day, day + timedelta(days=1), _fmt(day), tz)
    raise InvalidInput(f"I can't read “{text}” as a period. Try: {EXAMPLES}.", field="period")


def period_from_days(first: date, end_day: date, tz: ZoneInfo) -> Period:
    """The period of whole local days [first, end_day), e.g. rebuilt from a button value."""
    last = end_day - timedelta(days=1)
    if first.day == 1 and end_day == _next_month(first):
        label = first.strftime("%B %Y")
    elif (first.month, first.day, end_day) == (1, 1, date(first.year + 1, 1, 1)):
        label = str(first.year)
    elif first.day == 1 and first.month % 3 == 1 and end_day == _next_month(_next_month(_next_month(first))):
        label = f"Q{first.month // 3 + 1} {first.year}"
    else:
        label = _fmt(first) if first == last else f"{_fmt(first)} – {_fmt(last)}"
    return _period(first, end_day, label, tz)


def _named(raw: str, today: date) -> tuple[date, date, str] | None:
    week = today - timedelta(days=today.weekday())  # weeks start on Monday
    month = today.replace(day=1)
    prev_month = (month - timedelta(days=1)).replace(day=1)
    simple = {
        "today": (today, today + timedelta(days=1), f"Today, {_fmt(today)}"),
        "yesterday": (today - timedelta(days=1), today, f"Yesterday, {_fmt(today - timedelta(days=1))}"),
        "this week": (week, week + timedelta(days=7), f"This week (from {_fmt(week)})"),
        "last week": (week - timedelta(days=7), week, f"Last week (from {_fmt(week - timedelta(days=7))})"),
        "this month": (month, _next_month(month), month.strftime("%B %Y")),
        "last month": (prev_month, month, prev_month.strftime("%B %Y")),
        "this year": (date(today.year, 1, 1), date(today.year + 1, 1, 1), str(today.year)),
        "last year": (date(today.year - 1, 1, 1), date(today.year, 1, 1), str(today.year - 1)),
    }
    if raw in simple:
        return simple[raw]
    quarter = re.fullmatch(r"q([1-4])(?: (\d{4}))?", raw)
    if quarter:
        q, year = int(quarter.group(1)), int(quarter.group(2) or today.year)
        first = date(year, 3 * q - 2, 1)
        end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
        return first, end, f"Q{q} {year}"
    return None


def _range(left: str, right: str, today: date, tz: ZoneInfo) -> Period:
    last = _day(right, today)
    # "1 Oct - 15 Nov": the left side takes the right side's year, or the year before if
    # that would put it after the right side (e.g. "1 Dec - 15 Jan").
    first = _day(left, last, strict=True, default_year=last.year)
    if first > last and not re.search(r"\d{4}", left):
        first = first.replace(year=first.year - 1)
    if first > last:
        raise InvalidInput(
            "The period starts after it ends. Try the earlier date first, e.g. 1 Oct - 15 Nov.",
            field="period",
        )
    return period_from_days(first, last + timedelta(days=1), tz)


def _day(text: str, today: date, strict: bool = True, default_year: int | None = None):
    """A calendar day: "1 nov", "nov 1", "1 november 2026", "2026-11-01", "1/11[/2026]".

    Without a year it is the most recent such day not after `today` (or `default_year`)."""
    text = text.strip().rstrip(",")
    found = None
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
        found = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    elif m := re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)? " + _MONTH + r",?(?: (\d{4}))?", text):
        found = (_year(m.group(3)), MONTHS[m.group(2)], int(m.group(1)))
    elif m := re.fullmatch(_MONTH + r" (\d{1,2})(?:st|nd|rd|th)?,?(?: (\d{4}))?", text):
        found = (_year(m.group(3)), MONTHS[m.group(1)], int(m.group(2)))
    elif m := re.fullmatch(r"(\d{1,2})[/.](\d{1,2})(?:[/.](\d{4}))?", text):
        found = (_year(m.group(3)), int(m.group(2)), int(m.group(1)))  # day first
    if found is None:
        if strict:
            raise InvalidInput(
                f"I can't read “{text}” as a date. Try 1 Nov or 2026-11-01.", field="period"
            )
        return None
    year, month, day = found
    try:
        if year is not None:
            return date(year, month, day)
        if default_year is not None:
            return date(default_year, month, day)
        return date(_recent_year(month, day, today), month, day)
    except ValueError:
        raise InvalidInput(f"“{text}” is not a real date. Try 1 Nov or 2026-11-01.", field="period")


def _year(text: str | None) -> int | None:
    return int(text) if text else None


def _recent_year(month: int, day: int, today: date) -> int:
    return today.year if (month, day) <= (today.month, today.day) else today.year - 1


def _next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def _period(first: date, end_day: date, label: str, tz: ZoneInfo) -> Period:
    return Period(
        start=datetime.combine(first, time(0), tzinfo=tz),
        end=datetime.combine(end_day, time(0), tzinfo=tz),
        label=label,
    )


def _fmt(day: date) -> str:
    return f"{day.day} {day.strftime('%b %Y')}"
