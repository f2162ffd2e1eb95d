"""Drives a real `SlackChannel` (its bolt `AsyncApp`) with signed requests, the Web API calls
going to `FakeSlackAPI`; each call waits for the background work the request started."""
from __future__ import annotations

import json

import pytest

from pydantic import SecretStr
from slack_bolt.response import BoltResponse

from bot.slack_channel import SlackChannel
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeSlackAPI


def slack_settings(settings, api: FakeSlackAPI, **extra):
    """`settings` plus a Slack bot token, signing secret and the fake API's URL."""
    return settings.model_copy(update={
        "slack_bot_token": SecretStr("xoxb-test"),
        "slack_signing_secret": SecretStr(sr.SECRET),
        "slack_api_url": api.api_url,
        **extra,
    })


class SlackHarness:
    def __init__(self, channel: SlackChannel, api: FakeSlackAPI) -> None:
        self.channel = channel
        self.api = api

    async def dispatch(self, body: str, **kw) -> BoltResponse:
        response = await self.channel.app.async_dispatch(sr.request(body, **kw))
        await self.channel.drain()
        return response

    async def command(self, user: str, text: str, *, channel: str = "D1") -> BoltResponse:
        body = sr.slash_body(user, text, channel=channel, response_url=self.api.response_url())
        return await self.dispatch(body)

    async def dm(self, user: str, text: str, *, event_id: str | None = None, **kw) -> BoltResponse:
        channel = "D" + user.lstrip("U")
        return await self.dispatch(sr.event_body(sr.dm_event(user, text, channel=channel), event_id=event_id), **kw)

    async def press(self, user: str, value: str, *, message_ts: str | None = None, channel: str | None = None) -> BoltResponse:
        channel = channel or "D" + user.lstrip("U")
        ts = message_ts or self.last_post(channel)["ts"]
        return await self.dispatch(sr.button_body(user, value, channel=channel, message_ts=ts,
                                                  response_url=self.api.response_url()))

    async def submit(self, user: str, answers: dict[str, dict], view: dict | None = None) -> BoltResponse:
        view = view or self.last_modal()
        return await self.dispatch(sr.view_submission_body(user, view, answers))

    def last_modal(self) -> dict:
        return self.api.called("views.open")[-1]["view"]

    def last_post(self, channel: str) -> dict:
        """The last message posted to `channel`: its arguments plus the `ts` Slack answered."""
        call = self.api.posts(channel)[-1]
        return call.args | {"ts": call.result["ts"]}

    def texts(self, channel: str = "D1") -> list[str]:
        """The fallback text of every message posted to `channel`, in order."""
        return [c.args.get("text", "") for c in self.api.posts(channel)]

    @staticmethod
    def ack_json(response: BoltResponse) -> dict:
        """The ack's body as a dict (bolt answers a text-only ack as plain text)."""
        if not response.body:
            return {}
        return json.loads(response.body) if response.body.startswith("{") else {"text": response.body}


# Fixtures: import them into a test module (`from tests.fakes.slack_harness import slack_api, slack`).


@pytest.fixture
async def slack_api():
    api = await FakeSlackAPI().start()
    yield api
    await api.stop()


@pytest.fixture
async def slack(crm, settings, slack_api):
    """A `SlackHarness` around a channel with the real Router on the test database; sends are
    not paced (pacing has its own test)."""
    from conversations.router import Router

    channel = SlackChannel(slack_settings(settings, slack_api), Router(crm), crm=crm, pace_interval=0.0)
    yield SlackHarness(channel, slack_api)
    await channel.stop()
