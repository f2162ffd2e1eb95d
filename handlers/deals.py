"""Deals: list, move through the pipeline, edit, the pipeline board and a deal's next step."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from rapidfuzz import fuzz, utils

from handlers.access import acting_user, visible
from handlers.context import CRM, Actor
from handlers.contacts import deal_value, lead_source, optional_text
from handlers.errors import Conflict, InvalidInput
from handlers.tasks import assignable_owner
from handlers.values import MAX_NAME, Money, clean_text
from storage.enums import CLOSED_STAGES, OPEN_STAGES, PIPELINE, STAGE_INFO, Stage
from storage.models import Deal, Task
from storage.repos.contacts import FUZZY_CANDIDATES

SEARCH_SCORE = 70
MAX_LOST_REASON = 500
DEAL_FIELDS = ("title", "value", "expected_close", "source", "owner_id")


@dataclass(frozen=True)
class StageSummary:
    stage: Stage
    label: str
    count: int
    value: dict[str, int] = field(default_factory=dict)  # currency -> minor units, never mixed


@dataclass(frozen=True)
class PipelineView:
    stages: list[StageSummary]  # every open stage in pipeline order, empty ones included
    stalled: list[Deal]  # open deals untouched longer than their stage allows, oldest first

    @property
    def totals(self) -> dict[str, int]:
        """Open pipeline value per currency."""
        out: dict[str, int] = {}
        for s in self.stages:
            for currency, minor in s.value.items():
                out[currency] = out.get(currency, 0) + minor
        return out


def parse_stage(value: Stage | str) -> Stage:
    try:
        return Stage(clean_text(str(value), 32).lower())
    except ValueError:
        names = ", ".join(s.value for s in Stage)
        raise InvalidInput(
            f"“{clean_text(str(value), 32)}” is not a stage. Pick one of: {names}.", field="stage"
        ) from None


async def list_deals(
    crm: CRM,
    actor: Actor,
    *,
    open_only: bool = True,
    contact_id: int | None = None,
    query: str | None = None,
    stage: Stage | str | None = None,
    limit: int = 20,
) -> list[Deal]:
    """Visible deals, most recently touched first, or best match first with `query` (title or
    contact name/company, fuzzy). A given `stage` wins over `open_only`."""
    wanted = parse_stage(stage) if stage is not None else None
    text = clean_text(query, MAX_NAME) if query else ""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        scope = await uow.users.visible_owner_ids(user)
        deals = await uow.deals.find(
            owner_ids=scope, open_only=open_only and wanted is None, contact_id=contact_id,
            stage=wanted.value if wanted else None, text=text or None,
            limit=FUZZY_CANDIDATES if text else limit,
        )
        labels = await uow.deals.contact_labels({d.contact_id for d in deals}) if text else {}
    if not text:
        return deals
    scored = []
    for d in deals:
        score = max(
            fuzz.WRatio(text, d.title, processor=utils.default_process),
            fuzz.WRatio(text, labels.get(d.contact_id, ""), processor=utils.default_process),
        )
        if score >= SEARCH_SCORE:
            scored.append((score, d.last_touched_at, d.id, d))
    scored.sort(key=lambda item: item[:3], reverse=True)
    return [d for *_, d in scored[:limit]]


async def get_deal(crm: CRM, actor: Actor, deal_id: int) -> Deal:
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        deal = await visible(uow, uow.deals, deal_id, user, "deal")
        return deal


async def move_deal(
    crm: CRM, actor: Actor, deal_id: int, stage: Stage | str, *, lost_reason: str | None = None
) -> Deal:
    """Move a deal to `stage`, recording who/when/from/to. Lost needs a reason; won/lost set
    closed_at, reopening clears it."""
    target = parse_stage(stage)
    reason = optional_text(lost_reason, "lost reason", MAX_LOST_REASON, "lost_reason")
    if target == Stage.LOST and not reason:
        raise InvalidInput(
            "Why was it lost? e.g. “price too high” or “went with a competitor”.",
            field="lost_reason",
        )
    async with crm.uow(actor, action="move_deal") as uow:
        user = await acting_user(uow, actor)
        deal = await visible(uow, uow.deals, deal_id, user, "deal")
        before = Stage(deal.stage)
        if before == target:
            raise Conflict(f"“{deal.title}” is already in {STAGE_INFO[target].label}.")
        if before == Stage.WON and await uow.deals.has_contract(deal.id):
            raise Conflict(
                f"“{deal.title}” has a contract, so it stays won. Void the contract's payments "
                "and contract first."
            )
        uow.audit.set(deal, "stage", target.value)
        uow.audit.set(deal, "stage_changed_at", uow.now)
        uow.audit.set(deal, "last_touched_at", max(deal.last_touched_at, uow.now))
        uow.audit.set(deal, "closed_at", uow.now if target in CLOSED_STAGES else None)
        uow.audit.set(deal, "lost_reason", reason if target == Stage.LOST else None)
        await uow.deals.record_stage_change(deal, before.value, target.value, user.id, uow.now)
        uow.emit("deal_moved", deal_id=deal.id, from_stage=before.value, to_stage=target.value)
        if target == Stage.WON:
            uow.emit("deal_won", deal_id=deal.id)
        elif target == Stage.LOST:
            uow.emit("deal_lost", deal_id=deal.id)
        await uow.commit()
        return deal


async def update_deal(crm: CRM, actor: Actor, deal_id: int, **changes: Any) -> Deal:
    """Change some of title, value (Money), expected_close (date), source, owner_id; audited."""
    unknown = sorted(set(changes) - set(DEAL_FIELDS))
    if unknown:
        raise InvalidInput(
            f"I can't change {', '.join(unknown)} on a deal. You can change: "
            f"{', '.join(DEAL_FIELDS)}.", field=unknown[0],
        )
    cleaned: dict[str, Any] = {}
    if "title" in changes:
        title = optional_text(changes["title"], "deal title", MAX_NAME, "title")
        if not title:
            raise InvalidInput("The deal title cannot be empty, e.g. “Website redesign”.", field="title")
        cleaned["title"] = title
    if "value" in changes:
        if not isinstance(changes["value"], Money):
            raise InvalidInput("Give the value as an amount, e.g. 5000 USD.", field="value")
        money = deal_value(crm, changes["value"])
        cleaned["value_minor"], cleaned["currency"] = money.minor, money.currency
    if "expected_close" in changes:
        close = changes["expected_close"]
        if close is not None and (not isinstance(close, date) or isinstance(close, datetime)):
            raise InvalidInput("Give the expected close as a date, e.g. 2027-01-31.", field="expected_close")
        cleaned["expected_close"] = close
    if "source" in changes:
        cleaned["source"] = lead_source(crm, changes["source"])

    async with crm.uow(actor, action="update_deal") as uow:
        user = await acting_user(uow, actor)
        deal = await visible(uow, uow.deals, deal_id, user, "deal")
        if "owner_id" in changes:
            cleaned["owner_id"] = await assignable_owner(uow, user, changes["owner_id"])
        for key, value in cleaned.items():
            uow.audit.set(deal, key, value)
        await uow.commit()
        return deal


async def pipeline(
    crm: CRM, actor: Actor, *, stalled_after_days: dict[Stage | str, int] | None = None
) -> PipelineView:
    """Open deals per stage (count, value per currency; summed in SQL) and the stalled ones,
    for the actor's scope: a rep their own, a manager their team's, an admin everyone's."""
    thresholds = {info.stage: info.neglect_days for info in PIPELINE if info.neglect_days is not None}
    for key, days in (stalled_after_days or {}).items():
        thresholds[parse_stage(key)] = days
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        scope = await uow.users.visible_owner_ids(user)
        totals = await uow.deals.stage_totals(owner_ids=scope)
        cutoffs = {
            stage.value: uow.now - timedelta(days=days)
            for stage, days in thresholds.items()
            if stage in OPEN_STAGES
        }
        stalled = await uow.deals.untouched_since(cutoffs, owner_ids=scope)
    stages = []
    for stage in OPEN_STAGES:
        rows = [t for t in totals if t.stage == stage.value]
        stages.append(
            StageSummary(
                stage=stage, label=STAGE_INFO[stage].label, count=sum(t.count for t in rows),
                value={t.currency: t.value_minor for t in rows},
            )
        )
    return PipelineView(stages=stages, stalled=stalled)


async def next_step(crm: CRM, actor: Actor, deal_id: int) -> Task | None:
    """The deal's earliest open task, if any."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        deal = await visible(uow, uow.deals, deal_id, user, "deal")
        tasks = await uow.tasks.open_of_deal(deal.id)
        return tasks[0] if tasks else None
