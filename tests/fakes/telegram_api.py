"""A fake Telegram Bot API server for tests and benchmarks (aiohttp on 127.0.0.1, free port).

The real python-telegram-bot `Application` talks to it over HTTP: point PTB's `base_url` at
`api.base_url` (or set `TELEGRAM_API_URL=api.base_url`) and files come from
`api.base_file_url`.

    async with FakeTelegramAPI() as api:
        api.push_update(api.message(chat_id=42, text="/newlead"))   # what a user does
        await api.wait_for(lambda: api.sent_to(42))                  # what the bot answered
        api.flood("sendMessage", retry_after=1)                       # next sendMessage -> 429
        api.block(42)                                                 # 403 for chat 42 from now on
        api.migrate(-5, -1005)                                        # 400 "chat migrated"

Implemented methods: getMe, getUpdates (long poll over a queue the test pushes into; every
pushed update is delivered once, even a repeated `update_id`, so redelivery can be simulated),
sendMessage, editMessageText, editMessageReplyMarkup, answerCallbackQuery, sendPhoto,
sendDocument, setMyCommands, deleteWebhook, setWebhook, getFile and the file download at
`/file/bot<token>/<path>`. Every call is recorded in `calls` (with the parameters decoded).

`running_bot(crm, api)` starts the real `TelegramChannel` against the fake and yields a
`TelegramDriver` (`say`, `press`, `tap` a button by label), which returns once the bot has
finished with each update. `bot_settings(settings, api)` points any settings at the fake.

`enforce_limits=True` answers 429 (with `retry_after`) to sendMessage/sendPhoto/sendDocument
beyond Telegram's limits: 1 message/s per private chat after a short burst of 3, 20/min per
group (negative chat id), 30/s overall. `floods` counts those 429s; `messages` keeps what each chat received.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SEND_METHODS = ("sendMessage", "sendPhoto", "sendDocument")
# Parameters PTB sends JSON-encoded; everything else is kept as the string that was sent.
JSON_PARAMS = {
    "reply_markup", "commands", "allowed_updates", "scope", "entities", "caption_entities",
    "link_preview_options", "reply_parameters",
}
BOT_ID = 7000001


@dataclass
class Call:
    """One request the bot made: the method, its decoded parameters and uploaded files."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200

    @property
    def chat_id(self) -> str | None:
        value = self.params.get("chat_id")
        return None if value is None else str(value)

    @property
    def keyboard(self) -> list[list[dict]]:
        """Buttons of an inline keyboard (rows of {text, callback_data}), or []."""
        markup = self.params.get("reply_markup") or {}
        return markup.get("inline_keyboard", [])


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    parameters: dict | None
    chat_id: str | None
    times: int | None  # None: for ever


class _Limiter:
    """Telegram's limits: overall 30/s and group 20/min as sliding windows; a private chat
    1/s with the short burst of 3 Telegram tolerates (GCRA)."""

    PRIVATE_BURST = 3

    def __init__(self) -> None:
        self._overall: deque[float] = deque()
        self._groups: dict[str, deque[float]] = defaultdict(deque)
        self._private_recovered: dict[str, float] = {}

    def check(self, chat_id: str, now: float) -> float:
        """Seconds to wait before `chat_id` may receive (0: allowed, and recorded)."""
        group = chat_id.startswith("-")
        times = self._groups[chat_id] if group else None
        for window, size in ((times, 60.0), (self._overall, 1.0)):
            while window and window[0] <= now - size:
                window.popleft()
        if group and len(times) >= 20:
            return times[0] + 60.0 - now
        recovered = max(self._private_recovered.get(chat_id, now), now)
        if not group and recovered - now > self.PRIVATE_BURST - 1:
            return recovered - now - (self.PRIVATE_BURST - 1)
        if len(self._overall) >= 30:
            return self._overall[0] + 1.0 - now
        if group:
            times.append(now)
        else:
            self._private_recovered[chat_id] = recovered + 1.0
        self._overall.append(now)
        return 0.0


class FakeTelegramAPI:
    """A Bot API server with a scriptable update queue, failures and a record of every call."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "chatcrm_test_bot",
        enforce_limits: bool = False,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.enforce_limits = enforce_limits
        self.calls: list[Call] = []
        self.messages: dict[str, dict[int, dict]] = defaultdict(dict)  # chat -> id -> message
        self.floods = 0
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self._updates: list[dict] = []  # waiting for getUpdates
        self.pushed: list[dict] = []  # every update ever pushed
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._failures: list[_Failure] = []
        self._limiter = _Limiter()
        self._changed = asyncio.Event()  # replaced by a fresh one after every change
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> "FakeTelegramAPI":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._closing = True
        self.notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeTelegramAPI":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What to pass as PTB's `base_url` / `TELEGRAM_API_URL`."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # --- scripting ---------------------------------------------------------------------------

    def push_update(self, update: dict) -> dict:
        """Queue an update for the next getUpdates; gives it an `update_id` if it has none."""
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self.pushed.append(update)
        self.notify()
        return update

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        *,
        parameters: dict | None = None,
        chat_id: int | str | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` calls of `method` (to `chat_id`, if given) with an error."""
        chat = None if chat_id is None else str(chat_id)
        self._failures.append(_Failure(method, status, description, parameters, chat, times))

    def flood(self, method: str, retry_after: int = 1, *, chat_id=None, times: int = 1) -> None:
        """429 Too Many Requests with `retry_after`."""
        self.fail(
            method, 429, f"Too Many Requests: retry after {retry_after}",
            parameters={"retry_after": retry_after}, chat_id=chat_id, times=times,
        )

    def block(self, chat_id: int | str) -> None:
        """The user blocked the bot: every send/edit to `chat_id` gets 403 from now on."""
        for method in (*SEND_METHODS, "editMessageText", "editMessageReplyMarkup"):
            self.fail(method, 403, "Forbidden: bot was blocked by the user", chat_id=chat_id, times=None)

    def migrate(self, chat_id: int | str, new_chat_id: int) -> None:
        """A group became a supergroup: sends to the old id get 400 with `migrate_to_chat_id`."""
        for method in SEND_METHODS:
            self.fail(
                method, 400, "Bad Request: group chat was upgraded to a supergroup chat",
                parameters={"migrate_to_chat_id": new_chat_id}, chat_id=chat_id, times=None,
            )

    def add_file(self, file_id: str, content: bytes, file_path: str) -> None:
        """Make `file_id` downloadable through getFile."""
        self.files[file_id] = (file_path, content)

    # --- inspection --------------------------------------------------------------------------

    def calls_to(self, method: str, chat_id: int | str | None = None) -> list[Call]:
        """Successful calls of `method` (to `chat_id`, if given), in order."""
        return [
            c for c in self.calls
            if c.method == method and c.status == 200
            and (chat_id is None or c.chat_id == str(chat_id))
        ]

    def sent_to(self, chat_id: int | str) -> list[Call]:
        """Messages delivered to `chat_id` (text, photos, documents), in order."""
        return [c for c in self.calls if c.method in SEND_METHODS and c.status == 200
                and c.chat_id == str(chat_id)]

    def texts_to(self, chat_id: int | str) -> list[str]:
        """The text (or caption) of every message delivered to `chat_id`."""
        return [c.params.get("text") or c.params.get("caption") or "" for c in self.sent_to(chat_id)]

    def unanswered(self) -> list[str]:
        """Ids of pushed callback queries the bot never answered (should be empty)."""
        pushed = [u["callback_query"]["id"] for u in self.pushed if "callback_query" in u]
        answered = {c.params.get("callback_query_id") for c in self.calls_to("answerCallbackQuery")}
        return [query_id for query_id in pushed if query_id not in answered]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait until `condition()` is truthy (re-checked after every call); returns its value.

        The timeout only keeps a broken test from hanging; it is not a timing assertion.
        """
        async def _wait():
            while True:
                changed = self._changed  # taken before the check, so no change is missed
                if result := condition():
                    return result
                await changed.wait()

        return await asyncio.wait_for(_wait(), timeout)

    def notify(self) -> None:
        """Wake everything waiting on this server (a call, an update, a marker)."""
        self._changed.set()
        self._changed = asyncio.Event()

    # --- update builders ----------------------------------------------------------------------

    @staticmethod
    def user(user_id: int, first_name: str = "Rana", last_name: str | None = None) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        return user

    @staticmethod
    def chat(chat_id: int) -> dict:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Rana"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": "Sales team"}

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Rana",
        date: int | None = None,
        **extra: Any,
    ) -> dict:
        """A `message` update; `extra` adds fields (contact, photo, document, caption,
        forward_origin, reply_to_message ...). Commands get their bot_command entity."""
        msg = {
            "message_id": next(self._message_ids),
            "date": date or int(time.time()),
            "chat": self.chat(chat_id),
            "from": self.user(user_id or chat_id, first_name),
            **extra,
        }
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                length = len(text.split()[0].encode("utf-16-le")) // 2
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"message": msg}

    def press(self, chat_id: int, data: str, *, message_id: int | None = None,
              user_id: int | None = None, first_name: str = "Rana") -> dict:
        """A `callback_query` update: the user pressed a button with `data` on `message_id`."""
        if message_id is None:
            message_id = max(self.messages.get(str(chat_id), {0: None}))
        message = self.messages.get(str(chat_id), {}).get(message_id) or {
            "message_id": message_id, "date": int(time.time()), "chat": self.chat(chat_id),
            "text": "…",
        }
        return {
            "callback_query": {
                "id": f"cq{next(self._message_ids)}",
                "from": self.user(user_id or chat_id, first_name),
                "chat_instance": f"ci{chat_id}",
                "data": data,
                "message": message,
            }
        }

    # --- the HTTP side --------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method, params, files)
        failure = self._failure_for(method, call.chat_id)
        if failure is None and self.enforce_limits and method in SEND_METHODS:
            wait = self._limiter.check(str(call.chat_id), time.monotonic())
            if wait > 0:
                self.floods += 1
                failure = _Failure(method, 429, "Too Many Requests", {"retry_after": max(1, round(wait))}, None, 1)
        if failure is not None:
            call.status = failure.status
            self.calls.append(call)
            self.notify()
            return _error(failure.status, failure.description, failure.parameters)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result = await handler(call) if asyncio.iscoroutinefunction(handler) else handler(call)
        self.calls.append(call)
        self.notify()
        return web.json_response({"ok": True, "result": result})

    def _failure_for(self, method: str, chat_id: str | None) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.chat_id in (None, chat_id):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                return failure
        return None

    async def _download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for file_path, content in self.files.values():
            if file_path == path and request.match_info["token"] == self.token:
                return web.Response(body=content)
        return web.Response(status=404)

    def _m_getMe(self, call: Call) -> dict:
        return {
            "id": BOT_ID, "is_bot": True, "first_name": "ChatCRM", "username": self.bot_username,
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, call: Call) -> list[dict]:
        """Long poll: answer as soon as updates are queued, or empty after `timeout` s."""
        timeout = float(call.params.get("timeout") or 0)
        try:
            await self.wait_for(lambda: self._updates or self._closing or timeout <= 0, timeout)
        except TimeoutError:
            pass
        batch, self._updates = self._updates, []
        return batch

    def _m_sendMessage(self, call: Call) -> dict:
        return self._store(call, text=call.params.get("text", ""))

    def _m_sendPhoto(self, call: Call) -> dict:
        photo = [{"file_id": "photo1", "file_unique_id": "p1", "width": 640, "height": 480}]
        return self._store(call, photo=photo, caption=call.params.get("caption"))

    def _m_sendDocument(self, call: Call) -> dict:
        name = next(iter(call.files), "document")
        document = {"file_id": "doc1", "file_unique_id": "d1", "file_name": name}
        return self._store(call, document=document, caption=call.params.get("caption"))

    def _m_editMessageText(self, call: Call) -> dict:
        message = self._find(call)
        message["text"] = call.params.get("text", "")
        self._set_markup(message, call)
        return message

    def _m_editMessageReplyMarkup(self, call: Call) -> dict:
        message = self._find(call)
        self._set_markup(message, call)
        return message

    def _m_answerCallbackQuery(self, call: Call) -> bool:
        return True

    def _m_setMyCommands(self, call: Call) -> bool:
        return True

    def _m_deleteWebhook(self, call: Call) -> bool:
        return True

    def _m_setWebhook(self, call: Call) -> bool:
        return True

    def _m_getFile(self, call: Call) -> dict:
        file_id = call.params.get("file_id", "")
        file_path, content = self.files.get(file_id, (f"files/{file_id}", b""))
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(content),
                "file_path": file_path}

    def _store(self, call: Call, **content: Any) -> dict:
        chat_id = int(call.params["chat_id"])
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "ChatCRM",
                     "username": self.bot_username},
            **{k: v for k, v in content.items() if v is not None},
        }
        self._set_markup(message, call)
        self.messages[str(chat_id)][message["message_id"]] = message
        return message

    def _find(self, call: Call) -> dict:
        chat_id = str(call.params.get("chat_id"))
        message_id = int(call.params.get("message_id", 0))
        return self.messages[chat_id].setdefault(
            message_id,
            {"message_id": message_id, "date": int(time.time()), "chat": self.chat(int(chat_id))},
        )

    @staticmethod
    def _set_markup(message: dict, call: Call) -> None:
        markup = call.params.get("reply_markup")
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if part.filename:
                files[part.filename] = await part.read()
            else:
                params[part.name] = await part.text()
    elif request.can_read_body:
        params.update((k, v) for k, v in (await request.post()).items())
    params.update(request.query)
    for name in JSON_PARAMS & params.keys():
        params[name] = json.loads(params[name])
    return params, files


def _error(status: int, description: str, parameters: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


class TelegramDriver:
    """Drives a started `TelegramChannel` through a `FakeTelegramAPI` like a user would, and
    waits until the bot has finished with each update (a marker handler runs after the bot's)."""

    def __init__(self, api: FakeTelegramAPI, channel, chat_id: int = 123) -> None:
        from telegram import Update
        from telegram.ext import TypeHandler

        self.api = api
        self.channel = channel
        self.chat_id = chat_id
        self.handled: list[int] = []

        async def _mark(update: Update, _context) -> None:
            self.handled.append(update.update_id)
            api.notify()

        channel.app.add_handler(TypeHandler(Update, _mark), group=99)

    async def deliver(self, update: dict) -> list[Call]:
        """Push `update`, wait until it is handled, return the calls the bot made meanwhile
        (polling left out)."""
        before = len(self.api.calls)
        self.api.push_update(update)
        await self.api.wait_for(lambda: update["update_id"] in self.handled)
        return [c for c in self.api.calls[before:] if c.method != "getUpdates"]

    async def say(self, text: str | None = None, *, chat_id: int | None = None, **extra) -> list[Call]:
        return await self.deliver(self.api.message(chat_id or self.chat_id, text, **extra))

    async def press(self, data: str, *, chat_id: int | None = None, message_id: int | None = None,
                    **extra) -> list[Call]:
        return await self.deliver(
            self.api.press(chat_id or self.chat_id, data, message_id=message_id, **extra)
        )

    async def tap(self, label: str, *, chat_id: int | None = None) -> list[Call]:
        """Press the button labelled `label` (a substring) on the newest message showing it."""
        chat = chat_id or self.chat_id
        for message_id, message in sorted(self.api.messages[str(chat)].items(), reverse=True):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if label in button["text"]:
                        return await self.press(button["callback_data"], chat_id=chat,
                                                message_id=message_id)
        raise AssertionError(f"no button {label!r} in chat {chat}")

    def last(self, chat_id: int | None = None) -> Call:
        """The last message the bot sent to the chat."""
        return self.api.sent_to(chat_id or self.chat_id)[-1]


def bot_settings(settings, api: FakeTelegramAPI, **changes):
    """`settings` pointed at the fake server (plus any other field `changes`)."""
    from pydantic import SecretStr

    update = {"telegram_bot_token": SecretStr(api.token), "telegram_api_url": api.base_url}
    update.update(changes)
    return settings.model_copy(update=update)


@asynccontextmanager
async def running_bot(crm, api: FakeTelegramAPI, *, router=None, chat_id: int = 123, **channel_kw):
    """A started `TelegramChannel` on the real `Router` (unless given) talking to `api`;
    yields its `TelegramDriver` and stops the bot afterwards."""
    from bot.telegram_channel import SendLimits, TelegramChannel
    from conversations.router import Router

    channel_kw.setdefault("limits", SendLimits(overall_per_s=1000, chat_interval=0, group_interval=0))
    channel_kw.setdefault("poll_timeout", 1.0)
    channel = TelegramChannel(bot_settings(crm.settings, api), router or Router(crm), **channel_kw)
    await channel.start()
    try:
        yield TelegramDriver(api, channel, chat_id)
    finally:
        await channel.stop()
