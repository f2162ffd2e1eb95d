"""The CRM's fixed vocabularies, each defined in exactly one place."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"


class Stage(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class StageInfo:
    stage: Stage
    label: str
    probability: int  # percent, for the weighted forecast
    neglect_days: int | None  # default "no touch for longer than this" threshold; None = closed


PIPELINE: tuple[StageInfo, ...] = (
    StageInfo(Stage.NEW, "New", 10, 1),
    StageInfo(Stage.CONTACTED, "Contacted", 25, 3),
    StageInfo(Stage.PROPOSAL, "Proposal", 50, 5),
    StageInfo(Stage.NEGOTIATION, "Negotiation", 75, 7),
    StageInfo(Stage.WON, "Won", 100, None),
    StageInfo(Stage.LOST, "Lost", 0, None),
)
STAGE_INFO: dict[Stage, StageInfo] = {info.stage: info for info in PIPELINE}
OPEN_STAGES: tuple[Stage, ...] = tuple(i.stage for i in PIPELINE if i.neglect_days is not None)
CLOSED_STAGES: tuple[Stage, ...] = (Stage.WON, Stage.LOST)


def stage_order(stage: str) -> int:
    return [i.stage for i in PIPELINE].index(Stage(stage))


class InteractionKind(StrEnum):
    CALL = "call"
    MESSAGE = "message"
    MEETING = "meeting"
    EMAIL = "email"
    NOTE = "note"
    QUOTE = "quote"
    FILE = "file"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class InstallmentStatus(StrEnum):
    OPEN = "open"
    PARTIAL = "partially_paid"
    PAID = "paid"
    OVERDUE = "overdue"  # derived for display: open/partial past its due date
    VOID = "void"


class Frequency(StrEnum):
    MONTHLY = "monthly"
    WEEKLY = "weekly"
    EVERY_N_DAYS = "every_n_days"
    EXPLICIT = "explicit"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # unreachable (blocked the bot) or retried too often
