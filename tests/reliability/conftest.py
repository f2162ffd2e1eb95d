"""Fixtures and helpers of the fault tests: a seeded random source (printed, so a failure can be
replayed with RELIABILITY_SEED), database snapshots, and SQLite copies for child processes."""
from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from storage.db import open_database
from storage.models import Base, ConversationState

# Bookkeeping that legitimately differs between a reference run and a crashed one.
NOT_CONTENT = {"processed_events", "conversation_states", "alembic_version"}
NOT_COMPARED = {"id", "change_id"}

# Run a test on SQLite only (tests that drive child processes over one database file).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def rng(request) -> random.Random:
    seed = int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(10**6))
    print(f"{request.node.name}: RELIABILITY_SEED={seed}")
    return random.Random(seed)


def sqlite_path(url: str) -> Path:
    return Path(make_url(url).database)


def copy_sqlite(url: str, target: Path) -> str:
    """A consistent copy of a live SQLite database (WAL included); returns its URL."""
    src = sqlite3.connect(sqlite_path(url))
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return f"sqlite:///{target}"


async def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every business row of the database, ids aside, sorted: two runs that did the same
    work compare equal, a half-applied change does not."""
    db = open_database(url)
    try:
        out = {}
        async with db.read_sessions() as session:
            for table in Base.metadata.sorted_tables:
                if table.name in NOT_CONTENT:
                    continue
                cols = [c for c in table.columns if c.name not in NOT_COMPARED]
                rows = (await session.execute(select(*cols))).all()
                out[table.name] = sorted((tuple(map(repr, r)) for r in rows))
        return out
    finally:
        await db.dispose()


async def flow_state(url: str, platform: str, user: str) -> tuple | None:
    """The stored flow of one chat as (flow, field, answers), or None."""
    db = open_database(url)
    try:
        async with db.read_sessions() as session:
            row = (await session.execute(select(ConversationState).where(
                ConversationState.platform == platform, ConversationState.chat_id == user,
            ))).scalar_one_or_none()
            return None if row is None else (row.flow, row.field, row.answers)
    finally:
        await db.dispose()
