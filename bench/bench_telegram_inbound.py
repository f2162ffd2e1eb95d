"""Benchmark: inbound Telegram updates, ChatCRM against a bare python-telegram-bot echo bot.

    .venv/bin/python -m bench.bench_telegram_inbound                   # 20 users, 2 rounds, 10 s at 50/s
    .venv/bin/python -m bench.bench_telegram_inbound --users 50 --rounds 3 --seconds 20
    .venv/bin/python -m bench.bench_telegram_inbound --postgres postgresql://postgres@127.0.0.1:5432/test

Both bots are the real PTB `Application` long-polling the fake Bot API server the tests use
(`tests/fakes/telegram_api.py`) over HTTP on 127.0.0.1. The server, the simulated users and
the bot share this process and its event loop, so the server's own work is charged to the bot:
the figures are conservative, and the same for both bots.

- Floor: the echo bot (`reply_text` of every text message, PTB's defaults).
- ChatCRM: `main.build_crm` (migrations, alert hooks) + `Router` + `TelegramChannel` on SQLite
  (and PostgreSQL with `--postgres URL` or CRM_TEST_POSTGRES_URL). Each user owns seeded
  contacts, deals and overdue tasks, and repeats a round of: the /newlead flow typed and with
  buttons (8 updates), /log found by phone with a natural-language follow-up date (7), /find by
  name, /tasks and a press of its Done button.

Throughput: every user sends its next update as soon as the previous one is handled (like a
rep waiting for the answer); updates/s = all updates / wall time. Latency: from the update
being available to getUpdates until the bot's first reply (a sendMessage or edit reaching the
server) and until it finished handling it. Fixed rate: updates released at `--rate`/s to the
next idle user. ChatCRM runs with its direct-reply pacing off (like the tests) to measure the
software; one fixed-rate run keeps the shipped pacing (1 message/s per chat, 30/s overall) to
show what a rep sees. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench import latency_summary, percentile, postgres_url_from_env, scratch_database

FIRST = ("Layla", "Omar", "Rana", "Karim", "Noor", "Yusuf", "Maya", "Sami", "Huda", "Tariq")
LAST = ("Nasser", "Haddad", "Khoury", "Saleh", "Aziz", "Farah", "Mansour", "Darwish", "Issa", "Bakr")
CHAT0 = 100_000  # chat ids (= Telegram user ids) start above this
SEEDED_CONTACTS = 10  # per user, each with one open deal and one overdue task
REPLY_METHODS = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto", "sendDocument")
SORRY = "Something went wrong"


@dataclass
class Sample:
    kind: str  # what the user did: "/newlead", "typed answer", "button" ...
    pushed: float
    first_reply: float | None = None
    done: float | None = None


@dataclass
class RunResult:
    label: str
    updates: int
    elapsed: float
    samples: list[Sample]
    completed_flows: int = 0
    started_flows: int = 0
    apologies: int = 0
    late_releases: int = 0  # fixed rate: updates released later than their tick (no idle user)
    unfinished: int = 0
    sql_statements: int = 0

    @property
    def rate(self) -> float:
        return self.updates / self.elapsed if self.elapsed else 0.0

    def first(self) -> list[float]:
        return [s.first_reply - s.pushed for s in self.samples if s.first_reply is not None]

    def complete(self) -> list[float]:
        return [s.done - s.pushed for s in self.samples if s.done is not None]


def fake_api_class():
    """The tests' fake Bot API, plus the time each reply call reached it (per chat)."""
    from tests.fakes.telegram_api import FakeTelegramAPI

    class TimedAPI(FakeTelegramAPI):
        def __init__(self, **kw) -> None:
            super().__init__(**kw)
            self.reply_times: dict[str, list[float]] = defaultdict(list)

        async def _api(self, request):
            arrived = time.perf_counter()
            response = await super()._api(request)
            # `calls[-1]` is this request's call: nothing awaited between its append and here.
            if request.match_info["method"] in REPLY_METHODS and response.status == 200:
                self.reply_times[str(self.calls[-1].chat_id)].append(arrived)
            return response

    return TimedAPI


class Users:
    """Simulated Telegram users: push an update, wait until the bot has handled it."""

    def __init__(self, api, app) -> None:
        from telegram import Update
        from telegram.ext import TypeHandler

        self.api = api
        self.samples: list[Sample] = []
        self.sql = [0]  # SQL statements run by the bot (ChatCRM only)
        self._waiting: dict[int, tuple[Sample, str, asyncio.Future]] = {}

        async def handled(update: Update, _context) -> None:
            entry = self._waiting.pop(update.update_id, None)
            if entry is None:
                return
            sample, chat, future = entry
            sample.done = time.perf_counter()
            times = [t for t in api.reply_times.get(chat, ()) if t >= sample.pushed]
            sample.first_reply = min(times) if times else None
            future.set_result(None)

        # Runs after the bot's own handlers (group 0) have finished with the update.
        app.add_handler(TypeHandler(Update, handled), group=99)

    async def send(self, update: dict, chat_id: int, kind: str) -> None:
        sample = Sample(kind, pushed=time.perf_counter())
        future = asyncio.get_running_loop().create_future()
        # Registered right after the push: the bot cannot see the update before we await.
        self.api.push_update(update)
        self._waiting[update["update_id"]] = (sample, str(chat_id), future)
        self.samples.append(sample)
        await future

    async def say(self, chat_id: int, text: str) -> None:
        kind = text.split()[0] if text.startswith("/") else "typed answer"
        await self.send(self.api.message(chat_id, text), chat_id, kind)

    async def tap(self, chat_id: int, label: str) -> bool:
        """Press the newest button whose text contains `label`; False when there is none."""
        for message_id, message in sorted(self.api.messages[str(chat_id)].items(), reverse=True):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if label in button["text"]:
                        update = self.api.press(chat_id, button["callback_data"], message_id=message_id)
                        await self.send(update, chat_id, f"button {label}")
                        return True
        return False

    def last_text(self, chat_id: int) -> str:
        texts = self.api.texts_to(chat_id)
        return texts[-1] if texts else ""


# --- the bots ------------------------------------------------------------------------------------


@asynccontextmanager
async def echo_bot(api) -> AsyncIterator[Users]:
    """The floor: PTB's canonical echo bot, long polling the fake server."""
    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.message.reply_text(update.message.text)

    app = Application.builder().token(api.token).base_url(api.base_url).base_file_url(
        api.base_file_url).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    users = Users(api, app)
    await app.initialize()
    await app.start()
    await app.updater.start_polling(timeout=1)
    try:
        yield users
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@asynccontextmanager
async def crm_bot(api, database_url: str, data_dir: Path, user_count: int, *, paced: bool):
    """ChatCRM's Telegram surface on a seeded database: yields the simulated users."""
    from pydantic import SecretStr

    from bot.telegram_channel import SendLimits, TelegramChannel
    from config import load_settings
    from conversations.router import Router
    from main import build_crm

    settings = load_settings(
        DATABASE_URL=database_url, CRM_DATA_DIR=str(data_dir), CRM_PHONE_REGION="AE",
        CRM_LOG_LEVEL="WARNING", TELEGRAM_BOT_TOKEN=SecretStr(api.token),
        TELEGRAM_API_URL=api.base_url,
    )
    crm = await build_crm(settings)
    await seed(crm, user_count + 1)  # the last one warms up
    # The per-user rate limit (30 messages/min) is left out: these users type far faster than
    # people do, on purpose. Pacing off = what the tests use; on = Telegram's limits.
    limits = SendLimits() if paced else SendLimits(overall_per_s=1e6, chat_interval=0, group_interval=0)
    channel = TelegramChannel(settings, Router(crm), limits=limits, poll_timeout=1.0)
    users = Users(api, channel.app)
    users.sql = count_statements(crm.db.engine)
    await channel.start()
    try:
        yield users
    finally:
        await channel.stop()
        await crm.db.dispose()


def count_statements(engine) -> list[int]:
    """A one-item list counting the SQL statements `engine` runs from now on."""
    from sqlalchemy import event

    counter = [0]

    def count(*_args) -> None:
        counter[0] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    return counter


def contact_name(user: int, k: int) -> str:
    return f"{FIRST[k % len(FIRST)]} {LAST[(user * 3 + k) % len(LAST)]} {user:03d}{k:02d}"


def seeded_phone(user: int, k: int) -> str:
    return f"+97150{user:03d}{k:04d}"


def chat_user_id(platform: str, user: int) -> str:
    """The simulated rep's id on `platform`: a Telegram chat id, a Slack member id."""
    return str(CHAT0 + user) if platform == "telegram" else f"U{CHAT0 + user}"


async def seed(crm, user_count: int, platform: str = "telegram") -> None:
    """Reps with a chat identity, each with contacts, open deals and overdue tasks."""
    from sqlalchemy import insert

    from storage.models import Contact, Deal, Identity, Task, User

    now = crm.now()
    users, identities, contacts, deals, tasks = [], [], [], [], []
    for u in range(user_count):
        uid = 1000 + u
        users.append(dict(id=uid, display_name=f"Rep {u}", role="rep", timezone="UTC", created_at=now))
        pid = chat_user_id(platform, u)
        identities.append(dict(user_id=uid, platform=platform, platform_user_id=pid,
                               dm_address=f"{platform}:{pid}", created_at=now))
        for k in range(SEEDED_CONTACTS):
            cid = uid * 100 + k
            contacts.append(dict(id=cid, name=contact_name(u, k), phone=seeded_phone(u, k), owner_id=uid,
                                 source="referral", tags=[], created_at=now - timedelta(days=k + 1)))
            deals.append(dict(id=cid, contact_id=cid, title=f"Deal {cid}", value_minor=500_000, currency="USD",
                              stage="contacted", owner_id=uid, created_at=now - timedelta(days=k + 1),
                              stage_changed_at=now - timedelta(days=k + 1),
                              last_touched_at=now - timedelta(days=1)))
            tasks.append(dict(title=f"Call {contact_name(u, k)}", due_at=now - timedelta(hours=k + 1),
                              owner_id=uid, contact_id=cid, deal_id=cid, status="open", created_by_id=uid,
                              created_at=now - timedelta(days=1)))
    async with crm.db.engine.begin() as conn:
        for model, rows in ((User, users), (Identity, identities), (Contact, contacts), (Deal, deals),
                            (Task, tasks)):
            await conn.execute(insert(model), rows)
        if crm.db.engine.dialect.name == "postgresql":  # explicit ids: move the sequences on
            for table in ("users", "contacts", "deals"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


# --- what the users do ---------------------------------------------------------------------------


@dataclass
class Tally:
    started: int = 0
    completed: int = 0


async def crm_round(users: Users, u: int, n: int, tally: Tally, gate: Callable) -> None:
    """One round of a rep's day: a new lead, a logged call, a search, the task list."""
    chat = CHAT0 + u

    async def say(text: str) -> None:
        await gate()
        await users.say(chat, text)

    async def tap(label: str) -> bool:
        await gate()
        return await users.tap(chat, label)

    async def create_anyway() -> None:
        """Answer the duplicate check when it is asked (the names are alike on purpose)."""
        if "Create anyway" in str(users.api.sent_to(chat)[-1].keyboard):
            await tap("Create anyway")

    await say("/newlead")
    tally.started += 1
    await say(f"{FIRST[(n + u) % len(FIRST)]} Newman {u:03d}{n:03d}")
    await tap("Skip")  # company
    await say(f"+97155{u:03d}{n:04d}")
    await say(f"lead{u}x{n}@example.com")
    await create_anyway()
    await tap("Referral")
    await say(random.choice(("5k", "12,000", "AED 20,000", "1.5k")))
    await say(random.choice(("tomorrow 10am", "next monday 9:30", "in 3 days", "friday 2pm")))
    # Another rep may have saved a look-alike meanwhile: the bot asks again before saving.
    await create_anyway()
    tally.completed += "Lead saved" in users.last_text(chat)

    await say("/log")
    tally.started += 1
    await say(seeded_phone(u, n % SEEDED_CONTACTS))
    await tap("Call")
    await say("Talked through the quote; wants 10% off")
    await say("interested")
    await say(random.choice(("next tuesday 3pm", "tomorrow morning", "in 2 days at 11", "monday 10am")))
    tally.completed += "Logged" in users.last_text(chat)

    await say(f"/find {FIRST[n % len(FIRST)]}")
    await say("/tasks")
    await tap("Done")


async def echo_round(users: Users, u: int, n: int, tally: Tally, gate: Callable) -> None:
    """As many text messages as a ChatCRM round has updates (17), each echoed."""
    chat = CHAT0 + u
    for i in range(17):
        await gate()
        await users.say(chat, f"hello {n}.{i} from {u}")


async def free_gate() -> None:
    """Closed loop: no waiting between updates."""


async def warm_up(users: Users, round_fn, user: int) -> None:
    """One round by a user of its own, then forget its samples: first-use costs (imports,
    dateparser's language data, connection pools) are not what a running bot pays."""
    await round_fn(users, user, 0, Tally(), free_gate)
    users.samples.clear()
    users.sql[0] = 0


async def closed_loop(label, users: Users, round_fn, user_count: int, rounds: int) -> RunResult:
    tally = Tally()
    await warm_up(users, round_fn, user_count)

    async def user(u: int) -> None:
        for n in range(rounds):
            await round_fn(users, u, n, tally, free_gate)

    started = time.perf_counter()
    await asyncio.gather(*(user(u) for u in range(user_count)))
    elapsed = time.perf_counter() - started
    return result(label, users, elapsed, tally)


async def fixed_rate(label, users: Users, round_fn, user_count: int, rate: float, seconds: float,
                     drain_timeout: float = 120.0) -> RunResult:
    """Release updates at `rate`/s, each to the next user waiting to send one."""
    tally = Tally()
    permits: asyncio.Queue[float] = asyncio.Queue()
    late = 0
    stop = asyncio.Event()

    async def gate() -> None:
        nonlocal late
        if stop.is_set():
            raise asyncio.CancelledError
        due = await permits.get()
        if time.perf_counter() - due > 0.005:
            late += 1

    async def ticker() -> None:
        start = time.perf_counter()
        for i in itertools.count():
            due = start + i / rate
            if due - start >= seconds:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            permits.put_nowait(due)
        stop.set()

    async def user(u: int) -> None:
        for n in itertools.count():
            await round_fn(users, u, n, tally, gate)

    await warm_up(users, round_fn, user_count)
    tasks = [asyncio.create_task(user(u)) for u in range(user_count)]
    started = time.perf_counter()
    await ticker()
    elapsed = time.perf_counter() - started
    # Let the released updates finish, then stop the users waiting for a permit.
    deadline = time.perf_counter() + drain_timeout
    while any(s.done is None for s in users.samples) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    run = result(label, users, elapsed, tally)
    run.late_releases = late
    return run


def result(label: str, users: Users, elapsed: float, tally: Tally) -> RunResult:
    samples = list(users.samples)
    apologies = sum(SORRY in t for chat in users.api.messages.values() for t in
                    (m.get("text", "") for m in chat.values()))
    return RunResult(label, len(samples), elapsed, samples, tally.completed, tally.started, apologies,
                     unfinished=sum(s.done is None for s in samples), sql_statements=users.sql[0])


# --- runs ----------------------------------------------------------------------------------------


async def run_echo(args) -> tuple[RunResult, RunResult]:
    api_class = fake_api_class()
    async with api_class() as api, echo_bot(api) as users:
        floor = await closed_loop("echo bot (floor)", users, echo_round, args.users, args.rounds)
    async with api_class() as api, echo_bot(api) as users:
        steady = await fixed_rate(f"echo bot at {args.rate:g}/s", users, echo_round, args.rate_users,
                                  args.rate, args.seconds)
    return floor, steady


async def run_crm(args, backend: str, postgres_url: str | None, tmp: Path) -> list[RunResult]:
    api_class = fake_api_class()
    runs = []
    plans = [("closed", False), ("rate", False)] + ([("rate", True)] if not args.skip_paced else [])
    for mode, paced in plans:
        user_count = args.users if mode == "closed" else args.rate_users
        async with scratch_database(backend, tmp, postgres_url) as url:
            async with api_class() as api, crm_bot(api, url, tmp / "data", user_count, paced=paced) as users:
                tag = f"ChatCRM {backend}" + (", shipped pacing" if paced else "")
                if mode == "closed":
                    runs.append(await closed_loop(tag, users, crm_round, args.users, args.rounds))
                else:
                    runs.append(await fixed_rate(f"{tag} at {args.rate:g}/s", users, crm_round, user_count,
                                                 args.rate, args.seconds))
    return runs


def print_table(runs: list[RunResult], floor: RunResult) -> None:
    print(f"  {'run':<40} {'updates':>7} {'upd/s':>7} {'vs floor':>8}  {'first reply p50/p99':>20}"
          f"  {'handled p50/p99':>18}  notes")
    for run in runs:
        first, done = run.first(), run.complete()
        notes = []
        if run.started_flows and " at " not in run.label:  # fixed-rate runs stop mid-flow
            notes.append(f"flows saved {run.completed_flows}/{run.started_flows}")
        if run.apologies:
            notes.append(f"'{SORRY}' x{run.apologies}")
        if run.late_releases:
            notes.append(f"{run.late_releases} released late (no idle user)")
        if run.unfinished:
            notes.append(f"{run.unfinished} unfinished")
        if run.sql_statements:
            notes.append(f"{run.sql_statements / run.updates:.0f} SQL statements/update")
        ratio = f"{run.rate / floor.rate:.2f}x" if floor.rate and "at " not in run.label else ""
        print(f"  {run.label:<40} {run.updates:>7} {run.rate:>7.0f} {ratio:>8}  "
              f"{percentile(first, 50) * 1000:>8.1f}/{percentile(first, 99) * 1000:>7.1f} ms"
              f"  {percentile(done, 50) * 1000:>7.1f}/{percentile(done, 99) * 1000:>7.1f} ms  {'; '.join(notes)}")


async def main_async(args) -> None:
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    random.seed(7)
    postgres_url = postgres_url_from_env(args.postgres)
    print(f"Telegram inbound: {args.users} users, {args.rounds} round(s) of 17 updates each (closed loop); "
          f"fixed rate {args.rate:g} updates/s from {args.rate_users} users for {args.seconds:g} s")
    floor, echo_steady = await run_echo(args)
    runs = [floor, echo_steady]
    with tempfile.TemporaryDirectory(prefix="crm-tg-bench-") as tmp:
        runs += await run_crm(args, "sqlite", None, Path(tmp))
        if postgres_url:
            runs += await run_crm(args, "postgres", postgres_url, Path(tmp))
    print_table(runs, floor)
    print("  first reply: update available -> first message/edit reaches the server; "
          "handled: -> the bot is done with the update")
    for run in runs:
        print(f"  {run.label}: handled {latency_summary(run.complete())}")
    for run in runs:
        if run.label.startswith("ChatCRM") and " at " not in run.label:
            print(f"  {run.label}, closed loop, by what the user did (handled p50/p99):")
            kinds = defaultdict(list)
            for sample in run.samples:
                if sample.done is not None:
                    kinds[sample.kind].append(sample.done - sample.pushed)
            for kind, values in sorted(kinds.items()):
                print(f"    {kind:<18} {percentile(values, 50) * 1000:7.1f} / {percentile(values, 99) * 1000:7.1f} ms"
                      f"  (n={len(values)})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="simulated reps chatting at once")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the 17-update mix per user")
    parser.add_argument("--rate", type=float, default=50.0, help="updates/s of the fixed-rate runs")
    parser.add_argument("--rate-users", type=int, default=100, help="simulated reps in the fixed-rate runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each fixed-rate run")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (scratch database)")
    parser.add_argument("--skip-paced", action="store_true", help="leave out the shipped-pacing run")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
