"""ChatCRM benchmarks: scripts that measure and print figures; they never assert timing.

Run them all with `python -m bench` (see `bench/__main__.py`), or one alone, e.g.
`python -m bench.bench_startup --runs 3`. This module holds what several of them share:
percentiles, a throw-away database, the machine description and query plans.
"""
from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository (run `python -m bench` from it)


def percentile(values: list[float], pct: float) -> float:
    """The `pct`-th percentile (nearest rank) of `values`; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(seconds: list[float]) -> str:
    """"p50 1.2 ms  p99 3.4 ms  max 5.6 ms" for a list of latencies in seconds."""
    if not seconds:
        return "no samples"
    return (f"p50 {percentile(seconds, 50) * 1000:.1f} ms  p99 {percentile(seconds, 99) * 1000:.1f} ms  "
            f"max {max(seconds) * 1000:.1f} ms  (n={len(seconds)})")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def postgres_url_from_env(explicit: str | None) -> str | None:
    """`--postgres URL` if given, else `CRM_TEST_POSTGRES_URL` (what the tests use), else None."""
    return explicit or os.environ.get("CRM_TEST_POSTGRES_URL") or None


@asynccontextmanager
async def scratch_database(kind: str, tmp: Path, postgres_url: str | None = None):
    """A fresh, migrated database URL: a SQLite file under `tmp`, or a PostgreSQL database
    created next to `postgres_url` and dropped afterwards."""
    from storage.migrate import upgrade_async

    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        await upgrade_async(url)
        yield url
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(postgres_url)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"crm_bench_{uuid.uuid4().hex[:8]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await run(f'CREATE DATABASE "{name}"')
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        await upgrade_async(url)
        yield url
    finally:
        await run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine_description(postgres_url: str | None = None) -> list[str]:
    """CPU model, cores, RAM, OS, Python, SQLite and (when reachable) PostgreSQL versions, date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        ram = f"{kib / 2**20:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    lines = [
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu}, {os.cpu_count()} cores (shared with other work while measuring)",
        f"- RAM: {ram}",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- SQLite: {sqlite3.sqlite_version}",
        f"- PostgreSQL: {postgres_version(postgres_url) if postgres_url else 'not used in this run'}",
    ]
    return lines


def postgres_version(url: str) -> str:
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def ask() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()

    try:
        return asyncio.run(ask())
    except (OSError, asyncpg.PostgresError) as err:
        return f"unreachable ({err.__class__.__name__})"


@contextmanager
def captured_sql(engine) -> Iterator[list[tuple[str, object]]]:
    """Record every (statement, parameters) the async `engine` runs inside the block."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def query_plans(engine, statements: list[tuple[str, object]]) -> list[str]:
    """EXPLAIN QUERY PLAN (SQLite) / EXPLAIN without costs (PostgreSQL) of each distinct statement."""
    sqlite = engine.dialect.name == "sqlite"
    out: list[str] = []
    seen: set[str] = set()
    async with engine.connect() as conn:
        for statement, params in statements:
            if statement in seen:
                continue
            seen.add(statement)
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (COSTS OFF) "
            result = await conn.exec_driver_sql(prefix + statement, params)
            rows = result.fetchall()
            first_line = " ".join(statement.split())[:160]
            out.append(f"-- {first_line}{'…' if len(' '.join(statement.split())) > 160 else ''}")
            out.extend(("   " + (row[-1] if sqlite else row[0])) for row in rows)
    return out
