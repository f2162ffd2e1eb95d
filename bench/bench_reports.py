"""Benchmark: the monthly report, the pipeline board and an export on a seeded database.

    .venv/bin/python bench/bench_reports.py                       # 10,000 deals, 100,000 interactions
    .venv/bin/python bench/bench_reports.py --deals 100000        # the issue's 100k / 1M
    .venv/bin/python bench/bench_reports.py --postgres postgresql://postgres@127.0.0.1:5432/test

Seeds with bulk inserts into a fresh database (a temp SQLite file; on PostgreSQL a scratch
database that is dropped afterwards), then prints wall time and peak Python memory
(tracemalloc, measured in a separate run so it does not slow the timed one) per operation,
and the process's peak RSS. Not a test: it asserts nothing, it prints figures.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from config import load_settings  # noqa: E402
from handlers import deals as deals_uc  # noqa: E402
from handlers.context import CRM, Actor, FixedClock  # noqa: E402
from handlers.exports import export  # noqa: E402
from handlers.reports import report  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.migrate import upgrade_async  # noqa: E402
from storage.models import (  # noqa: E402
    Contact,
    Contract,
    Deal,
    Installment,
    Interaction,
    Payment,
    StageChange,
    User,
)

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc)
CHUNK = 20_000
REPS, MANAGERS = 40, 4
FLOW = ("new", "contacted", "proposal", "negotiation")
CURRENCIES = ("USD", "USD", "USD", "EUR", "AED")
SOURCES = ("website", "referral", "ads", "event", "cold", None)


async def bulk(conn, model, rows: list[dict]) -> None:
    for i in range(0, len(rows), CHUNK):
        await conn.execute(insert(model), rows[i : i + CHUNK])


async def seed(crm: CRM, n_deals: int, rng: random.Random) -> None:
    """Users, then N contacts + deals with stage history, 10N interactions, some contracts."""
    users = [{"id": 1, "display_name": "Admin", "role": "admin", "created_at": NOW}]
    for m in range(MANAGERS):
        users.append({"id": 2 + m, "display_name": f"Manager {m}", "role": "manager", "created_at": NOW})
    first_rep = 2 + MANAGERS
    for r in range(REPS):
        users.append({"id": first_rep + r, "display_name": f"Rep {r}", "role": "rep",
                      "manager_id": 2 + r % MANAGERS, "created_at": NOW})
    owners = [u["id"] for u in users[1:]]
    contacts, deals, changes, contracts, installments, payments = [], [], [], [], [], []
    for i in range(1, n_deals + 1):
        owner = rng.choice(owners)
        created = NOW - timedelta(days=rng.uniform(0, 365))
        currency = rng.choice(CURRENCIES)
        source = rng.choice(SOURCES)
        contacts.append({"id": i, "name": f"Lead {i}", "phone": f"+9715{i:08d}", "owner_id": owner,
                         "source": source, "tags": [], "created_at": created})
        roll = rng.random()
        steps = rng.randint(1, 4)
        at = created
        history = []
        for stage in FLOW[:steps]:
            history.append((stage, at))
            at += timedelta(days=rng.uniform(0.5, 12))
        stage, closed = history[-1][0], None
        if roll < 0.4 and at < NOW:
            stage, closed = ("won" if roll < 0.25 else "lost"), at
            history.append((stage, at))
        prev = None
        for to, when in history:
            changes.append({"deal_id": i, "from_stage": prev, "to_stage": to, "actor_id": owner, "at": min(when, NOW)})
            prev = to
        last = min(history[-1][1], NOW)
        deals.append({"id": i, "contact_id": i, "title": f"Deal {i}", "value_minor": rng.randint(100, 50_000) * 100,
                      "currency": currency, "stage": stage, "owner_id": owner, "source": source,
                      "created_at": created, "stage_changed_at": last, "last_touched_at": last,
                      "closed_at": closed})
        if stage == "won" and rng.random() < 0.5:
            cid = len(contracts) + 1
            signed = closed.date()
            contracts.append({"id": cid, "deal_id": i, "number": f"CTR-{cid}", "signed_on": signed,
                              "total_minor": deals[-1]["value_minor"], "currency": currency,
                              "owner_id": owner, "created_at": closed})
            share = deals[-1]["value_minor"] // 3
            for seq in range(1, 4):
                installments.append({"contract_id": cid, "seq": seq, "invoice_number": f"INV-{cid}-{seq}",
                                     "due_date": signed + timedelta(days=30 * seq), "amount_minor": share})
            payments.append({"contract_id": cid, "amount_minor": share, "currency": currency,
                             "paid_on": signed + timedelta(days=rng.randint(0, 40)), "recorded_by_id": owner,
                             "created_at": closed})
    async with crm.db.engine.begin() as conn:
        await bulk(conn, User, users)
        await bulk(conn, Contact, contacts)
        await bulk(conn, Deal, deals)
        await bulk(conn, StageChange, changes)
        await bulk(conn, Contract, contracts)
        await bulk(conn, Installment, installments)
        await bulk(conn, Payment, payments)
        del contacts, deals, changes
        for start in range(0, 10 * n_deals, CHUNK):
            rows = []
            for _ in range(min(CHUNK, 10 * n_deals - start)):
                when = NOW - timedelta(days=rng.uniform(0, 365))
                rows.append({"contact_id": rng.randint(1, n_deals), "kind": "call", "summary": "Called about the offer",
                             "occurred_at": when, "logged_by_id": rng.choice(owners), "created_at": when})
            await conn.execute(insert(Interaction), rows)
        if crm.db.engine.dialect.name == "postgresql":
            for table in ("users", "contacts", "deals", "contracts"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
            await conn.exec_driver_sql("ANALYZE")


async def measure(label: str, make_call) -> None:
    """Time one call (best of 3), then its peak traced memory in a separate run."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        await make_call()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    await make_call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  {label:<34} {min(times) * 1000:8.0f} ms   peak {peak / 2**20:7.1f} MB")


def _crm(url: str, data_dir: Path) -> CRM:
    settings = load_settings(DATABASE_URL=url, CRM_DATA_DIR=str(data_dir))
    return CRM(db=open_database(url), settings=settings, clock=FixedClock(NOW))


async def seed_only(url: str, n_deals: int) -> None:
    """Runs in a child process, so the seeding's memory does not count in the measured RSS."""
    await upgrade_async(url)
    crm = _crm(url, Path(tempfile.gettempdir()))
    try:
        t0 = time.perf_counter()
        await seed(crm, n_deals, random.Random(7))
        print(f"{crm.db.engine.dialect.name}: seeded {n_deals:,} deals, {10 * n_deals:,} interactions "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        await crm.db.dispose()


async def bench(url: str, n_deals: int, data_dir: Path) -> None:
    subprocess.run([sys.executable, __file__, "--seed-into", url, "--deals", str(n_deals)], check=True)
    crm = _crm(url, data_dir)
    who = {"admin": Actor(1), "manager": Actor(2), "rep": Actor(2 + MANAGERS)}
    try:
        await measure("monthly report (admin)", lambda: report(crm, who["admin"], "last month"))
        await measure("monthly report (manager, by rep)", lambda: report(crm, who["manager"], "last month"))
        await measure("monthly report (rep)", lambda: report(crm, who["rep"], "last month"))
        await measure("pipeline board (admin)", lambda: deals_uc.pipeline(crm, who["admin"]))
        await measure("export deals csv (admin)", lambda: export(crm, who["admin"], "deals", "csv"))
        await measure("export interactions csv (admin)", lambda: export(crm, who["admin"], "interactions", "csv"))
        await measure("export deals xlsx (admin)", lambda: export(crm, who["admin"], "deals", "xlsx"))
    finally:
        await crm.db.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of the measuring process (all of the above): {rss:.0f} MB")


async def scratch_postgres(url: str, action: str, name: str) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    conn = await asyncpg.connect(base.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        sql = f'CREATE DATABASE "{name}"' if action == "create" else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        await conn.execute(sql)
    finally:
        await conn.close()
    return base.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=10_000, help="deals to seed (interactions: 10x)")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (a scratch database is used)")
    parser.add_argument("--seed-into", metavar="URL", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.seed_into:
        asyncio.run(seed_only(args.seed_into, args.deals))
        return
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        tmp_path = Path(tmp)
        asyncio.run(bench(f"sqlite:///{tmp_path / 'bench.db'}", args.deals, tmp_path / "data"))
        if args.postgres:
            name = f"crm_bench_{uuid.uuid4().hex[:8]}"
            url = asyncio.run(scratch_postgres(args.postgres, "create", name))
            try:
                asyncio.run(bench(url, args.deals, tmp_path / "data-pg"))
            finally:
                asyncio.run(scratch_postgres(args.postgres, "drop", name))


if __name__ == "__main__":
    main()
