"""Engine and session factory. Nothing here runs at import time: `main.py` calls `open_database`.

SQLite: WAL, a busy timeout, and write transactions that take the write lock up front
(`BEGIN IMMEDIATE`), so two writers queue instead of failing half-way. Read-only units of work
use a deferred BEGIN so readers never wait for the lock.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

READONLY = "crm_readonly"
SQLITE_BUSY_TIMEOUT_S = 30


def async_url(url: str) -> str:
    """Map plain `sqlite:///` and `postgresql://` URLs to their async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database {backend!r}")
    return parsed.render_as_string(hide_password=False)


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker
    read_sessions: async_sessionmaker

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):
        readonly = conn.get_execution_options().get(READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def open_database(url: str, *, echo: bool = False, pool_size: int = 10) -> Database:
    """Create the engine and session factories for `url` (sqlite or postgresql)."""
    aurl = async_url(url)
    if aurl.startswith("sqlite"):
        engine = create_async_engine(
            aurl, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        _configure_sqlite(engine)
    else:
        engine = create_async_engine(
            aurl, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    read_sessions = async_sessionmaker(
        engine.execution_options(**{READONLY: True}), expire_on_commit=False
    )
    return Database(engine=engine, sessions=sessions, read_sessions=read_sessions)
