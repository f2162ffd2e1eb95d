"""The Slack surface: slack-bolt's `AsyncApp` adapted to the neutral conversation layer.

- `/crm <verb> [args]`: a flow verb opens a modal built from the flow's spec, other verbs run
  through the router and answer in the user's DM (in the channel for group commands such as
  `setchannel`). `/crm` alone lists the verbs.
- DMs step through flows like Telegram; buttons carry the `Choice.value` and act in place.
- App Home shows the user's tasks, pipeline and balances due, refreshed when opened and after
  each change the user makes.

Every listener acks at once and runs slow work in a background task (`process_before_response`
keeps bolt from racing us, so the HTTP answer goes out right after the ack).

Addresses: `slack:<C…|G…|D…>` is a conversation; `slack:<U…|W…>` is a user's DM with the app
(opened with `conversations.open`); `slack:<channel>:<user>` posts to the channel (the user
part names who it is about).
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.base import SORRY, RetryLater, Unreachable
from bot.slack_blocks import (
    CHOICE_ACTION, DAY_ACTION, FORM_CALLBACK, HOME_ACT_ACTION, HOME_CMD_ACTION, HOME_FORM_ACTION, answered,
    error_map, escape, help_message, message, modal, submitted_values,
)
from bot.slack_home import home_for
from bot.slack_inbound import download, is_direct, split_command, typed_text
from config import Settings
from conversations.forms import FLOWS
from conversations.messages import Address, Inbound, Reply
from conversations.registry import COMMANDS
from handlers.users import identify

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
UNREACHABLE_ERRORS = frozenset({
    "channel_not_found", "is_archived", "not_in_channel", "account_inactive",
    "user_not_found", "cannot_dm_bot", "user_disabled",
})
DIRECT_ATTEMPTS = 3  # a direct reply waits out this many 429s before giving up
REMEMBERED = 2000  # message refs kept per process for in-place edits
_NOT_SAVED = "Sorry, that didn't save. Please press Save again in a moment."
_INVITE_ME = "Add me to this channel first (type `/invite @ChatCRM`), then try again."


class _Recent(OrderedDict):
    """A small LRU map: message refs are a convenience (edit in place), not state."""

    def remember(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > REMEMBERED:
            self.popitem(last=False)


class SlackChannel:
    """`Channel` for Slack. HTTP mode (signing secret, `SLACK_PORT`) or Socket Mode (app token)."""

    platform = "slack"

    def __init__(
        self,
        settings: Settings,
        router,
        *,
        crm=None,
        pace_interval: float = 1.0,
        burst: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.slack_bot_token is None:
            raise ValueError("SLACK_BOT_TOKEN is not set")
        if settings.slack_signing_secret is None and settings.slack_app_token is None:
            raise ValueError("Slack needs SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)")
        self.settings = settings
        self.router = router
        self.crm = crm if crm is not None else router.crm
        self._token = settings.slack_bot_token.get_secret_value()
        self.client = AsyncWebClient(token=self._token, base_url=settings.slack_api_url or AsyncWebClient.BASE_URL)
        secret = settings.slack_signing_secret
        self.app = AsyncApp(
            client=self.client,
            signing_secret=secret.get_secret_value() if secret else "",
            request_verification_enabled=secret is not None,
            process_before_response=True,
        )
        self._pace = pace_interval
        self._burst = burst
        self._sleep = sleep
        self._monotonic = monotonic
        self._due: dict[str, float] = {}  # channel -> theoretical time of its next post (GCRA)
        self._profiles: dict[str, dict] = {}  # user -> users.info "user" object
        self._dms: dict[str, str] = {}
        self._asking = _Recent()  # channel -> ts of the question waiting for an answer
        self._by_key = _Recent()  # (channel, edit_key) -> ts
        self._home_users: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._runner: web.AppRunner | None = None
        self._socket = None
        self.port: int | None = None
        self._listen()

    @property
    def mode(self) -> str:
        return "socket" if self.settings.slack_app_token is not None else "http"

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen: Socket Mode when an app token is set, else HTTP on `SLACK_PORT`."""
        if self.mode == "socket":
            self._socket = self.socket_handler()
            await self._socket.connect_async()
            return
        self._runner = web.AppRunner(self.web_app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "0.0.0.0", self.settings.slack_port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        log.info("Slack app listening on port %s at %s", self.port, EVENTS_PATH)

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.drain()

    def socket_handler(self):
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        return AsyncSocketModeHandler(self.app, self.settings.slack_app_token.get_secret_value())

    def web_app(self) -> web.Application:
        """The aiohttp app serving commands, interactivity and events at `/slack/events`."""

        async def events(request: web.Request) -> web.Response:
            response = await self.app.async_dispatch(await to_bolt_request(request))
            return await to_aiohttp_response(response)

        app = web.Application()
        app.router.add_post(EVENTS_PATH, events)
        return app

    async def drain(self) -> None:
        """Wait for the background work started by listeners (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(self._guarded(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(coro) -> None:
        try:
            await coro
        except Exception:  # a failed reply must not take the app down; the user can retry
            log.exception("Slack background work failed")

    # --- listeners ------------------------------------------------------------------------

    def _listen(self) -> None:
        app = self.app
        app.command("/crm")(self._on_command)
        app.action(re.compile(rf"^{CHOICE_ACTION}\d+$"))(self._on_button)
        app.action(DAY_ACTION)(self._on_day)
        app.action(re.compile(rf"^{HOME_FORM_ACTION}"))(self._on_home_form)
        app.action(re.compile(rf"^{HOME_CMD_ACTION}"))(self._on_home_command)
        app.action(re.compile(rf"^{HOME_ACT_ACTION}\d+$"))(self._on_home_action)
        app.view(re.compile(rf"^{re.escape(FORM_CALLBACK)}"))(self._on_submit)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("message")(self._on_message)

    async def _on_command(self, ack, command, respond) -> None:
        verb, args = split_command(command.get("text"))
        user, channel = command["user_id"], command.get("channel_id")
        if verb in ("", "help"):
            await ack(**help_message(verbs()))
            return
        if verb in FLOWS:
            await ack()
            self._spawn(self._open_form(user, verb, args, command["trigger_id"], respond))
            return
        spec = COMMANDS.get(verb)
        if channel and not is_direct(channel) and spec is not None and spec.group_ok:
            await ack()
            self._spawn(self._run_in_channel(user, channel, f"/{verb} {args}".strip(), respond))
            return
        await ack(text="" if is_direct(channel) else "I'll answer in our direct messages.")
        self._spawn(self._run_in_dm(user, f"/{verb} {args}".strip()))

    async def _on_button(self, ack, body, action) -> None:
        await ack()
        self._spawn(self._pressed(body, action=action.get("value")))

    async def _on_day(self, ack, body, action) -> None:
        await ack()
        self._spawn(self._pressed(body, text=action.get("selected_date")))

    async def _on_home_form(self, ack, body, action) -> None:
        await ack()
        self._spawn(self._open_form(body["user"]["id"], action["value"], "", body["trigger_id"], None))

    async def _on_home_command(self, ack, body, action) -> None:
        await ack()
        self._spawn(self._run_in_dm(body["user"]["id"], f"/{action['value']}"))

    async def _on_home_action(self, ack, body, action) -> None:
        await ack()
        self._spawn(self._act_from_home(body["user"]["id"], action["value"]))

    async def _on_submit(self, ack, body, view) -> None:
        # Validation must answer in the ack (errors shown inline), so it runs before it.
        flow = view["callback_id"].removeprefix(FORM_CALLBACK)
        user = body["user"]["id"]
        # The DM is the chat: fields the modal did not show (a duplicate check) are asked there.
        dm = await self.dm_channel(user)
        profile = self._profiles.get(user, {})  # cached when the form opened; no call before the ack
        inbound = Inbound(platform="slack", chat_id=dm, user_id=user, timezone=profile.get("tz"),
                          display_name=_name_of(profile))
        try:
            result = await self.router.submit_form(inbound, flow, submitted_values(view), view.get("private_metadata", ""))
        except Exception:  # keep the modal and what was typed; say so under the first field
            log.exception("submit_form(%s) failed", flow)
            await ack(response_action="errors", errors=error_map({"": _NOT_SAVED}, view))
            return
        if result.errors:
            await ack(response_action="errors", errors=error_map(result.errors, view))
            return
        await ack()
        self._spawn(self._after_form(dm, user, result.replies))

    async def _on_home_opened(self, event) -> None:
        if event.get("tab", "home") == "home":
            self._spawn(self.publish_home(event["user"]))

    async def _on_message(self, event, body) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        if event.get("subtype") not in (None, "file_share") or not event.get("user"):
            return  # edits, deletions, joins: nothing a rep asked for
        self._spawn(self._converse(event, body.get("event_id")))

    # --- work after the ack ---------------------------------------------------------------

    async def _inbound(self, user: str, chat_id: str, **kw) -> Inbound:
        profile = await self.profile(user)
        return Inbound(platform="slack", chat_id=chat_id, user_id=user, timezone=profile.get("tz"),
                       display_name=_name_of(profile), **kw)

    async def _converse(self, event: dict, event_id: str | None) -> None:
        user, channel = event["user"], event["channel"]
        attachment = None
        for file in event.get("files") or []:
            attachment = await download(file, self._token, self.settings.data_dir / "inbox")
            break
        inbound = await self._inbound(
            user, channel, text=typed_text(event.get("text")) or None, message_ref=event.get("ts"),
            event_key=event_id, attachment=attachment,
        )

        async def progress(reply: Reply) -> None:
            await self._deliver(channel, [reply])

        await self._deliver(channel, await self._handle(inbound, progress))
        await self._refresh_home(user)

    async def _pressed(self, body: dict, *, action: str | None = None, text: str | None = None) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or body.get("container", {}).get("channel_id")
        ts = body.get("container", {}).get("message_ts")
        inbound = await self._inbound(
            user, channel, action=action, text=text, message_ref=ts, is_group=not is_direct(channel),
        )
        async def progress(reply: Reply) -> None:
            await self._deliver(channel, [reply], pressed=ts)

        await self._deliver(channel, await self._handle(inbound, progress), pressed=ts)
        await self._refresh_home(user)

    async def _handle(self, inbound: Inbound, progress=None) -> list[Reply]:
        """The router's replies; when handling failed (the database went away), an apology, so
        the user is told to try again instead of left without an answer."""
        try:
            return await self.router.handle(inbound, progress)
        except Exception:
            log.exception("Slack: handling a message from %s failed", inbound.user_id)
            return [Reply.say(SORRY)]

    async def _run_in_dm(self, user: str, text: str) -> None:
        dm = await self.dm_channel(user)
        inbound = await self._inbound(user, dm, text=text)
        await self._deliver(dm, await self._handle(inbound))
        await self._refresh_home(user)

    async def _act_from_home(self, user: str, value: str) -> None:
        """A button on the Home tab: acted on as in the DM (answers go there), then the tab
        is published again to show the change."""
        dm = await self.dm_channel(user)
        await self._deliver(dm, await self._handle(await self._inbound(user, dm, action=value)))
        await self.publish_home(user)

    async def _run_in_channel(self, user: str, channel: str, text: str, respond) -> None:
        inbound = await self._inbound(user, channel, text=text, is_group=True)
        replies = await self._handle(inbound)
        try:
            for reply in replies:
                await self._post(channel, reply)
        except Unreachable:  # the app is not in this channel: tell only the person who asked
            await respond(text=_INVITE_ME)
            for reply in replies:
                await respond(**message(reply))

    async def _open_form(self, user: str, flow: str, args: str, trigger_id: str, respond) -> None:
        text = f"/{flow} {args}".strip()
        inbound = await self._inbound(user, await self.dm_channel(user), text=text)
        try:
            spec = await self.router.form_spec(inbound, flow, args)
        except Exception:  # the person is waiting for a form: never leave them with nothing
            log.exception("form_spec(%s) failed", flow)
            spec = [Reply.say("Sorry, I couldn't open that form. Send me /", flow,
                              " in a direct message to do it step by step.")]
        if isinstance(spec, list):  # refused (unknown user, not allowed): say why
            await self._answer_privately(user, spec, respond)
            return
        try:
            await self.client.views_open(trigger_id=trigger_id, view=modal(spec, flow))
        except SlackApiError as err:
            log.warning("views.open failed: %s", err.response.get("error"))
            await self._answer_privately(
                user, [Reply.say("That took too long to open. Please try again: /crm ", flow)], respond
            )

    async def _answer_privately(self, user: str, replies: list[Reply], respond) -> None:
        if respond is not None:
            for reply in replies:
                await respond(**message(reply))
        else:
            await self._deliver(await self.dm_channel(user), replies)

    async def _after_form(self, dm: str, user: str, replies: list[Reply]) -> None:
        await self._deliver(dm, replies)
        await self._refresh_home(user)

    async def publish_home(self, user: str) -> None:
        """Compute and publish `user`'s App Home tab."""
        actor = await identify(self.crm, "slack", user)
        await self.client.views_publish(user_id=user, view=await home_for(self.crm, actor))
        self._home_users.add(user)

    async def _refresh_home(self, user: str) -> None:
        if user in self._home_users:  # only for people who have looked at it
            await self.publish_home(user)

    # --- delivery -------------------------------------------------------------------------

    async def _deliver(self, channel: str, replies: list[Reply], pressed: str | None = None) -> None:
        """Show replies in `channel`: an answered question loses its buttons and shows the
        answer; a reply with an `edit_key` replaces the message it belongs to (the one whose
        button was pressed, or the last one sent with that key)."""
        for i, reply in enumerate(replies):
            first_press = pressed if i == 0 else None
            target = None
            if reply.answered:
                question = first_press or self._asking.pop(channel, None)
                if question:
                    await self._direct(self._update, channel, question, answered(reply.answered))
                first_press = None
            if reply.edit_key:
                target = first_press or self._by_key.get((channel, reply.edit_key))
            if target:
                ts = await self._direct(self._update, channel, target, message(reply))
            else:
                ts = await self._direct(self._post, channel, reply)
            if ts and reply.edit_key:
                self._by_key.remember((channel, reply.edit_key), ts)
            if ts and reply.ask:
                self._asking.remember(channel, ts)

    async def _direct(self, send, channel: str, *args) -> str | None:
        """A direct reply: waits out 429s (paced), gives up quietly on an unreachable chat."""
        for _ in range(DIRECT_ATTEMPTS):
            try:
                return await send(channel, *args)
            except RetryLater:
                continue  # the pacer now holds this channel for Retry-After seconds
            except Unreachable as err:
                log.info("Slack reply to %s dropped: %s", channel, err)
                return None
        log.warning("Slack reply to %s dropped after %d rate limits", channel, DIRECT_ATTEMPTS)
        return None

    async def send(self, address: Address, reply: Reply) -> str:
        """Deliver a notification; returns the message ts (for later edits)."""
        return await self._post(await self._resolve(address), reply)

    async def edit(self, address: Address, message_ref: str, reply: Reply) -> None:
        await self._update(await self._resolve(address), message_ref, message(reply))

    async def _resolve(self, address: Address) -> str:
        if address.platform != self.platform:
            raise Unreachable(f"not a Slack address: {address}")
        if address.chat_id[:1] in ("U", "W"):
            return await self.dm_channel(address.chat_id)
        return address.chat_id

    async def _post(self, channel: str, reply: Reply) -> str:
        ref = ""
        if reply.text or reply.choices or not (reply.image or reply.file):
            await self._paced(channel)
            response = await self._call(self.client.chat_postMessage, channel, channel=channel, **message(reply))
            ref = response["ts"]
        for out in (reply.image, reply.file):
            if out is not None:
                await self._paced(channel)
                response = await self._call(
                    self.client.files_upload_v2, channel, channel=channel, file=str(out.path),
                    filename=out.filename, title=out.filename,
                    initial_comment=escape(out.caption) if out.caption else None,
                )
                ref = ref or response["file"]["id"]
        return ref

    async def _update(self, channel: str, ts: str, content: dict) -> str:
        # Not paced: the one-per-second limit is chat.postMessage's; updates have their own tier.
        await self._call(self.client.chat_update, channel, channel=channel, ts=ts, **content)
        return ts

    async def _paced(self, channel: str) -> None:
        """About one post per second per channel (Slack's limit), with a short burst allowed
        (Slack tolerates one) so a reply of a few messages shows at once."""
        now = self._monotonic()
        due = max(now, self._due.get(channel, now))
        start = max(now, due - self._burst * self._pace)
        self._due[channel] = max(due, start) + self._pace
        if start > now:
            await self._sleep(start - now)

    def _hold(self, channel: str, seconds: float) -> None:
        """Slack said "retry after": no post to `channel` before then."""
        until = self._monotonic() + seconds + self._burst * self._pace
        self._due[channel] = max(self._due.get(channel, 0.0), until)

    async def _call(self, method, pace_key: str, /, **kwargs):
        """Call the Web API, turning failures into `RetryLater` / `Unreachable` only; a 429
        also holds `pace_key` (the channel) for its Retry-After."""
        try:
            return await method(**kwargs)
        except SlackApiError as err:
            response = err.response
            if response.status_code == 429:
                headers = {k.lower(): v for k, v in (response.headers or {}).items()}
                retry = float(headers.get("retry-after", 1))
                self._hold(pace_key, retry)
                raise RetryLater(retry, "Slack rate limit") from None
            error = response.get("error", "")
            if error in UNREACHABLE_ERRORS:
                raise Unreachable(error) from None
            raise RetryLater(30, f"Slack error {error}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise RetryLater(5, f"Slack unreachable: {err}") from None

    # --- people ---------------------------------------------------------------------------

    async def dm_channel(self, user: str) -> str:
        """The id of `user`'s DM with the app (cached)."""
        if user not in self._dms:
            response = await self._call(self.client.conversations_open, user, users=user)
            self._dms[user] = response["channel"]["id"]
        return self._dms[user]

    async def profile(self, user: str) -> dict:
        """`user`'s Slack profile (users.info: name, time zone), cached; empty when Slack will
        not say, so a message is never lost for want of a time zone."""
        if user not in self._profiles:
            try:
                response = await self._call(self.client.users_info, user, user=user)
            except (RetryLater, Unreachable):
                return {}
            self._profiles[user] = response["user"]
        return self._profiles[user]


def _name_of(profile: dict) -> str | None:
    names = profile.get("profile") or {}
    return names.get("display_name") or profile.get("real_name") or names.get("real_name") or None


def verbs() -> list[tuple[str, str]]:
    """Every `/crm` verb with its help line: commands and flows, in menu order."""
    entries = {name: (c.order, c.help) for name, c in COMMANDS.items()}
    for name, flow in FLOWS.items():
        entries.setdefault(name, (flow.order, flow.help))
    return [(name, text) for name, (_, text) in sorted(entries.items(), key=lambda e: (e[1][0], e[0]))]
