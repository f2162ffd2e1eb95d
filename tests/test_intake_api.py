"""POST /api/leads: auth, validation, idempotency, round robin, alerts."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import func, select

from jobs.alerts import enqueue_alerts
from jobs.intake_api import build_intake_app
from storage.models import Contact, Deal, Interaction
from tests.jobs_support import add_team_channel, outbox_rows

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
FORM = {
    "name": "Layla Haddad",
    "phone": "050 123 4567",
    "email": "Layla@Example.com",
    "message": "Need a quote for a villa",
    "value": "12500",
    "currency": "aed",
}


@pytest.fixture
async def client(crm):
    crm.settings = crm.settings.model_copy(update={"api_key": SecretStr(KEY)})
    crm.hooks.append(enqueue_alerts)
    async with TestClient(TestServer(build_intake_app(crm))) as client:
        yield client


async def count(crm, model) -> int:
    async with crm.reader() as uow:
        return (await uow.session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_wrong_or_missing_key_is_401(client, crm, make_user):
    await make_user("Rana")
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-Api-Key": "nope"}):
        resp = await client.post("/api/leads", json=FORM, headers=headers)
        assert resp.status == 401
        assert "API key" in (await resp.json())["error"]
    assert await count(crm, Deal) == 0


async def test_bad_json_is_400(client, crm):
    resp = await client.post(
        "/api/leads", data="{name: oops", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "The body is not valid JSON." and body["example"]["name"]
    resp = await client.post("/api/leads", json=["a", "list"], headers=AUTH)
    assert resp.status == 400


async def test_missing_and_invalid_fields_are_422_and_write_nothing(client, crm, make_user):
    await make_user("Rana")
    resp = await client.post("/api/leads", json={"message": "hi"}, headers=AUTH)
    assert resp.status == 422
    assert set((await resp.json())["fields"]) == {"name", "phone"}
    resp = await client.post(
        "/api/leads",
        json={"name": "Omar", "phone": "12", "source": "tv", "value": "lots"},
        headers={"X-Api-Key": KEY},
    )
    fields = (await resp.json())["fields"]
    assert resp.status == 422 and set(fields) == {"phone", "source", "value"}
    assert "+971 50 123 4567" in fields["phone"]
    assert (await count(crm, Contact), await count(crm, Deal)) == (0, 0)


async def test_lead_is_created_round_robin_with_alerts(client, crm, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    omar = await make_user("Omar", identity=("telegram", "222"))
    await make_user("Maya", role="manager")
    await add_team_channel(crm, "telegram:-100")
    owners = []
    for n in range(3):
        resp = await client.post(
            "/api/leads", json={"name": f"Lead {n}", "email": f"l{n}@example.com"}, headers=AUTH
        )
        assert resp.status == 201
        owners.append((await resp.json())["owner"]["name"])
    assert owners == ["Rana", "Omar", "Rana"]

    resp = await client.post("/api/leads", json=FORM, headers=AUTH)
    body = await resp.json()
    assert (
        body["owner"] == {"id": omar.user_id, "name": "Omar"} and body["existing_contact"] is False
    )
    async with crm.reader() as uow:
        contact = await uow.session.get(Contact, body["contact_id"])
        deal = await uow.session.get(Deal, body["deal_id"])
        note = (await uow.session.execute(select(Interaction))).scalar_one()
        assert (contact.phone, contact.email, contact.source) == (
            "+971501234567",
            "layla@example.com",
            "website",
        )
        assert (deal.stage, deal.value_minor, deal.currency, deal.owner_id) == (
            "new",
            1_250_000,
            "AED",
            omar.user_id,
        )
        assert note.summary == "Website form: Need a quote for a villa"
    dm = await outbox_rows(crm, f"lead:owner:{deal.id}")
    assert [r.address for r in dm] == ["telegram:222"]
    team = await outbox_rows(crm, f"alert:lead:{deal.id}")
    assert [r.address for r in team] == ["telegram:-100"]
    assert rana.user_id != omar.user_id


async def test_a_known_contact_keeps_its_owner(client, crm, make_user):
    await make_user("Rana")
    await make_user("Omar")
    first = await (await client.post("/api/leads", json=FORM, headers=AUTH)).json()
    again = await (
        await client.post("/api/leads", json={**FORM, "title": "Second villa"}, headers=AUTH)
    ).json()
    assert again["existing_contact"] is True
    assert (again["contact_id"], again["owner"]) == (first["contact_id"], first["owner"])
    assert (await count(crm, Contact), await count(crm, Deal)) == (1, 2)


async def test_same_idempotency_key_returns_the_same_answer_and_creates_once(
    client, crm, make_user
):
    await make_user("Rana")
    headers = {**AUTH, "Idempotency-Key": "form-7f3a"}
    first = await client.post("/api/leads", json=FORM, headers=headers)
    second = await client.post("/api/leads", json=FORM, headers=headers)
    assert (first.status, second.status) == (201, 201)
    assert await first.json() == await second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    # Two retries racing each other still make one lead.
    racing = {**AUTH, "Idempotency-Key": "form-race"}
    answers = await asyncio.gather(
        *(
            client.post("/api/leads", json={**FORM, "title": "Race"}, headers=racing)
            for _ in range(3)
        )
    )
    bodies = [await a.json() for a in answers]
    assert {a.status for a in answers} == {201} and len({b["deal_id"] for b in bodies}) == 1
    assert await count(crm, Deal) == 2


async def test_intake_is_off_without_a_key(crm):
    async with TestClient(TestServer(build_intake_app(crm))) as client:
        resp = await client.post("/api/leads", json=FORM, headers=AUTH)
        assert resp.status == 503 and "CRM_API_KEY" in (await resp.json())["error"]
