"""The team: who is in it, their roles and managers, and handing over a leaver's work."""
from __future__ import annotations

from dataclasses import dataclass

from handlers.access import MAX_ID, acting_user, can_see_owner, require_role
from handlers.context import CRM, Actor
from handlers.errors import Conflict, InvalidInput, NotAllowed, NotFound
from storage.enums import Role
from storage.models import User
from storage.uow import UnitOfWork

# Ids are 32-bit integers in PostgreSQL; anything outside can only come from a forged value.


@dataclass(frozen=True)
class MemberView:
    """One line of /team."""

    user: User
    platforms: tuple[str, ...]
    open_deals: int


@dataclass(frozen=True)
class HandOver:
    """What `deactivate` moved to the new owner."""

    user: User
    to: User
    deals: int
    contacts: int
    tasks: int
    contracts: int
    reps: int  # a departing manager's reps, moved to the new owner when they are a manager


async def _member(uow: UnitOfWork, boss: User, user_id: int) -> User:
    """A user `boss` may manage: anyone for an admin, their own team for a manager.

    Outside that scope the user reads as not found, exactly like a record."""
    user = await uow.users.get(user_id) if 0 < user_id <= MAX_ID else None
    if user is None or not (boss.role == Role.ADMIN or user.manager_id == boss.id):
        raise NotFound(f"No team member #{user_id} that you can manage.")
    return user


async def team(crm: CRM, actor: Actor) -> list[MemberView]:
    """Active members with their platforms and open deals: everyone for an admin, a manager's
    own team (themselves first) for a manager."""
    async with crm.reader() as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        if me.role == Role.ADMIN:
            members = await uow.users.active()
        else:
            members = [me, *(u for u in await uow.users.team_of(me.id) if u.active)]
        ids = [u.id for u in members]
        platforms = await uow.users.platforms_of(ids)
        deals = await uow.users.open_deal_counts(ids)
        return [MemberView(u, tuple(platforms[u.id]), deals[u.id]) for u in members]


async def member(crm: CRM, actor: Actor, user_id: int) -> MemberView:
    """One member the actor manages (for the member card behind a /team button)."""
    async with crm.reader() as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        user = await _member(uow, me, user_id)
        platforms = await uow.users.platforms_of([user.id])
        deals = await uow.users.open_deal_counts([user.id])
        return MemberView(user, tuple(platforms[user.id]), deals[user.id])


async def change_role(crm: CRM, actor: Actor, user_id: int, role: Role) -> User:
    """Admin only: make someone an admin, manager or rep."""
    role = Role(role)
    async with crm.uow(actor, action="change_role") as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN)
        user = await _member(uow, me, user_id)
        if not user.active:
            raise Conflict(f"{user.display_name} is deactivated.")
        if user.role == Role.ADMIN and role != Role.ADMIN and await uow.users.count_active_admins() <= 1:
            raise Conflict("This is the last admin. Make someone else an admin first.")
        if user.role == Role.MANAGER and role == Role.REP:
            reps = [u for u in await uow.users.team_of(user.id) if u.active]
            if reps:
                raise Conflict(
                    f"{user.display_name} still manages {len(reps)} rep(s). "
                    "Move them to another manager first (/team)."
                )
        uow.audit.set(user, "role", role.value)
        if role != Role.REP:
            uow.audit.set(user, "manager_id", None)  # managers and admins report to nobody
        await uow.commit()
        return user


async def set_manager(crm: CRM, actor: Actor, user_id: int, manager_id: int | None) -> User:
    """Move a rep to another manager (None: no manager). An admin moves anyone's rep; a
    manager moves their own reps."""
    async with crm.uow(actor, action="set_manager") as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        user = await _member(uow, me, user_id)
        if user.role != Role.REP or not user.active:
            raise InvalidInput("Only an active rep can be moved to a manager.")
        if manager_id is None:
            if me.role != Role.ADMIN:
                raise NotAllowed("Only an admin can leave a rep without a manager.")
        else:
            manager = await uow.users.get(manager_id) if 0 < manager_id <= MAX_ID else None
            if manager is None or not manager.active or manager.role != Role.MANAGER:
                raise NotFound(f"No active manager #{manager_id}. Pick one from /team.")
        uow.audit.set(user, "manager_id", manager_id)
        await uow.commit()
        return user


async def deactivate(crm: CRM, actor: Actor, user_id: int, *, reassign_to: int) -> HandOver:
    """Switch someone off and give their open deals, contacts, open tasks and unsettled
    contracts to `reassign_to`, all in one transaction so nothing is left without an owner.

    An admin may deactivate anyone but themselves and the last admin; a manager their own reps,
    handing the work to themselves or another of their reps."""
    async with crm.uow(actor, action="deactivate") as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        if user_id == me.id:
            raise NotAllowed("You cannot deactivate yourself. Ask another admin.")
        user = await _member(uow, me, user_id)
        if not user.active:
            raise Conflict(f"{user.display_name} is already deactivated.")
        if user.role == Role.ADMIN and await uow.users.count_active_admins() <= 1:
            raise Conflict("This is the last admin; ChatCRM needs at least one.")
        if reassign_to == user.id:
            raise InvalidInput("Pick someone else to take over their deals and tasks.")
        heir = await uow.users.get(reassign_to) if 0 < reassign_to <= MAX_ID else None
        if heir is None or not heir.active or not await can_see_owner(uow, me, heir.id):
            raise NotFound(f"No active team member #{reassign_to} to take over. Pick one from /team.")
        owned = await uow.users.open_records_of(user.id)
        for record in (*owned.deals, *owned.contacts, *owned.tasks, *owned.contracts):
            uow.audit.set(record, "owner_id", heir.id)
        # A leaving manager's reps follow the work to a new manager, or wait for an admin.
        reps = await uow.users.team_of(user.id)
        for rep in reps:
            uow.audit.set(rep, "manager_id", heir.id if heir.role == Role.MANAGER else None)
        uow.audit.set(user, "active", False)
        await uow.commit()
        return HandOver(
            user=user,
            to=heir,
            deals=len(owned.deals),
            contacts=len(owned.contacts),
            tasks=len(owned.tasks),
            contracts=len(owned.contracts),
            reps=len(reps),
        )


async def handover_candidates(crm: CRM, actor: Actor, user_id: int) -> list[User]:
    """Active people who could take over `user_id`'s work, for the choice list."""
    async with crm.reader() as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        await _member(uow, me, user_id)
        scope = await uow.users.visible_owner_ids(me)
        people = [u for u in await uow.users.active() if u.id != user_id and (scope is None or u.id in scope)]
        return people


async def managers(crm: CRM, actor: Actor) -> list[User]:
    """Active managers, for "move to manager" choices."""
    async with crm.reader() as uow:
        me = await acting_user(uow, actor)
        require_role(me, Role.ADMIN, Role.MANAGER)
        people = [u for u in await uow.users.active() if u.role == Role.MANAGER]
        return people
