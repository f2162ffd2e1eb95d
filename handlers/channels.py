"""Team channels: group chats that receive alerts and the daily summary.

A manager's channel is for their team (`manager_id` = the manager); an admin's is for the
whole company (`manager_id` None).
"""
from __future__ import annotations

import re

from handlers.access import acting_user, require_role
from handlers.context import CRM, Actor
from handlers.errors import InvalidInput, NotAllowed, NotFound
from handlers.values import clean_text
from storage.enums import Role
from storage.models import TeamChannel
from storage.uow import UnitOfWork

# alert kind -> TeamChannel column
ALERT_KINDS = {
    "new_lead": "alert_new_lead",
    "won": "alert_won",
    "payment": "alert_payment",
    "summary": "alert_summary",
    "overdue": "alert_overdue",
}
ALERT_ALIASES = {"lead": "new_lead", "leads": "new_lead", "newlead": "new_lead", "payments": "payment"}
ADDRESS_SHAPE = re.compile(r"[a-z]{2,16}:[A-Za-z0-9_.@+-]{1,64}(:[A-Za-z0-9_.@+-]{1,40})?")


def alert_kind(raw: str) -> str:
    """A known alert kind ("new-lead", "Won" ...) or a clear `InvalidInput`."""
    key = clean_text(raw, 30).lower().replace("-", "_").replace(" ", "_")
    key = ALERT_ALIASES.get(key, key)
    if key not in ALERT_KINDS:
        raise InvalidInput(
            f"“{clean_text(raw, 30)}” is not an alert. Use one of: {', '.join(ALERT_KINDS)}.",
            field="kind",
        )
    return key


async def _managed(uow: UnitOfWork, user: User, address: str) -> TeamChannel:
    """A channel `user` may change: any for an admin, their own for a manager."""
    channel = await uow.channels.by_address(address)
    if channel is None or (user.role != Role.ADMIN and channel.manager_id != user.id):
        raise NotFound("This chat is not one of your team channels. Run /setchannel here first.")
    return channel


async def register_channel(
    crm: CRM, actor: Actor, *, address: str, platform: str, title: str | None = None
) -> TeamChannel:
    """Make a group chat a team channel (idempotent for the same team)."""
    # An address comes from the platform, never typed: anything odd is refused, not cleaned.
    if not ADDRESS_SHAPE.fullmatch(address or "") or not address.startswith(f"{platform}:"):
        raise InvalidInput("That chat address is not valid.", field="address")
    async with crm.uow(actor, action="register_channel") as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        name = clean_text(title, 200) or None
        channel = await uow.channels.by_address(address)
        if channel is not None:
            # Same chat again: keep its team, refresh the title. Only an admin may touch
            # a chat another manager registered.
            if me.role != Role.ADMIN and channel.manager_id != me.id:
                raise NotAllowed("This chat already gets another team's alerts. Ask an admin.")
            if name:
                uow.audit.set(channel, "title", name)
        else:
            channel = TeamChannel(
                address=address,
                platform=platform,
                title=name,
                manager_id=None if me.role == Role.ADMIN else me.id,
                timezone=me.timezone,
                created_by_id=me.id,
                created_at=uow.now,
            )
            uow.channels.add(channel)
            await uow.audit.created(channel)
        await uow.commit()
        return channel


async def set_channel_alert(crm: CRM, actor: Actor, address: str, kind: str, on: bool) -> TeamChannel:
    """Switch one alert kind on or off for a team channel."""
    column = ALERT_KINDS[alert_kind(kind)]
    async with crm.uow(actor, action="set_channel_alert") as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        channel = await _managed(uow, me, address)
        uow.audit.set(channel, column, bool(on))
        await uow.commit()
        return channel


async def unregister_channel(crm: CRM, actor: Actor, address: str) -> None:
    """Stop sending alerts to a team channel."""
    async with crm.uow(actor, action="unregister_channel") as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        channel = await _managed(uow, me, address)
        uow.audit.note("team_channels", channel.id, "*deleted", channel.address, None)
        await uow.channels.remove(channel)
        await uow.commit()


async def list_channels(crm: CRM, actor: Actor) -> list[TeamChannel]:
    """Every channel for an admin; a manager's own plus the company-wide ones."""
    async with crm.reader() as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        channels = await uow.channels.listed(None if me.role == Role.ADMIN else [me.id])
        return channels


async def team_channels_for(crm: CRM, owner_id: int, kind: str | None = None) -> list[TeamChannel]:
    """Where alerts about `owner_id`'s records go: their manager's channels (a manager's own,
    when the owner is a manager) plus the company-wide ones; only those with `kind` switched on
    when a kind is given. No actor: alert jobs call this."""
    async with crm.reader() as uow:
        owner = await uow.users.get(owner_id)
        if owner is None:
            return []
        managers = [m for m in (owner.manager_id, owner.id if owner.role == Role.MANAGER else None) if m]
        channels = await uow.channels.listed(managers)
        if kind is not None:
            column = ALERT_KINDS[alert_kind(kind)]
            channels = [c for c in channels if getattr(c, column)]
        return channels
