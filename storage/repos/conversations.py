"""Stored conversation state, one row per (platform, chat, user)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from storage.models import ConversationState
from storage.repos.base import Repository


class ConversationStateRepository(Repository[ConversationState]):
    model = ConversationState

    async def find(self, platform: str, chat_id: str, user_key: str) -> ConversationState | None:
        stmt = select(ConversationState).where(
            ConversationState.platform == platform,
            ConversationState.chat_id == chat_id,
            ConversationState.user_key == user_key,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def put(
        self,
        platform: str,
        chat_id: str,
        user_key: str,
        *,
        flow: str,
        answers: dict,
        field: str | None,
        data: dict,
        now: datetime,
    ) -> None:
        row = await self.find(platform, chat_id, user_key)
        if row is None:
            row = ConversationState(platform=platform, chat_id=chat_id, user_key=user_key)
            self.session.add(row)
        row.flow, row.answers, row.field, row.data, row.updated_at = flow, answers, field, data, now

    async def clear(self, platform: str, chat_id: str, user_key: str) -> None:
        await self.session.execute(
            delete(ConversationState).where(
                ConversationState.platform == platform,
                ConversationState.chat_id == chat_id,
                ConversationState.user_key == user_key,
            )
        )
