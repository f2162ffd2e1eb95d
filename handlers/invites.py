"""Invites (join with a role) and link codes (attach a second chat account to a user).

Codes are one-time and expiring. They fit a Telegram `/start` payload (<= 64 characters of
[A-Za-z0-9_-]), so the same code works in a deep link and as `/join <code>` anywhere.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from handlers.access import acting_user, require_role
from handlers.context import CRM, Actor
from handlers.errors import Conflict, InvalidInput, NotAllowed, NotFound
from handlers.team import MAX_ID
from handlers.users import add_identity, new_user, parse_timezone
from handlers.values import clean_text
from storage.enums import Role
from storage.models import Invite
from storage.uow import UnitOfWork

INVITE = "invite"
LINK = "link"
MAX_INVITE_HOURS = 30 * 24
CODE_SHAPE = re.compile(r"[A-Za-z0-9_-]{8,64}")
PLATFORM_NAMES = {"telegram": "Telegram", "slack": "Slack", "console": "the console"}


@dataclass(frozen=True)
class InviteView:
    code: str
    expires_at: datetime
    role: Role
    deep_link: str | None  # https://t.me/<bot>?start=<code>, when the bot's username is known


def _new_code() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 random bits


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform)


async def create_invite(
    crm: CRM,
    actor: Actor,
    role: Role,
    *,
    manager_id: int | None = None,
    ttl_hours: int = 72,
    bot_username: str | None = None,
) -> InviteView:
    """A one-time invite. An admin invites any role (a rep optionally into a manager's team);
    a manager invites reps into their own team only."""
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput("Invite a rep, manager or admin, like /invite rep.", field="role") from None
    if not 1 <= ttl_hours <= MAX_INVITE_HOURS:
        raise InvalidInput(f"An invite lasts 1 to {MAX_INVITE_HOURS} hours.", field="ttl_hours")
    async with crm.uow(actor, action="create_invite") as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        if me.role == Role.MANAGER:
            if role != Role.REP:
                raise NotAllowed("A manager can invite reps only. Ask an admin for other roles.")
            if manager_id not in (None, me.id):
                raise NotAllowed("You can invite reps into your own team only.")
            manager_id = me.id
        elif manager_id is not None:
            manager = await uow.users.get(manager_id) if 0 < manager_id <= MAX_ID else None
            if role != Role.REP or manager is None or not manager.active or manager.role != Role.MANAGER:
                raise InvalidInput("Only a rep can join a manager's team; pick an active manager.")
        invite = Invite(
            code=_new_code(),
            kind=INVITE,
            role=role.value,
            manager_id=manager_id,
            created_by_id=me.id,
            expires_at=uow.now + timedelta(hours=ttl_hours),
            created_at=uow.now,
        )
        uow.invites.add(invite)
        await uow.audit.created(invite)
        await uow.commit()
    link = f"https://t.me/{bot_username.lstrip('@')}?start={invite.code}" if bot_username else None
    return InviteView(invite.code, invite.expires_at, role, link)


async def _usable(uow: UnitOfWork, raw_code: str, kind: str) -> Invite:
    """The unused, unexpired code of `kind`, or a message saying what is wrong with it."""
    code = clean_text(raw_code, 100).strip()
    command = "/join" if kind == INVITE else "/link"
    if not CODE_SHAPE.fullmatch(code):
        raise InvalidInput(
            f"That does not look like a code. Send it as it was given: {command} Ab3x_9Qz…", field="code"
        )
    invite = await uow.invites.by_code(code)
    if invite is None or invite.kind != kind:
        raise NotFound("That code is not valid. Check it, or ask for a new one.", field="code")
    if invite.used_at is not None:
        raise Conflict("That code was already used. Ask for a new one.", field="code")
    if invite.expires_at <= uow.now:
        raise Conflict("That code has expired. Ask for a new one.", field="code")
    return invite


async def _claim(uow: UnitOfWork, invite: Invite, user_id: int) -> None:
    if not await uow.invites.claim(invite.id, user_id, uow.now):
        raise Conflict("That code was just used by someone else. Ask for a new one.", field="code")
    uow.audit.note("invites", invite.id, "used_by_id", None, user_id)


async def join(
    crm: CRM,
    *,
    code: str,
    platform: str,
    platform_user_id: str,
    display_name: str,
    dm_address: str | None = None,
    timezone: str | None = None,
) -> Actor:
    """Turn a stranger into a user with the invite's role and manager."""
    name = clean_text(display_name, 120) or f"{platform_name(platform)} user {clean_text(platform_user_id, 40)}"
    try:
        zone = parse_timezone(timezone) if timezone else None
    except InvalidInput:
        zone = None  # the platform's guess is only a default; the user can set it later
    async with crm.uow(action="join") as uow:
        uow.source = replace(uow.source, platform=platform)
        existing = await uow.users.by_identity(platform, platform_user_id)
        if existing is not None and not existing.active:
            raise Conflict("This account has been deactivated. Ask your admin.")
        if existing is not None:
            raise Conflict("You are already a ChatCRM user. Send /help to see what you can do.")
        invite = await _usable(uow, code, INVITE)
        inviter = await uow.users.get(invite.created_by_id)
        manager = await uow.users.get(invite.manager_id) if invite.manager_id else None
        if inviter is None or not inviter.active or (manager is not None and not manager.active):
            raise Conflict("That invite is no longer valid. Ask for a new one.", field="code")
        try:
            user = await new_user(
                uow,
                crm,
                name=name,
                role=Role(invite.role),
                platform=platform,
                platform_user_id=platform_user_id,
                dm_address=dm_address,
                manager_id=invite.manager_id,
                timezone=zone,
            )
            await _claim(uow, invite, user.id)
            await uow.commit()
        except IntegrityError:
            # the same chat account joined at the same moment through another code
            raise Conflict("You are already a ChatCRM user. Send /help to see what you can do.") from None
        return Actor(user_id=user.id, platform=platform)


async def create_link_code(crm: CRM, actor: Actor, ttl_minutes: int = 15) -> str:
    """A one-time code the acting user sends from another platform (`/link <code>`)."""
    async with crm.uow(actor, action="create_link_code") as uow:
        me = await acting_user(uow, actor)
        invite = Invite(
            code=_new_code(),
            kind=LINK,
            user_id=me.id,
            created_by_id=me.id,
            expires_at=uow.now + timedelta(minutes=ttl_minutes),
            created_at=uow.now,
        )
        uow.invites.add(invite)
        await uow.audit.created(invite)
        await uow.commit()
        return invite.code


async def link_identity(
    crm: CRM, *, code: str, platform: str, platform_user_id: str, dm_address: str | None = None
) -> Actor:
    """Attach this chat account to the user who made the link code: one person, one pipeline."""
    async with crm.uow(action="link_identity") as uow:
        invite = await _usable(uow, code, LINK)
        user = await uow.users.get(invite.user_id)
        if user is None or not user.active:
            raise Conflict("That code is no longer valid. Ask for a new one.", field="code")
        owner = await uow.users.by_identity(platform, platform_user_id)
        if owner is not None:
            where = platform_name(platform)
            if owner.id == user.id:
                raise Conflict(f"This {where} account is already linked to you.")
            raise Conflict(f"This {where} account already belongs to another ChatCRM user.")
        if any(i.platform == platform for i in await uow.users.identities_of(user.id)):
            raise Conflict(
                f"You already use ChatCRM on {platform_name(platform)} with another account. "
                "One account per platform."
            )
        uow.source = replace(uow.source, actor_id=user.id, platform=platform)
        try:
            await add_identity(uow, user, platform, platform_user_id, dm_address)
            await _claim(uow, invite, user.id)
            await uow.commit()
        except IntegrityError:
            raise Conflict("This account was linked a moment ago. Send /help.") from None
        return Actor(user_id=user.id, platform=platform)


async def add_member(
    crm: CRM,
    actor: Actor,
    *,
    platform: str,
    platform_user_id: str,
    display_name: str,
    role: Role = Role.REP,
    dm_address: str | None = None,
) -> Actor:
    """Add a known chat account straight away, without a code (Slack's `/crm invite @user rep`).

    The same rules as an invite: an admin adds any role, a manager adds reps to their team."""
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput("Add a rep, manager or admin, like /crm invite @user rep.", field="role") from None
    name = clean_text(display_name, 120) or f"{platform_name(platform)} user {clean_text(platform_user_id, 40)}"
    async with crm.uow(actor, action="add_member") as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        if me.role == Role.MANAGER and role != Role.REP:
            raise NotAllowed("A manager can add reps only. Ask an admin for other roles.")
        if await uow.users.by_identity(platform, platform_user_id) is not None:
            raise Conflict(f"{name} is already on ChatCRM.")
        user = await new_user(
            uow,
            crm,
            name=name,
            role=role,
            platform=platform,
            platform_user_id=platform_user_id,
            dm_address=dm_address,
            manager_id=me.id if me.role == Role.MANAGER else None,
        )
        await uow.commit()
        return Actor(user_id=user.id, platform=platform)
