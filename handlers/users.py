"""Users and identities: who is talking, first-start admins, the console user, own settings."""
from __future__ import annotations

import re
from dataclasses import replace
from collections.abc import Iterable
from datetime import time
from functools import lru_cache
from zoneinfo import available_timezones

from babel.core import Locale, UnknownLocaleError

from handlers.access import acting_user
from handlers.context import CRM, Actor
from handlers.errors import InvalidInput
from handlers.values import clean_text
from storage.enums import Role
from storage.models import Identity, User
from storage.uow import UnitOfWork

CONSOLE_PLATFORM = "console"
CONSOLE_USER_ID = "local"


async def identify(crm: CRM, platform: str, platform_user_id: str) -> Actor | None:
    """The CRM user behind a chat identity, or None for a stranger (or a deactivated user)."""
    async with crm.reader() as uow:
        user = await uow.users.by_identity(platform, str(platform_user_id))
        if user is None or not user.active:
            return None
        return Actor(user_id=user.id, platform=platform)


async def add_user_with_identity(
    crm: CRM,
    *,
    name: str,
    role: Role,
    platform: str,
    platform_user_id: str,
    dm_address: str | None = None,
    manager_id: int | None = None,
    timezone: str | None = None,
) -> Actor:
    """Create a user with one identity (used by first-start admins and invites)."""
    async with crm.uow(action="add_user") as uow:
        user = await new_user(
            uow,
            crm,
            name=name,
            role=role,
            platform=platform,
            platform_user_id=platform_user_id,
            dm_address=dm_address,
            manager_id=manager_id,
            timezone=timezone,
        )
        await uow.commit()
        return Actor(user_id=user.id, platform=platform)


async def new_user(
    uow: UnitOfWork,
    crm: CRM,
    *,
    name: str,
    role: Role,
    platform: str,
    platform_user_id: str,
    dm_address: str | None = None,
    manager_id: int | None = None,
    timezone: str | None = None,
) -> User:
    """Add a user and their first identity inside `uow` (audited, emits `user_joined`)."""
    user = User(
        display_name=name,
        role=role.value,
        manager_id=manager_id,
        timezone=timezone or crm.settings.timezone,
        language=crm.settings.language,
        created_at=uow.now,
    )
    uow.session.add(user)
    await uow.flush()
    if uow.source.actor_id is None:
        uow.source = replace(uow.source, actor_id=user.id)  # a newcomer's first change is their own
    await add_identity(uow, user, platform, platform_user_id, dm_address)
    await uow.audit.created(user)
    uow.emit("user_joined", user_id=user.id)
    return user


async def add_identity(
    uow: UnitOfWork, user: User, platform: str, platform_user_id: str, dm_address: str | None
) -> Identity:
    """Attach one chat account to `user` (audited)."""
    identity = Identity(
        user_id=user.id,
        platform=platform,
        platform_user_id=str(platform_user_id),
        dm_address=dm_address or f"{platform}:{platform_user_id}",
        created_at=uow.now,
    )
    uow.session.add(identity)
    await uow.audit.created(identity)
    return identity


async def bootstrap_admins(crm: CRM) -> list[Actor]:
    """Make every identity in `CRM_ADMINS` an admin, creating users that do not exist yet."""
    made = []
    for ident in crm.settings.admin_identities:
        platform, _, pid = ident.partition(":")
        if not platform or not pid:
            continue
        existing = await identify(crm, platform, pid)
        if existing is None:
            made.append(
                await add_user_with_identity(
                    crm, name=f"Admin {pid}", role=Role.ADMIN, platform=platform, platform_user_id=pid
                )
            )
    return made


async def ensure_console_admin(crm: CRM, name: str = "You") -> Actor:
    """The console's user: an admin, created on first run so a newcomer can try everything."""
    actor = await identify(crm, CONSOLE_PLATFORM, CONSOLE_USER_ID)
    if actor is not None:
        return actor
    return await add_user_with_identity(
        crm,
        name=name,
        role=Role.ADMIN,
        platform=CONSOLE_PLATFORM,
        platform_user_id=CONSOLE_USER_ID,
        dm_address=f"{CONSOLE_PLATFORM}:{CONSOLE_USER_ID}",
    )


# --- own settings -------------------------------------------------------------------------------

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?$")


@lru_cache(maxsize=1)
def _zones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_timezone(raw: str) -> str:
    """An IANA zone name as the tz database spells it ("asia/dubai" -> "Asia/Dubai")."""
    text = clean_text(raw, 80).replace(" ", "_")
    zone = _zones_by_lower_name().get(text.lower())
    if zone is None:
        raise InvalidInput(
            f"“{clean_text(raw, 40)}” is not a time zone I know. Try Asia/Dubai or Europe/London.",
            field="timezone",
        )
    return zone


def parse_language(raw: str) -> str:
    """A babel locale code ("ar", "pt-BR" -> "pt_BR")."""
    text = clean_text(raw, 20).replace("-", "_")
    try:
        if not re.fullmatch(r"[A-Za-z]{2,3}(_[A-Za-z0-9]{2,4}){0,2}", text):
            raise ValueError(text)
        return str(Locale.parse(text))
    except (UnknownLocaleError, ValueError, TypeError):
        raise InvalidInput(
            f"“{clean_text(raw, 20)}” is not a language I know. Try en, ar or fr.", field="language"
        ) from None


def parse_clock(raw: str | time, field: str = "time") -> time:
    """HH:MM (also 9, 9:30, 18h00) as a time of day."""
    if isinstance(raw, time):
        return raw.replace(second=0, microsecond=0, tzinfo=None)
    match = _CLOCK.match(clean_text(raw, 10))
    if match:
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        if hour < 24 and minute < 60:
            return time(hour, minute)
    raise InvalidInput(f"“{clean_text(raw, 20)}” is not a time. Use HH:MM, like 09:00.", field=field)


def parse_clock_range(raw: str, field: str) -> tuple[time, time]:
    """"09:00-18:00" as (start, end)."""
    start, sep, end = clean_text(raw, 40).replace("–", "-").partition("-")
    if not sep:
        raise InvalidInput(
            f"“{clean_text(raw, 20)}” is not a time range. Use start-end, like 09:00-18:00.",
            field=field,
        )
    return parse_clock(start.strip(), field), parse_clock(end.strip(), field)


def parse_days(raw: str | Iterable[int]) -> tuple[int, ...]:
    """Working days as Monday = 0 numbers, from "mon-fri", "sun-thu" or "mon,wed,fri"."""
    if not isinstance(raw, str):
        days = sorted(set(raw))
        if days and all(isinstance(d, int) and 0 <= d <= 6 for d in days):
            return tuple(days)
        raise InvalidInput("Working days must be numbers 0 (Monday) to 6 (Sunday).", field="work_days")
    days: set[int] = set()
    text = clean_text(raw, 80).lower().replace(" ", "")
    try:
        for part in filter(None, text.split(",")):
            first, _, last = part.partition("-")
            a, b = DAY_NAMES.index(first[:3]), DAY_NAMES.index((last or first)[:3])
            # a range may wrap the week: sat-wed is Saturday to Wednesday
            span = (b - a) % 7
            days.update((a + i) % 7 for i in range(span + 1))
    except ValueError:
        days.clear()
    if not days:
        raise InvalidInput(
            f"“{clean_text(raw, 30)}” is not a list of days. Try mon-fri or sun-thu.", field="work_days"
        )
    return tuple(sorted(days))


def format_days(stored: str) -> str:
    """"0,1,2,3,4" -> "mon, tue, wed, thu, fri"."""
    return ", ".join(DAY_NAMES[int(d)] for d in stored.split(",") if d.strip().isdigit())


async def my_settings(crm: CRM, actor: Actor) -> User:
    """The acting user's row, for showing their settings."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        uow.session.expunge(user)  # keep it loaded: leaving a reader rolls back and expires
        return user


async def adopt_platform_timezone(crm: CRM, actor: Actor, timezone: str) -> str:
    """Take the zone a platform reports (Slack's profile) unless the user chose one; returns
    the zone in effect."""
    async with crm.uow(actor, action="adopt_platform_timezone") as uow:
        user = await acting_user(uow, actor)
        try:
            zone = parse_timezone(timezone)
        except InvalidInput:
            return user.timezone
        if user.timezone_chosen or user.timezone == zone:
            return user.timezone
        uow.audit.set(user, "timezone", zone)
        await uow.commit()
        return zone


async def update_settings(
    crm: CRM,
    actor: Actor,
    *,
    timezone: str | None = None,
    language: str | None = None,
    work_start: str | time | None = None,
    work_end: str | time | None = None,
    work_days: str | Iterable[int] | None = None,
    quiet_start: str | time | None = None,
    quiet_end: str | time | None = None,
    clear_quiet: bool = False,
) -> User:
    """Change the acting user's own settings; anything left None stays as it is.

    Everything is validated before anything is written, so a bad value changes nothing.
    """
    values: dict[str, object] = {}
    if timezone is not None:
        values["timezone"] = parse_timezone(timezone)
        values["timezone_chosen"] = True
    if language is not None:
        values["language"] = parse_language(language)
    if work_start is not None:
        values["work_start"] = parse_clock(work_start, "work_start")
    if work_end is not None:
        values["work_end"] = parse_clock(work_end, "work_end")
    if work_days is not None:
        values["work_days"] = ",".join(map(str, parse_days(work_days)))
    if clear_quiet:
        values["quiet_start"] = values["quiet_end"] = None
    elif (quiet_start is None) != (quiet_end is None):
        raise InvalidInput("Give quiet hours as start and end, like 20:00-08:00.", field="quiet")
    elif quiet_start is not None:
        values["quiet_start"] = parse_clock(quiet_start, "quiet")
        values["quiet_end"] = parse_clock(quiet_end, "quiet")
        if values["quiet_start"] == values["quiet_end"]:
            raise InvalidInput("Quiet hours cannot start and end at the same time. Try 20:00-08:00.", field="quiet")
    async with crm.uow(actor, action="update_settings") as uow:
        user = await acting_user(uow, actor)
        start = values.get("work_start", user.work_start)
        end = values.get("work_end", user.work_end)
        if start >= end:
            raise InvalidInput(
                "Working hours must end after they start. Try 09:00-18:00.", field="work_start"
            )
        for field, value in values.items():
            uow.audit.set(user, field, value)
        await uow.commit()
        return user
