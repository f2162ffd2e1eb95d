"""What every use case receives: the CRM's dependencies and the acting user."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from config import Settings
from storage.db import Database
from storage.uow import BeforeCommitHook, ChangeSource, UnitOfWork


class SystemClock:
    """The wall clock, in UTC. Logic never reads time any other way."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock tests and benchmarks set by hand."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def advance(self, **kwargs) -> datetime:
        from datetime import timedelta

        self._now = self._now + timedelta(**kwargs)
        return self._now


@dataclass(frozen=True)
class Actor:
    """The user a use case acts for, and where the request came from (for the audit log)."""

    user_id: int
    platform: str | None = None
    message_ref: str | None = None


@dataclass
class CRM:
    """The composition of everything use cases need; built once by `main.py` (or a test)."""

    db: Database
    settings: Settings
    clock: SystemClock | FixedClock = field(default_factory=SystemClock)
    hooks: list[BeforeCommitHook] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock.now()

    def uow(self, actor: Actor | None = None, action: str = "") -> UnitOfWork:
        """A read-write unit of work; commit it to make the change land."""
        source = ChangeSource(
            actor_id=actor.user_id if actor else None,
            platform=actor.platform if actor else None,
            message_ref=actor.message_ref if actor else None,
        )
        return UnitOfWork(
            self.db.sessions, source=source, action=action, hooks=self.hooks, now=self.clock.now
        )

    def reader(self) -> UnitOfWork:
        """A read-only unit of work (never takes SQLite's write lock)."""
        return UnitOfWork(self.db.read_sessions, now=self.clock.now)
