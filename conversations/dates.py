"""Natural dates as a sales rep types them, resolved in the rep's time zone.

Business defaults: a date with no time means 09:00 local; "next week" means next Monday 09:00;
"end of month" / "eom" the month's last day. A bare number or a time in the past is refused with
an example. dateparser always gets explicit `languages` (auto-detection costs ~100x more).
"""
from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dateparser

from handlers.errors import InvalidInput

DEFAULT_TIME = time(9, 0)
EXAMPLES = "tomorrow 3pm, fri 10:30, next week, in 2 weeks, 15 Dec, end of month"

_BARE_NUMBER = re.compile(r"^\s*\d+([.,]\d+)?\s*$")
_EOM = re.compile(r"^\s*(eom|end of (the )?month)\s*$", re.I)
_EOW = re.compile(r"^\s*(eow|end of (the )?week)\s*$", re.I)
_NEXT_WEEK = re.compile(r"^\s*next week\s*$", re.I)
_TODAY_TOMORROW = re.compile(r"^\s*(today|tod|tomorrow|tmr|tmrw)\s*$", re.I)
_HAS_TIME = re.compile(
    r"\d\s*(am|pm)\b|\d:\d\d|\b(noon|midnight)\b|\b(hours?|hrs?|minutes?|mins?)\b", re.I
)  # "in 2 hours" is a time, not a day at 09:00
_WEEKDAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*\b", re.I)
_NEXT = re.compile(r"\bnext\b", re.I)
_ALIASES = {"tmr": "tomorrow", "tmrw": "tomorrow", "tod": "today"}
_ALIAS_WORD = re.compile(r"\b(" + "|".join(_ALIASES) + r")\b", re.I)


def _expand(raw: str) -> str:
    """Chat shorthands dateparser does not know, anywhere in the text ("tmrw 9:15")."""
    return _ALIAS_WORD.sub(lambda m: _ALIASES[m.group(1).lower()], raw)


def _languages(language: str) -> tuple[str, ...]:
    lang = (language or "en").split("_")[0].split("-")[0].lower()
    return ("en",) if lang == "en" else (lang, "en")


def _at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


def _dateparser(text: str, local_now: datetime, language: str) -> tuple[datetime, bool] | None:
    """(naive local datetime, whether a time was given) or None."""
    parsed = dateparser.parse(
        text,
        languages=list(_languages(language)),
        settings={
            "PREFER_DATES_FROM": "future",
            "RETURN_TIME_AS_PERIOD": True,
            "RELATIVE_BASE": local_now.replace(tzinfo=None),
        },
    )
    if parsed is None:
        return None
    return parsed.replace(tzinfo=None), bool(_HAS_TIME.search(text))


def parse_when(text: str, *, now: datetime, tz: ZoneInfo, language: str = "en") -> datetime:
    """A future moment from natural text, as an aware datetime in `tz`.

    Raises `InvalidInput` with an example of what works.
    """
    raw = (text or "").strip()
    if not raw:
        raise InvalidInput(f"When? For example: {EXAMPLES}.")
    if _BARE_NUMBER.match(raw):
        raise InvalidInput(f"“{raw[:20]}” is just a number. Try a date like {EXAMPLES}.")
    local_now = now.astimezone(tz)
    today = local_now.date()
    raw = _expand(raw)

    if _EOM.match(raw):
        day = date(today.year, today.month, monthrange(today.year, today.month)[1])
        result = _at(day, DEFAULT_TIME, tz)
        if result <= local_now:
            nxt = (day + timedelta(days=1))
            result = _at(date(nxt.year, nxt.month, monthrange(nxt.year, nxt.month)[1]), DEFAULT_TIME, tz)
        return result
    if _EOW.match(raw):
        day = today + timedelta(days=(4 - today.weekday()) % 7)
        result = _at(day, DEFAULT_TIME, tz)
        return result if result > local_now else result + timedelta(days=7)
    if _NEXT_WEEK.match(raw):
        return _at(today + timedelta(days=7 - today.weekday()), DEFAULT_TIME, tz)

    found = _dateparser(raw, local_now, language)
    if found is None:
        raise InvalidInput(f"I couldn't read “{raw[:40]}” as a date. Try {EXAMPLES}.")
    naive, has_time = found
    if has_time:
        result = naive.replace(tzinfo=tz)
        if result <= local_now and naive.date() == today and not re.search(r"\btoday\b", raw, re.I):
            result += timedelta(days=1)  # "3pm" after 3pm means tomorrow
        if _means_later_today(raw, result, local_now):
            result -= timedelta(days=7)
    else:
        result = _at(naive.date(), DEFAULT_TIME, tz)
    # Normalise through UTC so a wall time that does not exist (DST gap) lands on a real instant.
    result = result.astimezone(ZoneInfo("UTC")).astimezone(tz)
    if result <= local_now:
        if _TODAY_TOMORROW.match(raw):
            raise InvalidInput(
                f"{format_when(result)} has already passed. Try “today 5pm” or “tomorrow”."
            )
        raise InvalidInput(f"{format_when(result)} is in the past. Try {EXAMPLES}.")
    return result


def _means_later_today(raw: str, result: datetime, local_now: datetime) -> bool:
    """"fri 10:30" typed early on a Friday means this morning, not a week later."""
    a_week_on = result.date() - local_now.date() == timedelta(days=7)
    named_day = _WEEKDAY.search(raw) and not _NEXT.search(raw)
    return bool(named_day and a_week_on and result - timedelta(days=7) > local_now)


def parse_day(
    text: str, *, now: datetime, tz: ZoneInfo, language: str = "en", allow_past: bool = True,
    allow_future: bool = True,
) -> date:
    """A calendar day ("today", "yesterday", "15 Dec", "next monday", "2026-12-20")."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidInput("Which day? For example: today, yesterday, 15 Dec, 2026-12-20.")
    if _BARE_NUMBER.match(raw):
        raise InvalidInput(f"“{raw[:20]}” is just a number. Try a day like 15 Dec or 2026-12-20.")
    local_now = now.astimezone(tz)
    today = local_now.date()
    raw = _expand(raw)
    if _EOM.match(raw):
        eom = date(today.year, today.month, monthrange(today.year, today.month)[1])
        return _check_day(eom, today, allow_past, allow_future)
    if _NEXT_WEEK.match(raw):
        return _check_day(today + timedelta(days=7 - today.weekday()), today, allow_past, allow_future)
    try:
        return _check_day(date.fromisoformat(raw), today, allow_past, allow_future)
    except ValueError:
        pass
    found = _dateparser(raw, local_now, language)
    if found is None:
        raise InvalidInput(f"I couldn't read “{raw[:40]}” as a day. Try 15 Dec or 2026-12-20.")
    day = found[0].date()
    if not allow_future and day > today:
        # "Friday" for a payment means the last Friday, not the next one.
        found_past = _past_day(raw, local_now, language)
        if found_past is not None:
            day = found_past
    return _check_day(day, today, allow_past, allow_future)


def _past_day(raw: str, local_now: datetime, language: str) -> date | None:
    parsed = dateparser.parse(
        raw,
        languages=list(_languages(language)),
        settings={"PREFER_DATES_FROM": "past", "RELATIVE_BASE": local_now.replace(tzinfo=None)},
    )
    return parsed.date() if parsed else None


def _check_day(day: date, today: date, allow_past: bool, allow_future: bool) -> date:
    if not allow_past and day < today:
        raise InvalidInput(f"{format_day(day)} is in the past. Pick today or a later day.")
    if not allow_future and day > today:
        raise InvalidInput(f"{format_day(day)} is in the future. Pick today or an earlier day.")
    return day


def format_when(moment: datetime, tz: ZoneInfo | None = None) -> str:
    """"Fri 11 Dec, 09:00 Asia/Dubai": how a resolved date is echoed back."""
    local = moment.astimezone(tz) if tz else moment
    zone = getattr(local.tzinfo, "key", None) or local.tzname() or ""
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M} {zone}".rstrip()


def format_day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b} {day.year}"
