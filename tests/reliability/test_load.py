"""Load: 200 reps add leads step by step at the same time, on PostgreSQL, for a bounded time,
each answering at a phone typist's pace. No error and no warning to anyone; no lost answer
(every confirmed lead is stored with exactly what was typed, nothing else is, and each
unfinished flow is stored at the question its rep was looking at); memory stays flat (RSS and
live Python objects sampled once warm and at the end: the figures are printed, only a generous
bound is asserted)."""
from __future__ import annotations

import asyncio
import gc
import itertools
import random
import time

import pytest
from sqlalchemy import select

from conversations.messages import Inbound
from conversations.router import Router
from storage.models import Contact, ConversationState, Deal, Identity, User
from tests.conftest import T0
from tests.reliability.processes import HANG_GUARD_S

REPS = 200
WARM_S, RUN_S = 15, 60  # memory is sampled at WARM_S and at the end of RUN_S
THINK_S = (3.0, 9.0)  # seconds a rep takes to read a question and type the answer
postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


class Rep:
    """One rep adding leads with /newlead, one answer per think time, until told to stop."""

    def __init__(self, router: Router, n: int, rng: random.Random) -> None:
        self.router, self.n, self.rng = router, n, rng
        self.user = str(70000 + n)
        self.saved: list[tuple[str, str]] = []  # (name, company) confirmed by the bot
        self.asked: str | None = None  # the question on the rep's screen (None: no flow open)
        self.messages = 0
        self._events = itertools.count()

    def word(self) -> str:
        """A made-up name unlike any other rep's (so no duplicate check interrupts)."""
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz") + self.rng.choice("aeiou")
                       for _ in range(5)).capitalize()

    async def say(self, text: str) -> list:
        self.messages += 1
        replies = await self.router.handle(Inbound(
            platform="telegram", chat_id=self.user, user_id=self.user, text=text,
            event_key=f"{self.user}-{next(self._events)}"))
        warnings = [r.text.plain for r in replies if "⚠️" in r.text.plain]
        assert not warnings, (self.user, text, warnings)
        return replies

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            name, company = self.word(), self.word()
            answers = {"name": name, "company": company, "phone": "skip", "email": "skip",
                       "source": "Referral", "value": f"{self.n + 1}k",
                       "next_step_at": "tomorrow 10am"}
            text = "/newlead"
            while True:
                try:
                    await asyncio.wait_for(stop.wait(), self.rng.uniform(*THINK_S))
                    return  # stopped while thinking: the open flow stays where it is
                except TimeoutError:
                    pass
                replies = await self.say(text)
                self.asked = replies[-1].ask
                if any("Lead saved" in r.text.plain for r in replies):
                    self.saved.append((name, company))
                    break
                assert self.asked in answers, (self.user, text, [r.text.plain for r in replies])
                text = answers[self.asked]


@pytest.mark.slow
@postgres_only
async def test_200_reps_at_once_lose_nothing_and_memory_stays_flat(crm):
    async with crm.uow() as uow:
        for n in range(REPS):
            user = User(display_name=f"Rep {n}", role="rep", timezone="UTC", created_at=T0)
            uow.session.add(user)
            await uow.flush()
            uow.session.add(Identity(user_id=user.id, platform="telegram",
                                     platform_user_id=str(70000 + n),
                                     dm_address=f"telegram:{70000 + n}", created_at=T0))
        await uow.commit()
    rng = random.Random(REPS)
    reps = [Rep(Router(crm), n, rng) for n in range(REPS)]
    stop = asyncio.Event()
    started = time.monotonic()
    running = asyncio.gather(*(r.run(stop) for r in reps))
    await asyncio.sleep(WARM_S)
    gc.collect()
    rss_warm, objects_warm = rss_mb(), len(gc.get_objects())
    await asyncio.sleep(RUN_S - WARM_S)
    stop.set()
    await asyncio.wait_for(running, HANG_GUARD_S)
    elapsed = time.monotonic() - started
    gc.collect()
    rss_end, objects_end = rss_mb(), len(gc.get_objects())

    messages = sum(r.messages for r in reps)
    saved = {(r.n, name, company) for r in reps for name, company in r.saved}
    print(f"\n{REPS} reps, {messages} messages in {elapsed:.0f} s ({messages / elapsed:.0f}/s), "
          f"{len(saved)} leads; RSS {rss_warm:.0f} -> {rss_end:.0f} MB, "
          f"live objects {objects_warm} -> {objects_end}")

    async with crm.reader() as uow:
        stored = (await uow.session.execute(
            select(User.display_name, Contact.name, Contact.company, Contact.source, Deal.value_minor)
            .join(Contact, Contact.owner_id == User.id)
            .join(Deal, Deal.contact_id == Contact.id))).all()
        open_flows = dict((await uow.session.execute(
            select(ConversationState.chat_id, ConversationState.field))).all())
    expected = {(f"Rep {n}", name, company, "referral", (n + 1) * 100_000) for n, name, company in saved}
    assert set(stored) == expected and len(stored) == len(expected)  # nothing lost, nothing extra
    assert open_flows == {r.user: r.asked for r in reps if r.asked is not None}
    assert all(r.messages for r in reps)  # everyone was answered
    assert rss_end < 2 * rss_warm and objects_end < 2 * objects_warm
