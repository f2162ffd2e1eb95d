"""Users and identities: who is talking, first-start admins, the console user."""
from __future__ import annotations

from handlers.context import CRM, Actor
from storage.enums import Role
from storage.models import Identity, User

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
        uow.session.add(
            Identity(
                user_id=user.id,
                platform=platform,
                platform_user_id=str(platform_user_id),
                dm_address=dm_address or f"{platform}:{platform_user_id}",
                created_at=uow.now,
            )
        )
        await uow.audit.created(user)
        uow.emit("user_joined", user_id=user.id)
        await uow.commit()
        return Actor(user_id=user.id, platform=platform)


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
