"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when configured),
a settable clock, and a factory for users."""
from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from config import load_settings
from handlers.context import CRM, Actor, FixedClock
from storage.db import open_database
from storage.migrate import upgrade
from storage.models import Base, Identity, User

PG_URL = os.environ.get("CRM_TEST_POSTGRES_URL")
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc)  # a Friday

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not PG_URL, reason="CRM_TEST_POSTGRES_URL is not set (CI sets it; see .ci/run)"
            ),
        ],
    ),
]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps tests fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """A private PostgreSQL database for this test session, migrated once and dropped at the end."""
    if not PG_URL:
        pytest.skip("CRM_TEST_POSTGRES_URL is not set")
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL)
    name = f"crm_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)

    async def _exec(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(_exec(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "crm.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(database_url, data_dir):
    return load_settings(
        DATABASE_URL=database_url,
        CRM_DATA_DIR=str(data_dir),
        CRM_TIMEZONE="UTC",
        CRM_CURRENCY="USD",
        CRM_PHONE_REGION="AE",
    )


@pytest.fixture
async def crm(settings, clock):
    db = open_database(settings.database_url)
    if db.engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    app = CRM(db=db, settings=settings, clock=clock)
    yield app
    await db.dispose()


@pytest.fixture
def make_user(crm):
    """Create a user (and optionally a chat identity) directly; returns an `Actor`."""

    async def _make(
        name: str = "Rana",
        role: str = "rep",
        manager: Actor | None = None,
        tz: str = "UTC",
        identity: tuple[str, str] | None = None,
    ) -> Actor:
        async with crm.uow() as uow:
            user = User(
                display_name=name,
                role=role,
                manager_id=manager.user_id if manager else None,
                timezone=tz,
                created_at=crm.now(),
            )
            uow.session.add(user)
            await uow.flush()
            if identity:
                platform, pid = identity
                uow.session.add(
                    Identity(
                        user_id=user.id,
                        platform=platform,
                        platform_user_id=pid,
                        dm_address=f"{platform}:{pid}",
                        created_at=crm.now(),
                    )
                )
            await uow.commit()
            return Actor(user_id=user.id, platform=identity[0] if identity else None)

    return _make
