"""Report figures for a period, scoped by role: a rep sees their own, a manager their team's
(with a per-rep breakdown), an admin everyone's. Money stays per currency."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from handlers.access import acting_user
from handlers.context import CRM, Actor
from handlers.errors import InvalidInput
from handlers.periods import Period, parse_period
from handlers.values import Money
from storage.enums import OPEN_STAGES, STAGE_INFO, Role, Stage
from storage.models import User
from storage.repos.reports import Owners, ReportRepository

BREAKDOWNS = ("rep", "source", "stage")
NO_SOURCE = "no source"


@dataclass(frozen=True)
class Amount:
    """A count and a total in one currency."""

    currency: str
    count: int
    minor: int

    @property
    def money(self) -> Money:
        return Money(self.minor, self.currency)


@dataclass(frozen=True)
class StageFigure:
    stage: Stage
    count: int
    amounts: tuple[Money, ...]


@dataclass(frozen=True)
class Conversion:
    stage: Stage
    reached: int
    went_on: int

    @property
    def rate(self) -> float | None:
        return self.went_on / self.reached if self.reached else None


@dataclass(frozen=True)
class StageTime:
    stage: Stage
    stays: int
    average_days: float


@dataclass(frozen=True)
class BreakdownRow:
    label: str
    new_leads: int
    won_count: int
    won: tuple[Money, ...]
    pipeline: tuple[Money, ...]
    interactions: int | None = None  # only for the per-rep breakdown


@dataclass(frozen=True)
class ReportView:
    period: Period
    scope: str  # "you", "your team", "everyone"
    language: str
    new_leads: tuple[tuple[str, int], ...]
    won: tuple[Amount, ...]
    lost: tuple[Amount, ...]
    close_rate: float | None
    average_days_to_close: float | None
    pipeline: tuple[StageFigure, ...]
    forecast: tuple[Money, ...]
    conversion: tuple[Conversion, ...]
    time_in_stage: tuple[StageTime, ...]
    interactions: tuple[tuple[str, int], ...]
    due: tuple[Amount, ...]
    collected: tuple[Amount, ...]
    overdue: tuple[Amount, ...]
    overdue_as_of: date
    by: str | None = None
    breakdown: tuple[BreakdownRow, ...] = ()

    @property
    def won_count(self) -> int:
        return sum(a.count for a in self.won)

    @property
    def lost_count(self) -> int:
        return sum(a.count for a in self.lost)

    @property
    def new_lead_count(self) -> int:
        return sum(n for _, n in self.new_leads)


@dataclass(frozen=True)
class WonSeries:
    """Won value per local week or month, per currency (for the chart)."""

    unit: str  # "week" or "month"
    points: tuple[tuple[date, str, int], ...]  # (bucket start, currency, minor)


async def report(crm: CRM, actor: Actor, period_text: str | None, by: str | None = None) -> ReportView:
    """The figures for a period typed by the user ("last month", "Q3" ...)."""
    if by is not None and by not in BREAKDOWNS:
        raise InvalidInput(
            "I can break a report down by rep, source or stage, e.g. /report last month by rep.",
            field="by",
        )
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        period = parse_period(period_text, crm.now(), ZoneInfo(user.timezone))
    return await report_for(crm, actor, period, by)


async def report_for(crm: CRM, actor: Actor, period: Period, by: str | None = None) -> ReportView:
    """The figures for an already parsed period (charts and buttons rebuild it from dates)."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        owners = await uow.users.visible_owner_ids(user)
        if by is None and user.role != Role.REP:
            by = "rep"
        return await _figures(ReportRepository(uow.session), user, period, owners, by, crm.now())


async def won_series(crm: CRM, actor: Actor, period: Period) -> WonSeries:
    """Won value per week (periods up to ~2 months) or per month, in the actor's zone."""
    unit = "week" if (period.end - period.start).days <= 62 else "month"
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        owners = await uow.users.visible_owner_ids(user)
        repo = ReportRepository(uow.session)
        offset = period.start.utcoffset()
        points = await repo.won_per_bucket(period.start, period.end, owners, unit, offset)
        return WonSeries(unit, tuple(points))


async def pipeline_figures(crm: CRM, actor: Actor) -> tuple[StageFigure, ...]:
    """Open deals per stage now, in the actor's scope (the funnel chart's data)."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        owners = await uow.users.visible_owner_ids(user)
        rows = await ReportRepository(uow.session).open_pipeline(owners)
        return _stage_figures(rows)


async def _figures(repo: ReportRepository, user: User, period: Period, owners: Owners, by, now: datetime) -> ReportView:
    start, end = period.start, period.end
    cutoff = min(end, now)
    closed = await repo.closed(start, end, owners)
    won = tuple(Amount(cur, n, int(v)) for _, stage, cur, n, v in closed if stage == Stage.WON)
    lost = tuple(Amount(cur, n, int(v)) for _, stage, cur, n, v in closed if stage == Stage.LOST)
    won_n, lost_n = sum(a.count for a in won), sum(a.count for a in lost)
    pipeline_rows = await repo.open_pipeline(owners)
    as_of = min(period.end_day, now.astimezone(period.start.tzinfo).date())
    return ReportView(
        period=period,
        scope={Role.ADMIN: "everyone", Role.MANAGER: "your team"}.get(user.role, "you"),
        language=user.language,
        new_leads=tuple((src or NO_SOURCE, n) for src, n in await repo.new_leads(start, end, owners)),
        won=won,
        lost=lost,
        close_rate=won_n / (won_n + lost_n) if won_n + lost_n else None,
        average_days_to_close=await repo.average_days_to_close(start, end, owners),
        pipeline=_stage_figures(pipeline_rows),
        forecast=_forecast(pipeline_rows),
        conversion=tuple(
            Conversion(Stage(s), reached, on)
            for s, reached, on in await repo.stage_reach(start, end, owners)
            if Stage(s) != Stage.WON
        ),
        time_in_stage=_in_funnel_order(
            StageTime(Stage(s), n, avg) for s, n, avg in await repo.days_in_stage(start, end, cutoff, owners)
        ),
        interactions=tuple((name, n) for _, name, n in await repo.interactions_per_rep(start, end, owners)),
        due=_amounts(await repo.due(period.first_day, period.end_day, owners)),
        collected=_amounts(await repo.collected(period.first_day, period.end_day, owners)),
        overdue=_amounts(await repo.overdue(as_of, owners)),
        overdue_as_of=as_of,
        by=by,
        breakdown=await _breakdown(repo, period, owners, by) if by else (),
    )


async def _breakdown(repo: ReportRepository, period: Period, owners: Owners, by: str) -> tuple[BreakdownRow, ...]:
    new = dict(await repo.new_leads(period.start, period.end, owners, by))
    won: dict = defaultdict(list)
    won_count: dict = defaultdict(int)
    for k, stage, cur, n, v in await repo.closed(period.start, period.end, owners, by):
        if stage == Stage.WON:
            won[k].append(Money(int(v), cur))
            won_count[k] += n
    pipeline: dict = defaultdict(lambda: defaultdict(int))
    for k, _stage, cur, _n, v in await repo.open_pipeline(owners, by):
        pipeline[k][cur] += int(v)
    keys = set(new) | set(won) | set(pipeline)
    interactions: dict = {}
    if by == "rep":
        rows = await repo.interactions_per_rep(period.start, period.end, owners)
        interactions = {uid: n for uid, _, n in rows}
        keys |= set(interactions)
        labels = await repo.user_names(keys)
    else:
        labels = {k: (k or NO_SOURCE) if by == "source" else STAGE_INFO[Stage(k)].label for k in keys}
    rows = [
        BreakdownRow(
            label=labels.get(k, str(k)),
            new_leads=new.get(k, 0),
            won_count=won_count.get(k, 0),
            won=tuple(sorted(won.get(k, []), key=lambda m: m.currency)),
            pipeline=tuple(Money(v, c) for c, v in sorted(pipeline.get(k, {}).items())),
            interactions=interactions.get(k, 0) if by == "rep" else None,
        )
        for k in keys
    ]
    if by == "stage":
        order = {info.label: i for i, info in enumerate(STAGE_INFO.values())}
        return tuple(sorted(rows, key=lambda r: order.get(r.label, 99)))
    return tuple(sorted(rows, key=lambda r: (-r.won_count, -r.new_leads, r.label)))


def _stage_figures(rows) -> tuple[StageFigure, ...]:
    per_stage: dict = defaultdict(lambda: [0, []])
    for _, stage, cur, n, v in rows:
        per_stage[stage][0] += n
        per_stage[stage][1].append(Money(int(v), cur))
    return tuple(
        StageFigure(stage, per_stage[stage.value][0], tuple(sorted(per_stage[stage.value][1], key=lambda m: m.currency)))
        for stage in OPEN_STAGES
        if stage.value in per_stage
    )


def _forecast(rows) -> tuple[Money, ...]:
    """Open value weighted by each stage's win probability, per currency (rounded down)."""
    weighted: dict[str, int] = defaultdict(int)
    for _, stage, cur, _n, v in rows:
        weighted[cur] += int(v) * STAGE_INFO[Stage(stage)].probability
    return tuple(Money(total // 100, cur) for cur, total in sorted(weighted.items()))


def _amounts(rows) -> tuple[Amount, ...]:
    return tuple(Amount(cur, int(n), int(v)) for cur, n, v in rows)


def _in_funnel_order(items) -> tuple[StageTime, ...]:
    order = {stage: i for i, stage in enumerate(OPEN_STAGES)}
    return tuple(sorted(items, key=lambda t: order[t.stage]))
