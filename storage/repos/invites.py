"""One-time invite and link codes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from storage.models import Invite
from storage.repos.base import Repository


class InviteRepository(Repository[Invite]):
    model = Invite

    async def by_code(self, code: str) -> Invite | None:
        stmt = select(Invite).where(Invite.code == code)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def claim(self, invite_id: int, user_id: int, now: datetime) -> bool:
        """Mark an unused, unexpired code as used by `user_id`. False when someone else got
        there first: the conditional UPDATE makes a code single-use even under a race."""
        stmt = (
            update(Invite)
            .where(Invite.id == invite_id, Invite.used_at.is_(None), Invite.expires_at > now)
            .values(used_at=now, used_by_id=user_id)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return result.rowcount == 1
