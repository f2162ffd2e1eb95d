"""Contacts and new leads: duplicate checks, creation, search, cards and edits.

Duplicates are looked for across ALL contacts (a lead already in another rep's pipeline must
be caught), but a match only reveals the contact's name, company and owner's name. Exact phone
and email matches use the indexed columns; similar names/companies are narrowed in SQL by word
fragments (`storage.repos.contacts.like_patterns`) and then scored with rapidfuzz.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.numbers import get_currency_name
from rapidfuzz import fuzz, utils

from handlers.access import acting_user, visible
from handlers.context import CRM, Actor
from handlers.errors import Duplicate, InvalidInput, NotFound
from handlers.tasks import MAX_TITLE, add_task, assignable_owner, require_aware
from handlers.values import MAX_NAME, Money, clean_text, normalize_email, normalize_phone
from storage.enums import Stage
from storage.models import Contact, Deal, Interaction, Task, User
from storage.uow import UnitOfWork

DUPLICATE_SCORE = 88  # token_sort_ratio at or above this reads as "the same name"
SEARCH_SCORE = 70  # WRatio cut-off for search results
MAX_DUPLICATES_SHOWN = 5
MAX_TAGS = 20
MAX_TAG = 40
CARD_INTERACTIONS = 5
PHONE_QUERY = re.compile(r"^\+?[\d\s().-]+$")
CONTACT_FIELDS = ("name", "company", "phone", "email", "source", "tags", "owner_id")


@dataclass(frozen=True)
class ContactMatch:
    """A possible duplicate. Outside the actor's scope `contact` is a redacted copy (name,
    company, owner), so a duplicate check never leaks another rep's phone numbers or emails."""

    contact: Contact
    owner_name: str
    reason: str  # "same phone", "same email", "similar name (92%)" ...


@dataclass(frozen=True)
class LeadCreated:
    contact: Contact
    deal: Deal
    task: Task | None


@dataclass(frozen=True)
class ContactCard:
    contact: Contact
    owner_name: str
    deals: list[Deal]
    open_tasks: list[Task]  # earliest first
    last_interactions: list[Interaction]  # newest first
    contract_ids: list[int]


# --- input rules ---------------------------------------------------------------------------


def optional_text(raw: str | None, what: str, limit: int, field: str) -> str | None:
    """Cleaned text or None when blank; too long is an error rather than silently cut."""
    text = clean_text(raw, limit=10 * limit + 10)
    if not text:
        return None
    if len(text) > limit:
        raise InvalidInput(f"The {what} is too long ({len(text)} characters; at most {limit}).", field=field)
    return text


def optional_phone(crm: CRM, raw: str | None) -> str | None:
    return normalize_phone(raw, crm.settings.phone_region) if clean_text(raw) else None


def optional_email(raw: str | None) -> str | None:
    return normalize_email(raw) if clean_text(raw) else None


def lead_source(crm: CRM, raw: str | None) -> str | None:
    text = clean_text(raw, 64).lower()
    if not text:
        return None
    allowed = crm.settings.lead_sources
    if text not in allowed:
        raise InvalidInput(
            f"“{text}” is not a lead source. Pick one of: {', '.join(allowed)}.", field="source"
        )
    return text


def deal_value(crm: CRM, value: Money | None) -> Money:
    """The deal's value: 0 in the team currency by default; never negative, a real ISO code."""
    if value is None:
        return Money(0, crm.settings.currency)
    code = (value.currency or "").strip().upper()
    if len(code) != 3 or get_currency_name(code) == code:
        raise InvalidInput(
            f"“{clean_text(value.currency, 10)}” is not a currency. Use a code like USD or AED.",
            field="value",
        )
    if not isinstance(value.minor, int) or value.minor < 0:
        raise InvalidInput("The deal value cannot be negative. Try 5000 or 0.", field="value")
    return Money(value.minor, code)


def clean_tags(tags) -> list[str]:
    """Tags as typed (leading # dropped), duplicates removed ignoring case, at most 20."""
    seen, kept = set(), []
    for raw in tags or ():
        tag = clean_text(str(raw), MAX_TAG).lstrip("#").strip()
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            kept.append(tag)
    if len(kept) > MAX_TAGS:
        raise InvalidInput(f"At most {MAX_TAGS} tags, please (you gave {len(kept)}).", field="tags")
    return kept


def contact_label(contact: Contact) -> str:
    """"Name (Company)", or whichever of the two is set."""
    if contact.name and contact.company:
        return f"{contact.name} ({contact.company})"
    return contact.name or contact.company or f"Contact #{contact.id}"


# --- shared look-ups ---------------------------------------------------------------------------


async def visible_contact(uow: UnitOfWork, user: User, contact_id: int) -> Contact:
    """A live contact the user may see, or NotFound."""
    contact = await visible(uow, uow.contacts, contact_id, user, "contact")
    if contact.deleted_at is not None:
        raise NotFound(f"No contact #{contact_id} that you can see.")
    return contact


async def user_names(uow: UnitOfWork, ids) -> dict[int, str]:
    names = {}
    for uid in set(ids):
        user = await uow.users.get(uid)
        names[uid] = user.display_name if user else "someone"
    return names


def _similarity(a: str | None, b: str | None) -> int:
    if not a or not b:
        return 0
    return round(fuzz.token_sort_ratio(a, b, processor=utils.default_process))


def redacted(contact: Contact) -> Contact:
    """A detached copy carrying only what any rep may learn about someone else's contact."""
    return Contact(id=contact.id, name=contact.name, company=contact.company,
                   owner_id=contact.owner_id, tags=[], created_at=contact.created_at)


async def _duplicates(
    uow: UnitOfWork, user: User, *, name: str | None, company: str | None, phone: str | None,
    email: str | None, exclude_id: int | None,
) -> list[ContactMatch]:
    """Matches for already-normalised values, strongest first. Contacts outside the user's
    scope come back redacted (name, company and owner only)."""
    reasons: dict[int, list[str]] = {}
    rank: dict[int, tuple[int, int]] = {}  # (exact matches, best similarity)
    found: dict[int, Contact] = {}
    for c in await uow.contacts.with_phone_or_email(phone=phone, email=email, exclude_id=exclude_id):
        found[c.id] = c
        why = [w for w, same in (("same phone", phone and c.phone == phone),
                                 ("same email", email and c.email == email)) if same]
        reasons[c.id] = why
        rank[c.id] = (len(why), 0)
    for field, text in (("name", name), ("company", company)):
        if not text:
            continue
        for c in await uow.contacts.fuzzy_candidates(text, exclude_id=exclude_id):
            score = _similarity(text, getattr(c, field))
            if score >= DUPLICATE_SCORE:
                found[c.id] = c
                reasons.setdefault(c.id, []).append(f"similar {field} ({score}%)")
                exact, best = rank.get(c.id, (0, 0))
                rank[c.id] = (exact, max(best, score))
    ordered = sorted(found, key=lambda cid: (rank[cid], cid), reverse=True)[:MAX_DUPLICATES_SHOWN]
    owners = await user_names(uow, (found[cid].owner_id for cid in ordered))
    scope = await uow.users.visible_owner_ids(user)
    return [
        ContactMatch(
            found[cid] if scope is None or found[cid].owner_id in scope else redacted(found[cid]),
            owners[found[cid].owner_id],
            ", ".join(reasons[cid]),
        )
        for cid in ordered
    ]


async def find_duplicates(
    crm: CRM,
    actor: Actor,
    *,
    name: str | None = None,
    company: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    exclude_id: int | None = None,
) -> list[ContactMatch]:
    """Existing contacts (anyone's) that look like this one: same phone, same email, or a name
    or company at least 88% similar. Raises InvalidInput for a malformed phone or email."""
    phone_e164, email_norm = optional_phone(crm, phone), optional_email(email)
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        matches = await _duplicates(
            uow, user, name=clean_text(name, MAX_NAME) or None, company=clean_text(company, MAX_NAME) or None,
            phone=phone_e164, email=email_norm, exclude_id=exclude_id,
        )
        return matches


def duplicate_message(matches: list[ContactMatch]) -> str:
    first = matches[0]
    more = f" (and {len(matches) - 1} more)" if len(matches) > 1 else ""
    return (
        f"This looks like {contact_label(first.contact)}, owned by {first.owner_name}: "
        f"{first.reason}{more}. Add the deal to that contact, or save a new contact anyway."
    )


# --- use cases -----------------------------------------------------------------------------


async def create_lead(
    crm: CRM,
    actor: Actor,
    *,
    name: str | None = None,
    company: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    source: str | None = None,
    value: Money | None = None,
    title: str | None = None,
    tags=(),
    next_step_at: datetime | None = None,
    next_step: str | None = None,
    owner_id: int | None = None,
    existing_contact_id: int | None = None,
    allow_duplicate: bool = False,
) -> LeadCreated:
    """A new deal (stage "new") for a new contact, or for `existing_contact_id`, plus the next
    step as a task when `next_step_at` is given. Raises Duplicate when the contact looks like an
    existing one (unless `allow_duplicate`)."""
    clean_name = optional_text(name, "name", MAX_NAME, "name")
    clean_company = optional_text(company, "company", MAX_NAME, "company")
    if existing_contact_id is None and not (clean_name or clean_company):
        raise InvalidInput(
            "Give me a name or a company for the lead, e.g. “Rana Haddad” or “Acme Trading”.",
            field="name",
        )
    phone_e164, email_norm = optional_phone(crm, phone), optional_email(email)
    clean_source = lead_source(crm, source)
    money = deal_value(crm, value)
    deal_title = optional_text(title, "deal title", MAX_NAME, "title")
    clean_tag_list = clean_tags(tags)
    step = optional_text(next_step, "next step", MAX_TITLE, "next_step")
    if step and next_step_at is None:
        raise InvalidInput("When is the next step? e.g. tomorrow 10:00.", field="next_step_at")
    if next_step_at is not None:
        require_aware(next_step_at, "next_step_at")

    async with crm.uow(actor, action="create_lead") as uow:
        user = await acting_user(uow, actor)
        owner = await assignable_owner(uow, user, owner_id)
        if existing_contact_id is not None:
            contact = await visible_contact(uow, user, existing_contact_id)
        else:
            if not allow_duplicate:
                matches = await _duplicates(
                    uow, user, name=clean_name, company=clean_company, phone=phone_e164,
                    email=email_norm, exclude_id=None,
                )
                if matches:
                    uow.session.expunge_all()  # the candidates must outlive the rollback
                    raise Duplicate(duplicate_message(matches), matches)
            contact = uow.contacts.add(
                Contact(
                    name=clean_name, company=clean_company, phone=phone_e164, email=email_norm,
                    source=clean_source, tags=clean_tag_list, owner_id=owner,
                    created_at=uow.now, last_touched_at=uow.now,
                )
            )
            await uow.audit.created(contact)
        label = contact_label(contact)
        deal = uow.deals.add(
            Deal(
                contact_id=contact.id, title=deal_title or label[:MAX_NAME], value_minor=money.minor,
                currency=money.currency, stage=Stage.NEW.value, owner_id=owner,
                source=clean_source or contact.source, created_at=uow.now,
                stage_changed_at=uow.now, last_touched_at=uow.now,
            )
        )
        await uow.audit.created(deal)
        await uow.deals.record_stage_change(deal, None, Stage.NEW.value, user.id, uow.now)
        task = None
        if next_step_at is not None:
            task = await add_task(
                uow, title=step or f"Follow up with {contact.name or contact.company}",
                due_at=next_step_at, owner_id=owner, created_by_id=user.id,
                contact_id=contact.id, deal_id=deal.id,
            )
        uow.emit("lead_created", contact_id=contact.id, deal_id=deal.id, owner_id=owner)
        await uow.commit()
        return LeadCreated(contact=contact, deal=deal, task=task)


def _phone_digits(crm: CRM, query: str) -> str | None:
    """Digits to match phones on: the full E.164 number when `query` is one, else its digits."""
    if not PHONE_QUERY.match(query):
        return None
    digits = re.sub(r"\D", "", query)
    if len(digits) < 4:
        return None
    try:
        return normalize_phone(query, crm.settings.phone_region).lstrip("+")
    except InvalidInput:
        return digits


async def search_contacts(crm: CRM, actor: Actor, query: str, limit: int = 10) -> list[Contact]:
    """Visible contacts matching a name/company (fuzzy), a phone (full or last 4+ digits) or an
    email (full or its beginning), best first."""
    text = clean_text(query, MAX_NAME)
    if not text:
        raise InvalidInput(
            "Type a name, company, phone or email to search, e.g. “Rana” or “4567”.", field="query"
        )
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        scope = await uow.users.visible_owner_ids(user)
        digits = _phone_digits(crm, text)
        if digits:
            found = await uow.contacts.by_phone_ending(digits, owner_ids=scope, limit=limit)
        elif "@" in text:
            found = await uow.contacts.by_email_start(text.lower(), owner_ids=scope, limit=limit)
        else:
            candidates = await uow.contacts.fuzzy_candidates(text, owner_ids=scope)
            found = rank_by_name(text, candidates, limit)
    return found


def rank_by_name(text: str, contacts: list[Contact], limit: int) -> list[Contact]:
    """Contacts whose name or company resembles `text` (WRatio >= 70), best first."""
    scored = []
    for c in contacts:
        score = max(
            fuzz.WRatio(text, c.name or "", processor=utils.default_process),
            fuzz.WRatio(text, c.company or "", processor=utils.default_process),
        )
        if score >= SEARCH_SCORE:
            scored.append((score, c.id, c))
    scored.sort(key=lambda item: item[:2], reverse=True)
    return [c for _, _, c in scored[:limit]]


async def recent_contacts(crm: CRM, actor: Actor, limit: int = 8) -> list[Contact]:
    """Visible contacts, most recently touched or created first."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        scope = await uow.users.visible_owner_ids(user)
        contacts = await uow.contacts.recent(owner_ids=scope, limit=limit)
        return contacts


async def get_contact(crm: CRM, actor: Actor, contact_id: int) -> Contact:
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        contact = await visible_contact(uow, user, contact_id)
        return contact


async def contact_card(crm: CRM, actor: Actor, contact_id: int) -> ContactCard:
    """Everything a rep needs on one screen; deals and tasks limited to the actor's scope."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        contact = await visible_contact(uow, user, contact_id)
        scope = await uow.users.visible_owner_ids(user)

        def in_scope(row) -> bool:
            return scope is None or row.owner_id in scope

        deals = [d for d in await uow.deals.of_contact(contact.id) if in_scope(d)]
        tasks = [t for t in await uow.tasks.open_of_contact(contact.id) if in_scope(t)]
        interactions = await uow.interactions.history(contact.id, limit=CARD_INTERACTIONS)
        deal_ids = {d.id for d in deals}
        contracts = [
            cid for cid, did in await uow.contacts.contracts_of(contact.id) if did in deal_ids
        ]
        owners = await user_names(uow, [contact.owner_id])
    return ContactCard(
        contact=contact, owner_name=owners[contact.owner_id], deals=deals, open_tasks=tasks,
        last_interactions=interactions, contract_ids=contracts,
    )


async def update_contact(
    crm: CRM, actor: Actor, contact_id: int, *, allow_duplicate: bool = False, **changes: Any
) -> Contact:
    """Change some of name, company, phone, email, source, tags, owner_id (each audited).
    A new phone, email or name that matches another contact raises Duplicate unless allowed."""
    unknown = sorted(set(changes) - set(CONTACT_FIELDS))
    if unknown:
        raise InvalidInput(
            f"I can't change {', '.join(unknown)} on a contact. You can change: "
            f"{', '.join(CONTACT_FIELDS)}.", field=unknown[0],
        )
    cleaned: dict[str, Any] = {}
    for key, raw in changes.items():
        if key in ("name", "company"):
            cleaned[key] = optional_text(raw, key, MAX_NAME, key)
        elif key == "phone":
            cleaned[key] = optional_phone(crm, raw)
        elif key == "email":
            cleaned[key] = optional_email(raw)
        elif key == "source":
            cleaned[key] = lead_source(crm, raw)
        elif key == "tags":
            cleaned[key] = clean_tags(raw)
        else:
            cleaned[key] = raw

    async with crm.uow(actor, action="update_contact") as uow:
        user = await acting_user(uow, actor)
        contact = await visible_contact(uow, user, contact_id)
        if "owner_id" in cleaned:
            cleaned["owner_id"] = await assignable_owner(uow, user, cleaned["owner_id"])
        name = cleaned.get("name", contact.name)
        company = cleaned.get("company", contact.company)
        if not (name or company):
            raise InvalidInput(
                "A contact needs a name or a company, e.g. “Rana Haddad”.", field="name"
            )
        changed = {k: v for k, v in cleaned.items() if getattr(contact, k) != v}
        if not allow_duplicate and changed.keys() & {"name", "company", "phone", "email"}:
            matches = await _duplicates(
                uow, user, name=changed.get("name"), company=changed.get("company"),
                phone=changed.get("phone"), email=changed.get("email"), exclude_id=contact.id,
            )
            if matches:
                uow.session.expunge_all()  # the candidates must outlive the rollback
                raise Duplicate(duplicate_message(matches), matches)
        for key, value in changed.items():
            uow.audit.set(contact, key, value)
        await uow.commit()
        return contact
