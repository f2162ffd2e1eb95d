"""Signed Slack requests, as Slack sends them (and as slack-bolt's own tests build them):
slash commands, interactivity payloads and Events API callbacks, each with
`X-Slack-Request-Timestamp` and a v0 `X-Slack-Signature` over the raw body."""
from __future__ import annotations

import itertools
import json
import time
from urllib.parse import urlencode

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

SECRET = "test-signing-secret"
TEAM = "T1"
_ids = itertools.count(1)


def signed_headers(body: str, *, secret: str = SECRET, timestamp: int | None = None,
                   content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": signature,
    }


def request(body: str, **kw) -> AsyncBoltRequest:
    """A bolt request with the body signed (pass `secret=` or `timestamp=` to forge one)."""
    content_type = "application/json" if body.startswith("{") else "application/x-www-form-urlencoded"
    extra = kw.pop("headers", {})
    headers = signed_headers(body, content_type=content_type, **kw) | extra
    return AsyncBoltRequest(body=body, headers={k: [v] for k, v in headers.items()})


def slash_body(user: str, text: str, *, channel: str = "D1", response_url: str = "") -> str:
    return urlencode({
        "token": "legacy", "team_id": TEAM, "channel_id": channel, "channel_name": "crm",
        "user_id": user, "user_name": user.lower(), "command": "/crm", "text": text,
        "response_url": response_url, "trigger_id": f"trig{next(_ids)}",
    })


def _payload(payload: dict) -> str:
    return urlencode({"payload": json.dumps(payload)})


def button_body(user: str, value: str, *, channel: str = "D1", message_ts: str = "1.0",
                action_id: str = "crm_choice_0", response_url: str = "") -> str:
    """A block_actions payload: `user` pressed a button with `value` on a message."""
    action = {"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
              "action_ts": f"{time.time():.6f}"}
    return _payload({
        "type": "block_actions", "team": {"id": TEAM}, "user": {"id": user},
        "api_app_id": "A1", "trigger_id": f"trig{next(_ids)}",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel}, "message": {"ts": message_ts, "text": ""},
        "response_url": response_url, "actions": [action],
    })


def datepicker_body(user: str, day: str, *, channel: str = "D1", message_ts: str = "1.0") -> str:
    action = {"type": "datepicker", "action_id": "crm_day", "block_id": "b1",
              "selected_date": day, "action_ts": f"{time.time():.6f}"}
    return _payload({
        "type": "block_actions", "team": {"id": TEAM}, "user": {"id": user}, "api_app_id": "A1",
        "trigger_id": f"trig{next(_ids)}",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel}, "message": {"ts": message_ts, "text": ""}, "actions": [action],
    })


def home_button_body(user: str, action_id: str, value: str) -> str:
    """A button pressed on the App Home tab (no channel, a view container)."""
    action = {"type": "button", "action_id": action_id, "block_id": "h1", "value": value,
              "action_ts": f"{time.time():.6f}"}
    return _payload({
        "type": "block_actions", "team": {"id": TEAM}, "user": {"id": user}, "api_app_id": "A1",
        "trigger_id": f"trig{next(_ids)}", "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home"}, "actions": [action],
    })


def view_submission_body(user: str, view: dict, answers: dict[str, dict]) -> str:
    """A view_submission of `view` (as sent to views.open) with `answers`:
    block_id -> the element state, e.g. {"type": "plain_text_input", "value": "Acme"}."""
    state = {block: {"value": answer} for block, answer in answers.items()}
    submitted = {**view, "id": "VMODAL", "state": {"values": state}}
    return _payload({
        "type": "view_submission", "team": {"id": TEAM}, "user": {"id": user},
        "api_app_id": "A1", "trigger_id": f"trig{next(_ids)}", "view": submitted,
    })


def event_body(event: dict, *, event_id: str | None = None) -> str:
    """An Events API callback wrapping `event`."""
    return json.dumps({
        "token": "legacy", "team_id": TEAM, "api_app_id": "A1", "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids)}", "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}],
        "event": event,
    })


def dm_event(user: str, text: str, *, channel: str = "D1", files: list[dict] | None = None) -> dict:
    event = {"type": "message", "channel_type": "im", "channel": channel, "user": user,
             "text": text, "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}"}
    if files:
        event |= {"subtype": "file_share", "files": files}
    return event


def home_opened_event(user: str) -> dict:
    return {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home",
            "event_ts": f"{time.time():.6f}"}
