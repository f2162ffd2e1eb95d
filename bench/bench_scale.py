"""Benchmark: how the reports, the board, the scans and an export grow with the data.

    .venv/bin/python -m bench.bench_scale                        # 10k and 100k interactions, SQLite
    .venv/bin/python -m bench.bench_scale --sizes 1000000        # the 1M size (minutes to seed)
    .venv/bin/python -m bench.bench_scale --postgres postgresql://postgres@127.0.0.1:5432/test

For each size a fresh database is seeded with bulk inserts: N interactions and, in proportion,
N/10 contacts and deals (a year of history: 35% won, 20% lost, the rest open, a fifth of those
untouched for weeks), a task for every other deal, a contract with 3 monthly installments
(95% of those past due paid) for half the won deals, 45 users, one team channel, and the
outbox's year of sent notifications (a morning plan per user per day, a reminder per task, a
nudge per deal).

With the clock at a Friday 10:00 UTC, each operation is timed (best of up to 3 runs, fewer
past 2 s) and its peak Python memory measured in one more run (tracemalloc): the monthly
report, the pipeline board, the neglected-lead scan (its query; the job writing one nudge per
neglected deal; the job run again when all are queued, as every later run that day), the
reminders scan (its query; the job after a day down; the job a minute after its last run, its
steady state), the daily summary job, the morning plans job and a CSV export of the
interactions. Growth = time ratio between consecutive sizes (10x the data: linear growth
shows 10x). Then the query plans of the jobs on the largest size. Prints figures; asserts
nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import datetime, time as clock_time, timedelta, timezone
from pathlib import Path

from bench import captured_sql, postgres_url_from_env, query_plans, scratch_database

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)  # a Friday, in working hours
CHUNK = 10_000
MANAGERS, REPS = 4, 40
OPEN = ("new", "contacted", "proposal", "negotiation")
CURRENCIES = ("USD", "USD", "USD", "EUR", "AED")
SOURCES = ("website", "referral", "ads", "event", "cold", None)


async def bulk(conn, model, rows: list[dict]) -> None:
    from sqlalchemy import insert

    for i in range(0, len(rows), CHUNK):
        await conn.execute(insert(model), rows[i: i + CHUNK])


def people() -> tuple[list[dict], list[dict], list[int]]:
    """An admin, managers and reps (each rep under a manager), with Telegram identities."""
    users = [dict(id=1, display_name="Admin", role="admin", created_at=NOW)]
    users += [dict(id=2 + m, display_name=f"Manager {m}", role="manager", created_at=NOW)
              for m in range(MANAGERS)]
    first_rep = 2 + MANAGERS
    users += [dict(id=first_rep + r, display_name=f"Rep {r}", role="rep", manager_id=2 + r % MANAGERS,
                   created_at=NOW) for r in range(REPS)]
    identities = [dict(user_id=u["id"], platform="telegram", platform_user_id=str(5000 + u["id"]),
                       dm_address=f"telegram:{5000 + u['id']}", created_at=NOW) for u in users]
    return users, identities, [u["id"] for u in users[1 + MANAGERS:]]


def deal_rows(n_deals: int, reps: list[int], rng: random.Random):
    """Contacts, deals, stage changes, tasks, contracts, installments, payments, allocations."""
    out = {k: [] for k in ("contacts", "deals", "changes", "tasks", "contracts", "installments",
                           "payments", "allocations")}
    for i in range(1, n_deals + 1):
        owner = rng.choice(reps)
        created = NOW - timedelta(days=rng.uniform(1, 365))
        currency, source = rng.choice(CURRENCIES), rng.choice(SOURCES)
        roll = rng.random()
        stage = "won" if roll < 0.35 else "lost" if roll < 0.55 else rng.choice(OPEN)
        closed = min(created + timedelta(days=rng.uniform(1, 60)), NOW) if stage in ("won", "lost") else None
        if closed:
            touched = closed
        elif rng.random() < 0.8:
            touched = NOW - timedelta(hours=rng.uniform(0, 20))
        else:
            touched = NOW - timedelta(days=rng.uniform(8, 60))
        touched = max(touched, created)
        value = rng.randint(100, 50_000) * 100
        out["contacts"].append(dict(id=i, name=f"Lead {i}", phone=f"+9715{i:08d}", owner_id=owner,
                                    source=source, tags=[], created_at=created, last_touched_at=touched))
        out["deals"].append(dict(id=i, contact_id=i, title=f"Deal {i}", value_minor=value, currency=currency,
                                 stage=stage, owner_id=owner, source=source, created_at=created,
                                 stage_changed_at=closed or created, last_touched_at=touched, closed_at=closed,
                                 lost_reason="price" if stage == "lost" else None))
        out["changes"].append(dict(deal_id=i, from_stage=None, to_stage="new", actor_id=owner, at=created))
        if stage != "new":
            out["changes"].append(dict(deal_id=i, from_stage="new", to_stage=stage, actor_id=owner,
                                       at=closed or created + (touched - created) / 2))
        if i % 2 == 0:
            open_task = closed is None
            out["tasks"].append(dict(title=f"Call lead {i}", due_at=NOW + timedelta(days=rng.uniform(-5, 5)),
                                     owner_id=owner, contact_id=i, deal_id=i, status="open" if open_task else "done",
                                     completed_at=None if open_task else closed, created_by_id=owner,
                                     created_at=created))
        if stage == "won" and rng.random() < 0.5:
            cid = len(out["contracts"]) + 1
            signed = closed.date()
            out["contracts"].append(dict(id=cid, deal_id=i, number=f"CTR-{cid}", signed_on=signed, total_minor=value,
                                         currency=currency, owner_id=owner, created_at=closed))
            share = value // 3
            for seq in range(1, 4):
                amount = share if seq < 3 else value - 2 * share
                due = signed + timedelta(days=30 * seq)
                # Most installments past due were paid on time; a few are late.
                paid = due < NOW.date() - timedelta(days=7) and rng.random() < 0.95
                iid = len(out["installments"]) + 1
                out["installments"].append(dict(id=iid, contract_id=cid, seq=seq, invoice_number=f"INV-{cid}-{seq}",
                                                amount_minor=amount, due_date=due,
                                                status="paid" if paid else "open"))
                if paid:
                    pid = len(out["payments"]) + 1
                    out["payments"].append(dict(id=pid, contract_id=cid, amount_minor=amount, currency=currency,
                                                paid_on=due, method="bank", recorded_by_id=owner,
                                                created_at=datetime.combine(due, clock_time(12), timezone.utc)))
                    out["allocations"].append(dict(payment_id=pid, installment_id=iid, amount_minor=amount))
    return out


async def seed(crm, n_interactions: int, rng: random.Random) -> dict[str, int]:
    from storage import models as m

    users, identities, reps = people()
    n_deals = max(1, n_interactions // 10)
    rows = deal_rows(n_deals, reps, rng)
    async with crm.db.engine.begin() as conn:
        await bulk(conn, m.User, users)
        await bulk(conn, m.Identity, identities)
        await bulk(conn, m.TeamChannel, [dict(address="telegram:-1001", platform="telegram", title="Sales",
                                              timezone="UTC", summary_time=clock_time(9, 0), created_at=NOW)])
        for model, key in ((m.Contact, "contacts"), (m.Deal, "deals"), (m.StageChange, "changes"),
                           (m.Task, "tasks"), (m.Contract, "contracts"), (m.Installment, "installments"),
                           (m.Payment, "payments"), (m.Allocation, "allocations")):
            await bulk(conn, model, rows[key])
        counts = {key: len(value) for key, value in rows.items()}
        del rows
        for start in range(0, n_interactions, CHUNK):
            chunk = []
            for _ in range(min(CHUNK, n_interactions - start)):
                deal = rng.randint(1, n_deals)
                when = NOW - timedelta(days=rng.uniform(0, 365))
                chunk.append(dict(contact_id=deal, deal_id=deal, kind=rng.choice(("call", "message", "meeting")),
                                  summary="Called about the offer", occurred_at=when,
                                  logged_by_id=rng.choice(reps), created_at=when))
            await conn.execute(m.Interaction.__table__.insert(), chunk)
        counts["interactions"] = n_interactions
        history = sent_history(users, counts["tasks"], n_deals)
        await bulk(conn, m.OutboxMessage, history)
        counts["sent notifications"] = len(history)
        if crm.db.engine.dialect.name == "postgresql":
            for table in ("users", "contacts", "deals", "contracts", "installments", "payments"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    async with crm.db.engine.begin() as conn:  # fresh statistics, as a running database has
        await conn.exec_driver_sql("ANALYZE")
    return counts


def sent_history(users: list[dict], n_tasks: int, n_deals: int) -> list[dict]:
    """A year of sent notifications, as the outbox keeps them: a morning plan per user per day,
    a reminder per task, a nudge per deal."""
    rows = []

    def sent(key: str, user_id: int, kind: str, at: datetime) -> None:
        address = f"telegram:{5000 + user_id}"
        rows.append(dict(dedupe_key=f"{key}@{address}", address=address, kind=kind, payload={},
                         status="sent", not_before=at, attempts=1, sent_at=at, created_at=at))

    for day in range(1, 366):
        at = NOW - timedelta(days=day)
        for user in users:
            sent(f"morning:user:{user['id']}:{at.date().isoformat()}", user["id"], "morning", at)
    for i in range(1, n_tasks + 1):
        sent(f"reminder:task:{i}:x", 1 + MANAGERS + 1 + i % REPS, "reminder", NOW - timedelta(days=1 + i % 300))
    for i in range(1, n_deals + 1):
        sent(f"nudge:deal:{i}:x", 1 + MANAGERS + 1 + i % REPS, "nudge", NOW - timedelta(days=1 + i % 300))
    return rows


async def reminders_ran_a_minute_ago(crm) -> None:
    """The steady state of the every-minute reminders job: it ran a minute ago."""
    from sqlalchemy import insert

    from storage.models import JobRun

    await clear_outbox(crm)
    async with crm.db.engine.begin() as conn:
        await conn.execute(insert(JobRun), [dict(name="reminders", last_run_at=NOW - timedelta(minutes=1))])


async def clear_outbox(crm) -> None:
    """Forget the notifications a job wrote (not the seeded history), so its next run does the
    same work again."""
    from sqlalchemy import delete

    from storage.models import JobRun, OutboxMessage

    async with crm.db.engine.begin() as conn:
        await conn.execute(delete(OutboxMessage).where(OutboxMessage.created_at >= NOW))
        await conn.execute(delete(JobRun))


async def measure(call: Callable[[], Awaitable], before: Callable[[], Awaitable] | None) -> tuple[float, float]:
    """(best seconds of up to 3 runs, peak traced MB of one more run); `before` runs untimed
    before each. Runs stop repeating after 2 s in total: the big sizes are timed once."""
    times: list[float] = []
    while len(times) < 3 and sum(times) < 2.0:
        if before:
            await before()
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    seconds = min(times)
    if before:
        await before()
    tracemalloc.start()
    try:
        await call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seconds, peak / 2**20


def operations(crm):
    """(label, call, untimed set-up) for every measured operation."""
    from handlers import deals as deals_uc
    from handlers.context import Actor
    from handlers.exports import export
    from handlers.reports import report
    from jobs.scans import CONFIG, daily_summaries, followup_reminders, morning_plans, neglected_leads
    from storage.repos.scans import ScanRepository

    admin = Actor(1)

    async def neglected_query():
        stale = {stage: NOW - timedelta(days=d) for stage, d in CONFIG.neglect_days.items()}
        async with crm.reader() as uow:
            return await ScanRepository(uow.session).neglected_deals(stale, NOW - CONFIG.untasked_grace)

    async def reminders_query():
        async with crm.reader() as uow:
            return await ScanRepository(uow.session).tasks_due_between(NOW - CONFIG.reminder_lookback, NOW)

    async def export_interactions():
        for path in await export(crm, admin, "interactions", "csv"):
            path.unlink()

    return [
        ("monthly report (admin)", lambda: report(crm, admin, "last month"), None),
        ("pipeline board (admin)", lambda: deals_uc.pipeline(crm, admin), None),
        ("neglected-lead scan: query", neglected_query, None),
        ("neglected-lead job: + nudges", lambda: neglected_leads(crm, NOW), lambda: clear_outbox(crm)),
        ("neglected-lead job: rerun", lambda: neglected_leads(crm, NOW), None),  # all already queued
        ("reminders scan: query", reminders_query, None),
        ("reminders job: a day due", lambda: followup_reminders(crm, NOW), lambda: clear_outbox(crm)),
        ("reminders job: steady, 1/min", lambda: followup_reminders(crm, NOW),
         lambda: reminders_ran_a_minute_ago(crm)),
        ("daily summary job", lambda: daily_summaries(crm, NOW), lambda: clear_outbox(crm)),
        ("morning plans job (45 users)", lambda: morning_plans(crm, NOW), lambda: clear_outbox(crm)),
        ("export interactions csv", export_interactions, None),
    ]


async def scans_plans(crm) -> list[str]:
    """The query plans of the periodic jobs (reminders, neglected leads, summary, morning plans,
    installments)."""
    from jobs.scans import installment_reminders

    await clear_outbox(crm)
    with captured_sql(crm.db.engine) as seen:
        for label, call, before in operations(crm):
            if "scan" in label or "job" in label:
                if before:
                    await before()
                await call()
        await installment_reminders(crm, NOW)
    return await query_plans(crm.db.engine, seen)


async def bench_size(backend: str, postgres_url: str | None, n: int, tmp: Path, want_plans: bool):
    from config import load_settings
    from handlers.context import CRM, FixedClock
    from storage.db import open_database

    async with scratch_database(backend, tmp, postgres_url) as url:
        data_dir = tmp / f"data-{backend}-{n}"
        settings = load_settings(DATABASE_URL=url, CRM_DATA_DIR=str(data_dir))
        crm = CRM(db=open_database(url), settings=settings, clock=FixedClock(NOW))
        try:
            started = time.perf_counter()
            counts = await seed(crm, n, random.Random(11))
            seeded = time.perf_counter() - started
            print(f"  {backend} {n:,} interactions: seeded in {seeded:.1f} s "
                  f"({', '.join(f'{v:,} {k}' for k, v in counts.items() if k != 'interactions')})", flush=True)
            figures = {}
            for label, call, before in operations(crm):
                figures[label] = await measure(call, before)
            plans = await scans_plans(crm) if want_plans else []
        finally:
            await crm.db.dispose()
            shutil.rmtree(data_dir, ignore_errors=True)
    return figures, plans


def print_table(backend: str, sizes: list[int], results: dict[int, dict[str, tuple[float, float]]]) -> None:
    head = "".join(f"{f'{n:,}':>22}" for n in sizes)
    growth = "".join(f"{f'x{b // a} data':>12}" for a, b in zip(sizes, sizes[1:]))
    print(f"\n{backend}: time (ms) / peak Python memory (MB) per interactions seeded; growth = time ratio")
    print(f"  {'operation':<30}{head}{growth}")
    for label in results[sizes[0]]:
        cells = "".join(f"{results[n][label][0] * 1000:>12.0f} ms {results[n][label][1]:>5.1f} MB" for n in sizes)
        ratios = "".join(f"{results[b][label][0] / max(results[a][label][0], 1e-9):>11.1f}x"
                         for a, b in zip(sizes, sizes[1:]))
        print(f"  {label:<30}{cells}{ratios}")


def print_plans(backend: str, n: int, plans: list[str]) -> None:
    print(f"\n{backend}: query plans of the scans at {n:,} interactions "
          f"({'EXPLAIN QUERY PLAN' if backend == 'sqlite' else 'EXPLAIN'})")
    for line in plans:
        print(f"  {line}")
    print(f"  reads without an index: {', '.join(sorted(tables_read_in_full(plans))) or 'none'}")


def tables_read_in_full(plans: list[str]) -> set[str]:
    """Tables a plan reads row by row: SQLite's `SCAN t` (no index), PostgreSQL's `Seq Scan on t`."""
    tables = set()
    for line in plans:
        words = line.replace("->", "").split()
        if words[:1] == ["SCAN"] and "USING" not in words:
            tables.add(words[1])
        elif "Seq Scan on" in line:
            tables.add(line.split("Seq Scan on", 1)[1].split()[0])
    return tables


async def main_async(args) -> None:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    postgres_url = postgres_url_from_env(args.postgres)
    backends = ["sqlite"] + (["postgres"] if postgres_url else [])
    print(f"Scale: {', '.join(f'{n:,}' for n in sizes)} interactions, on {', '.join(backends)}")
    with tempfile.TemporaryDirectory(prefix="crm-scale-") as tmp:
        for backend in backends:
            results, plans = {}, []
            for n in sizes:
                results[n], found = await bench_size(backend, postgres_url, n, Path(tmp), n == sizes[-1])
                plans = found or plans
            print_table(backend, sizes, results)
            if not args.no_plans:
                print_plans(backend, sizes[-1], plans)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS (seeding included): {peak:.0f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="interactions to seed, comma-separated")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (scratch databases)")
    parser.add_argument("--no-plans", action="store_true", help="leave out the query plans")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
