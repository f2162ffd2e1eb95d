"""Interactions: log a call, meeting, note or file against a contact, and read the history."""
from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from handlers.access import acting_user, visible
from handlers.context import CRM, Actor
from handlers.contacts import optional_text, visible_contact
from handlers.errors import InvalidInput, NotFound
from handlers.tasks import MAX_TITLE, add_task, require_aware
from handlers.values import MAX_TEXT, clean_text, require_text
from storage.enums import InteractionKind
from storage.models import Interaction

FUTURE_SLACK = timedelta(minutes=5)  # phones' clocks drift; a little "future" is fine
MAX_DURATION_MINUTES = 24 * 60
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
MAX_OUTCOME = 500
UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def parse_kind(value: InteractionKind | str) -> InteractionKind:
    try:
        return InteractionKind(clean_text(str(value), 32).lower())
    except ValueError:
        names = ", ".join(k.value for k in InteractionKind)
        raise InvalidInput(
            f"“{clean_text(str(value), 32)}” is not a kind of interaction. Pick one of: {names}.",
            field="kind",
        ) from None


def safe_file_name(original: str) -> str:
    """A name safe on every file system: unique prefix + the original's harmless characters."""
    stem = UNSAFE_CHARS.sub("_", original).strip("._")[-80:] or "file"
    return f"{uuid.uuid4().hex[:12]}-{stem}"


def _check_duration(minutes: int | None) -> int | None:
    if minutes is None:
        return None
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= MAX_DURATION_MINUTES:
        raise InvalidInput(
            "The duration is in minutes, between 1 and 1440, e.g. 15.", field="duration_minutes"
        )
    return minutes


def _check_attachment(path: Path | None) -> tuple[Path, int] | None:
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise InvalidInput("I could not read that file. Please send it again.", field="attachment")
    size = path.stat().st_size
    if size > MAX_ATTACHMENT_BYTES:
        raise InvalidInput(
            f"That file is too big ({size // (1024 * 1024)} MB; at most "
            f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB).", field="attachment",
        )
    return path, size


async def log_interaction(
    crm: CRM,
    actor: Actor,
    *,
    contact_id: int,
    kind: InteractionKind | str,
    summary: str,
    outcome: str | None = None,
    duration_minutes: int | None = None,
    occurred_at: datetime | None = None,
    deal_id: int | None = None,
    attachment_path: Path | None = None,
    attachment_name: str | None = None,
    follow_up_at: datetime | None = None,
    follow_up_title: str | None = None,
) -> Interaction:
    """Record what happened with a contact (and optionally one of its deals), touching both.
    An attachment is copied under `data_dir/attachments/<contact_id>/`; `follow_up_at` adds a
    task in the same transaction."""
    kind_ = parse_kind(kind)
    text = require_text(summary, "summary", MAX_TEXT, field="summary")
    outcome_ = optional_text(outcome, "outcome", MAX_OUTCOME, "outcome")
    duration = _check_duration(duration_minutes)
    if occurred_at is not None:
        require_aware(occurred_at, "occurred_at")
    if follow_up_at is not None:
        require_aware(follow_up_at, "follow_up_at")
    follow_title = optional_text(follow_up_title, "follow-up", MAX_TITLE, "follow_up_title")
    attachment = _check_attachment(attachment_path)
    copied: Path | None = None

    try:
        async with crm.uow(actor, action="log_interaction") as uow:
            when = occurred_at or uow.now
            if when > uow.now + FUTURE_SLACK:
                raise InvalidInput(
                    "That time is in the future. Log what already happened, e.g. “today 10:30”, "
                    "or add a follow-up instead.", field="occurred_at",
                )
            user = await acting_user(uow, actor)
            contact = await visible_contact(uow, user, contact_id)
            deal = None
            if deal_id is not None:
                deal = await visible(uow, uow.deals, deal_id, user, "deal")
                if deal.contact_id != contact.id:
                    raise InvalidInput("That deal belongs to a different contact.", field="deal_id")
            name = size = None
            if attachment is not None:
                source, size = attachment
                name = clean_text(attachment_name, 255) or source.name
                folder = Path(crm.settings.data_dir) / "attachments" / str(contact.id)
                copied = folder.resolve() / safe_file_name(name)
                await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
                await asyncio.to_thread(shutil.copyfile, source, copied)
            interaction = uow.interactions.add(
                Interaction(
                    contact_id=contact.id, deal_id=deal.id if deal else None, kind=kind_.value,
                    summary=text, outcome=outcome_, duration_minutes=duration, occurred_at=when,
                    logged_by_id=user.id, attachment_path=str(copied) if copied else None,
                    attachment_name=name, attachment_size=size, created_at=uow.now,
                )
            )
            await uow.audit.created(interaction)
            # Only forward: logging an old call must not make a fresh lead look neglected.
            if contact.last_touched_at is None or when > contact.last_touched_at:
                uow.audit.set(contact, "last_touched_at", when)
            if deal is not None and when > deal.last_touched_at:
                uow.audit.set(deal, "last_touched_at", when)
            if follow_up_at is not None:
                await add_task(
                    uow, title=follow_title or f"Follow up with {contact.name or contact.company}",
                    due_at=follow_up_at, owner_id=user.id, created_by_id=user.id,
                    contact_id=contact.id, deal_id=deal.id if deal else None,
                )
            await uow.commit()
            return interaction
    except BaseException:
        if copied is not None:  # the row did not land, so neither may its file
            copied.unlink(missing_ok=True)
        raise


async def history(
    crm: CRM, actor: Actor, contact_id: int, *, limit: int = 20, before_id: int | None = None
) -> list[Interaction]:
    """The contact's interactions, newest first; `before_id` pages on from that entry."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        contact = await visible_contact(uow, user, contact_id)
        before = None
        if before_id is not None:
            before = await uow.interactions.get(before_id)
            if before is None or before.contact_id != contact.id:
                raise NotFound(f"No history entry #{before_id} for this contact.")
        entries = await uow.interactions.history(contact.id, limit=limit, before=before)
        return entries
