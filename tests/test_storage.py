"""Storage basics: migrations match the models, SQLite is configured for concurrent writers."""
import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from storage.db import async_url, open_database
from storage.models import Base, User
from tests.conftest import T0


def test_async_url_maps_plain_urls():
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("postgresql://u@h/db").startswith("postgresql+asyncpg://")
    assert async_url("postgres://u@h/db").startswith("postgresql+asyncpg://")


async def test_migrations_match_models(crm):
    async with crm.db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == [], f"storage/models.py and the migration differ; run `make migration`: {diff}"


async def test_sqlite_wal_and_busy_timeout(tmp_path, sqlite_template):
    import shutil

    path = tmp_path / "c.db"
    shutil.copy(sqlite_template, path)
    db = open_database(f"sqlite:///{path}")
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30000
    await db.dispose()


async def test_two_sqlite_writers_both_succeed(tmp_path, sqlite_template):
    """Two writers at once: the second waits for the first instead of failing."""
    import shutil

    path = tmp_path / "w.db"
    shutil.copy(sqlite_template, path)
    db = open_database(f"sqlite:///{path}")

    async def write(name: str) -> None:
        async with db.sessions() as session:
            async with session.begin():
                session.add(User(display_name=name, role="rep", created_at=T0))
                await session.flush()
                await asyncio.sleep(0.05)  # hold the write lock a moment

    await asyncio.gather(*(write(f"u{i}") for i in range(5)))
    async with db.read_sessions() as session:
        count = (await session.execute(text("select count(*) from users"))).scalar()
    assert count == 5
    await db.dispose()
