"""Who may act, and on what. Every use case goes through here, button presses included."""
from __future__ import annotations

from typing import TypeVar

from handlers.context import Actor
from handlers.errors import NotAllowed, NotFound, UnknownUser
from storage.enums import Role
from storage.models import User
from storage.repos.base import Repository
from storage.uow import UnitOfWork

T = TypeVar("T")

# Ids arrive from button values a client can forge; beyond the column range they cannot exist.
MAX_ID = 2**31 - 1


def valid_id(id_: int) -> bool:
    return isinstance(id_, int) and 0 < id_ <= MAX_ID


async def acting_user(uow: UnitOfWork, actor: Actor) -> User:
    """The active user behind `actor`, or `UnknownUser`."""
    user = await uow.users.get(actor.user_id)
    if user is None or not user.active:
        raise UnknownUser("You are not a ChatCRM user. Ask an admin for an invite.")
    return user


def require_role(user: User, *roles: Role) -> None:
    if user.role not in roles:
        names = " or ".join(r.value for r in roles)
        raise NotAllowed(f"Only a {names} can do that.")


async def can_see_owner(uow: UnitOfWork, user: User, owner_id: int) -> bool:
    scope = await uow.users.visible_owner_ids(user)
    return scope is None or owner_id in scope


async def visible(uow: UnitOfWork, repo: Repository[T], id_: int, user: User, what: str) -> T:
    """Fetch a record the user may see. Records outside their scope read as "not found", so an
    error never tells a rep that somebody else's record exists."""
    obj = await repo.get(id_) if valid_id(id_) else None
    if obj is None or not await can_see_owner(uow, user, obj.owner_id):
        raise NotFound(f"No {what} #{id_} that you can see.")
    return obj
