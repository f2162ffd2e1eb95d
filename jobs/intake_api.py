"""Lead intake for website forms: `POST /api/leads` (JSON).

- Auth: `Authorization: Bearer <CRM_API_KEY>` or `X-Api-Key: <CRM_API_KEY>`.
- `Idempotency-Key` header: a retried request gets the first answer back (same status and
  body, plus `Idempotent-Replayed: true`) and creates nothing twice.
- Creates the contact (or reuses one with the same phone or email) and a new deal; the owner
  is the existing contact's owner, else the next active rep by round robin. The
  `lead_created` event makes the alert hook tell the owner and the team channels.
- Errors are JSON: 401 bad key, 400 not JSON, 422 with `fields` naming each bad input.

Example: curl -H 'X-Api-Key: ...' -d '{"name": "Rana Haddad", "phone": "+971501234567"}' \
         http://localhost:8080/api/leads
"""

from __future__ import annotations

import hmac
import json
from decimal import Decimal, InvalidOperation

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from handlers.context import CRM
from handlers.contacts import (
    contact_label,
    deal_value,
    lead_source,
    optional_email,
    optional_phone,
    optional_text,
)
from handlers.errors import DomainError, InvalidInput
from handlers.values import MAX_NAME, MAX_TEXT, Money, to_minor
from storage.enums import InteractionKind, Role, Stage
from storage.models import Contact, Deal, Interaction
from storage.repos.jobs import IdempotencyRepository, IntakeRepository
from storage.uow import UnitOfWork

ACTION = "intake_lead"
MAX_IDEMPOTENCY_KEY = 128
DEFAULT_SOURCE = "website"
EXAMPLE = {"name": "Rana Haddad", "phone": "+971 50 123 4567", "email": "rana@example.com"}
CRM_KEY = web.AppKey("crm", CRM)


def build_intake_app(crm: CRM) -> web.Application:
    """The aiohttp application serving `POST /api/leads`; run it with `web.AppRunner`."""
    app = web.Application(client_max_size=64 * 1024)
    app[CRM_KEY] = crm
    app.router.add_post("/api/leads", post_lead)
    return app


def error(status: int, message: str, **extra) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def authorized(request: web.Request, crm: CRM) -> bool:
    expected = crm.settings.api_key.get_secret_value().encode()
    auth = request.headers.get("Authorization", "")
    given = (
        auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("X-Api-Key", "")
    )
    return bool(given) and hmac.compare_digest(given.encode(), expected)


async def post_lead(request: web.Request) -> web.Response:
    crm = request.app[CRM_KEY]
    if crm.settings.api_key is None:
        return error(503, "Lead intake is off: set CRM_API_KEY to turn it on.")
    if not authorized(request, crm):
        return error(401, "Missing or wrong API key. Send 'Authorization: Bearer <CRM_API_KEY>'.")
    idem_key = request.headers.get("Idempotency-Key", "").strip() or None
    if idem_key and len(idem_key) > MAX_IDEMPOTENCY_KEY:
        return error(400, f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters.")
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "The body is not valid JSON.", example=EXAMPLE)
    if not isinstance(body, dict):
        return error(400, "The body must be a JSON object.", example=EXAMPLE)
    if idem_key and (stored := await _stored_answer(crm, idem_key)):
        return stored
    try:
        lead = validate(crm, body)
    except InvalidFields as bad:
        return error(422, "Some fields need fixing.", fields=bad.fields, example=EXAMPLE)
    try:
        status, answer = await create_intake_lead(crm, lead, idem_key)
    except IntegrityError:  # the same key raced in from a parallel retry: it won, replay it
        if idem_key and (stored := await _stored_answer(crm, idem_key)):
            return stored
        raise
    except NoOwner as err:
        return error(503, str(err))
    return web.json_response(answer, status=status)


async def _stored_answer(crm: CRM, key: str) -> web.Response | None:
    async with crm.reader() as uow:
        record = await IdempotencyRepository(uow.session).get(key)
        if record is None:
            return None
        return web.json_response(
            record.response["body"],
            status=record.response["status"],
            headers={"Idempotent-Replayed": "true"},
        )


class InvalidFields(Exception):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(fields)
        self.fields = fields


class NoOwner(Exception):
    pass


def validate(crm: CRM, body: dict) -> dict:
    """Clean the form's fields with the same rules as the chat flows; every problem at once."""
    fields: dict[str, str] = {}
    lead: dict = {}

    def take(name: str, rule) -> None:
        raw = body.get(name)
        if raw is not None and not isinstance(raw, (str, int, float)):
            fields[name] = f"“{name}” must be text."
            return
        try:
            lead[name] = rule(None if raw is None else str(raw))
        except DomainError as err:
            fields[name] = str(err)

    take("name", lambda v: optional_text(v, "name", MAX_NAME, "name"))
    take("company", lambda v: optional_text(v, "company", MAX_NAME, "company"))
    take("phone", lambda v: optional_phone(crm, v))
    take("email", optional_email)
    take("title", lambda v: optional_text(v, "deal title", MAX_NAME, "title"))
    take("message", lambda v: optional_text(v, "message", MAX_TEXT, "message"))
    take("source", lambda v: lead_source(crm, v) or _default_source(crm))
    if (
        "name" not in fields
        and "company" not in fields
        and not (lead.get("name") or lead.get("company"))
    ):
        fields["name"] = "Give a name or a company, e.g. “Rana Haddad”."
    if (
        "phone" not in fields
        and "email" not in fields
        and not (lead.get("phone") or lead.get("email"))
    ):
        fields["phone"] = (
            "Give a phone or an email so the rep can reach them, e.g. +971 50 123 4567."
        )
    try:
        lead["value"] = _value(crm, body.get("value"), body.get("currency"))
    except DomainError as err:
        fields["value"] = str(err)
    if fields:
        raise InvalidFields(fields)
    return lead


def _default_source(crm: CRM) -> str | None:
    return DEFAULT_SOURCE if DEFAULT_SOURCE in crm.settings.lead_sources else None


def _value(crm: CRM, raw, currency) -> Money:
    """The deal value from the form (`"12500"`, `12500.5`, `"12,500"`), in its currency."""
    checked = deal_value(crm, Money(0, str(currency or crm.settings.currency)))  # a real ISO code
    if raw is None or raw == "":
        return checked
    try:
        amount = Decimal(str(raw).replace(",", ""))
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise InvalidInput(
            f"“{str(raw)[:20]}” is not an amount. Try 5000 or 1250.50.", field="value"
        )
    return deal_value(crm, Money(to_minor(amount, checked.currency), checked.currency))


async def create_intake_lead(crm: CRM, lead: dict, idem_key: str | None) -> tuple[int, dict]:
    """Create (or reuse) the contact and a new deal; store the answer under `idem_key`."""
    async with crm.uow(action=ACTION) as uow:
        if idem_key and (record := await IdempotencyRepository(uow.session).get(idem_key)):
            return record.response["status"], record.response["body"]  # lost a race on SQLite
        matches = await uow.contacts.with_phone_or_email(phone=lead["phone"], email=lead["email"])
        contact = matches[0] if matches else None
        owner = await _owner_for(uow, contact)
        if contact is None:
            contact = uow.contacts.add(
                Contact(
                    name=lead["name"],
                    company=lead["company"],
                    phone=lead["phone"],
                    email=lead["email"],
                    source=lead["source"],
                    tags=[],
                    owner_id=owner.id,
                    created_at=uow.now,
                    last_touched_at=uow.now,
                )
            )
            await uow.audit.created(contact)
        deal = uow.deals.add(
            Deal(
                contact_id=contact.id,
                title=lead["title"] or contact_label(contact),
                value_minor=lead["value"].minor,
                currency=lead["value"].currency,
                stage=Stage.NEW.value,
                owner_id=owner.id,
                source=lead["source"],
                created_at=uow.now,
                stage_changed_at=uow.now,
                last_touched_at=uow.now,
            )
        )
        await uow.audit.created(deal)
        await uow.deals.record_stage_change(deal, None, Stage.NEW.value, None, uow.now)
        if lead["message"]:
            note = uow.interactions.add(
                Interaction(
                    contact_id=contact.id,
                    deal_id=deal.id,
                    kind=InteractionKind.NOTE.value,
                    summary=f"Website form: {lead['message']}",
                    occurred_at=uow.now,
                    logged_by_id=owner.id,
                    created_at=uow.now,
                )
            )
            await uow.audit.created(note)
        uow.emit("lead_created", contact_id=contact.id, deal_id=deal.id, owner_id=owner.id)
        body = {
            "contact_id": contact.id,
            "deal_id": deal.id,
            "owner": {"id": owner.id, "name": owner.display_name},
            "existing_contact": bool(matches),
        }
        if idem_key:
            IdempotencyRepository(uow.session).add(idem_key, {"status": 201, "body": body}, uow.now)
        await uow.commit()
        return 201, body


async def _owner_for(uow: UnitOfWork, contact: Contact | None):
    """The known contact's owner if still active; otherwise the next rep in turn (managers,
    then admins, when the team has no reps yet)."""
    if contact is not None:
        owner = await uow.users.get(contact.owner_id)
        if owner is not None and owner.active:
            return owner
    intake = IntakeRepository(uow.session)
    for role in (Role.REP, Role.MANAGER, Role.ADMIN):
        ids = await intake.active_ids_with_role(role.value)
        if ids:
            last = await intake.last_intake_owner(ACTION)
            later = [i for i in ids if last is not None and i > last]
            return await uow.users.get(later[0] if later else ids[0])
    raise NoOwner("Nobody can take the lead yet: add a rep to ChatCRM first.")
