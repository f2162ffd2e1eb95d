"""Stored conversation state, one row per (platform, chat, user)."""
from __future__ import annotations

from storage.models import ConversationState
from storage.repos.base import Repository


class ConversationStateRepository(Repository[ConversationState]):
    model = ConversationState
