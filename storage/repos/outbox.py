"""The notification outbox: enqueue once, claim, mark sent."""
from __future__ import annotations

from storage.models import OutboxMessage
from storage.repos.base import Repository


class OutboxRepository(Repository[OutboxMessage]):
    model = OutboxMessage
