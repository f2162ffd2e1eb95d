"""A local fake of the Slack Web API (aiohttp on 127.0.0.1, a free port), in the spirit of
slack-bolt's own mock server: the real `AsyncWebClient` talks to it over HTTP.

It answers the methods ChatCRM calls, records every call, serves file downloads, accepts
`response_url` posts and file uploads, and can be told to fail a method once (a 429 with
`Retry-After`, or a Slack error such as `channel_not_found`).
"""
from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = "UBOT"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Failure:
    status: int
    error: str
    retry_after: int | None


@dataclass
class FakeSlackAPI:
    """Start with `await api.start()`; point the client at `api.api_url`."""

    user_tz: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # served at /files/<id>
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    responses: list[dict] = field(default_factory=list)  # posts to response_url
    _failures: dict[str, list[_Failure]] = field(default_factory=lambda: defaultdict(list))
    _ts: Any = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}/response/{name}"

    def file_url(self, file_id: str) -> str:
        return f"{self.base_url}/files/{file_id}"

    async def start(self) -> "FakeSlackAPI":
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{name}", self._response)
        app.router.add_get("/files/{file_id}", self._file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, method: str, *, status: int = 200, error: str = "ratelimited",
                  retry_after: int | None = None) -> None:
        """Make the next call of `method` fail (status 429 + Retry-After, or a Slack error)."""
        self._failures[method].append(_Failure(status, error, retry_after))

    def called(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call of `method`, in order."""
        return [c.args for c in self.calls if c.method == method]

    def posts(self, channel: str) -> list[Call]:
        """Every successful chat.postMessage to `channel`, in order (args and answer)."""
        return [c for c in self.calls if c.method == "chat.postMessage"
                and c.args.get("channel") == channel and c.result.get("ok")]

    # --- handlers -------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.can_read_body:
            args.update(await request.post())
        for key in ("blocks", "view", "files"):  # form-encoded methods send JSON strings
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        call = Call(method, args)
        self.calls.append(call)
        if self._failures.get(method):
            failure = self._failures[method].pop(0)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            call.result = {"ok": False, "error": failure.error}
            return web.json_response(call.result, status=failure.status, headers=headers)
        call.result = self._answer(method, args)
        return web.json_response(call.result)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ok = {"ok": True}
        if method == "auth.test":
            return ok | {"user_id": BOT_USER, "bot_id": "BBOT", "team_id": "T1", "user": "chatcrm"}
        if method in ("chat.postMessage", "chat.update"):
            ts = args.get("ts") or f"1700000000.{next(self._ts):06d}"
            return ok | {"channel": args.get("channel"), "ts": ts, "message": {"text": args.get("text")}}
        if method == "chat.postEphemeral":
            return ok | {"message_ts": f"1700000000.{next(self._ts):06d}"}
        if method.startswith("views."):
            return ok | {"view": {"id": f"V{next(self._ts)}", **(args.get("view") or {})}}
        if method == "users.info":
            user = args.get("user", "")
            return ok | {"user": {"id": user, "name": user.lower(), "real_name": f"User {user}",
                                  "tz": self.user_tz.get(user, "UTC")}}
        if method == "conversations.open":
            return ok | {"channel": {"id": "D" + str(args.get("users", "")).lstrip("UW")}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts)}"
            return ok | {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            return ok | {"files": [{"id": f["id"], "title": f.get("title")} for f in args.get("files", [])]}
        return {"ok": False, "error": "unknown_method"}

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["file_id"]] = await request.read()
        return web.Response(text="OK")

    async def _response(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["file_id"])
        if data is None or not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.Response(status=404)
        return web.Response(body=data)
