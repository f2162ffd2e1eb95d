"""The Telegram surface: python-telegram-bot 22 adapted to the neutral conversation layer.

`TelegramChannel(settings, router)` turns updates into `Inbound` messages for
`router.handle`, and renders the replies natively (HTML, inline keyboards, share-contact
keyboard, photos and documents). Updates of one chat are handled one after another, different
chats concurrently. Long polling by default; a webhook when `TELEGRAM_WEBHOOK_URL` is set.

Direct replies are paced here (about 1 message/s per chat, 20/min per group, 30/s overall) and
retried after a 429. `send`/`edit` serve the outbox sender, which paces notifications itself:
they make one attempt and raise only `Unreachable` or `RetryLater`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.base import SORRY, RetryLater, Unreachable
from bot.telegram_inbound import from_message, from_press
from bot.telegram_render import Outgoing, messages_for, to_html
from config.settings import Settings, SettingsError
from conversations.commands import load_all as load_commands
from conversations.flows import load_all as load_flows
from conversations.forms import FLOWS
from conversations.messages import Address, Inbound, Reply
from conversations.registry import COMMANDS
from conversations.rich import Rich

log = logging.getLogger(__name__)

FLOW_BUTTONS = ("nav:", "ans:", "say:")  # buttons that answer a flow's question
MAX_ATTEMPTS = 5  # tries of one direct reply through 429s, outages and migrations
NETWORK_BACKOFF_S = 0.5  # first wait after a 5xx/timeout/drop on a direct reply, then doubled
SAFETY = 1.05  # a 5% margin under the limits absorbs network jitter at Telegram's counter
# Telegram asks for about one message a second per chat but tolerates short bursts: a reply of
# a few messages (an answer's echo, the next question, a card) goes out at once.
CHAT_BURST = 3
_REMEMBERED = 2000  # message ids kept for edits (questions, keyed cards)
_GONE = ("chat not found", "user is deactivated", "bot was kicked", "not enough rights",
         "have no rights", "need administrator rights")

_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")

T = TypeVar("T")


@dataclass(frozen=True)
class SendLimits:
    """Telegram's documented limits, as seconds between two sends."""

    overall_per_s: float = 30.0
    chat_interval: float = 1.0
    group_interval: float = 3.0  # 20 messages a minute


class Pacer:
    """Start times for sends: spaced overall and per chat (group chats have negative ids)."""

    def __init__(self, limits: SendLimits, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = monotonic
        self._next_any = 0.0
        self._next_chat: dict[str, float] = {}

    def _rule(self, chat_id: str) -> tuple[float, int]:
        """(seconds between sends, burst) for a chat; groups get no burst (20 a minute)."""
        if chat_id.startswith("-"):
            return SAFETY * self._limits.group_interval, 1
        return SAFETY * self._limits.chat_interval, CHAT_BURST

    def reserve(self, chat_id: str) -> float:
        """Book the next slot for `chat_id`; returns the seconds to wait for it.

        Per chat this is GCRA: `_next_chat` is when the chat's allowance is fully recovered,
        and up to `burst` sends may start before it."""
        now = self._clock()
        interval, burst = self._rule(chat_id)
        recovered = max(self._next_chat.get(chat_id, 0.0), now)
        start = max(now, self._next_any, recovered - (burst - 1) * interval)
        self._next_any = start + SAFETY / self._limits.overall_per_s
        self._next_chat[chat_id] = max(recovered, start) + interval
        if len(self._next_chat) > _REMEMBERED:  # forget chats whose slot is long past
            self._next_chat = {c: t for c, t in self._next_chat.items() if t > now}
        return start - now

    def pause(self, chat_id: str, seconds: float) -> None:
        """Telegram said "retry after": keep off this chat for that long."""
        interval, burst = self._rule(chat_id)
        until = self._clock() + seconds + (burst - 1) * interval  # no send before now + seconds
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), until)

    async def wait(self, chat_id: str) -> None:
        delay = self.reserve(chat_id)
        if delay > 0:
            await asyncio.sleep(delay)


class PerChatUpdates(BaseUpdateProcessor):
    """Process updates of one chat in arrival order, different chats concurrently (a reply to
    question 1 must not race the answer to question 2)."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock, users = self._locks.get(chat.id, (asyncio.Lock(), 0))
        self._locks[chat.id] = (lock, users + 1)
        try:
            async with lock:
                await coroutine
        finally:
            lock, users = self._locks[chat.id]
            if users == 1:
                del self._locks[chat.id]
            else:
                self._locks[chat.id] = (lock, users - 1)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""


def api_urls(api_url: str | None) -> tuple[str, str]:
    """PTB's `base_url` and `base_file_url` for `TELEGRAM_API_URL` (`http://host:8081/bot` or
    just `http://host:8081`); files are served from the same server under `/file/bot`."""
    if not api_url:
        return "https://api.telegram.org/bot", "https://api.telegram.org/file/bot"
    root = api_url.rstrip("/").removesuffix("/bot")
    return f"{root}/bot", f"{root}/file/bot"


def command_menu() -> list[BotCommand]:
    """Every command and flow with its one-line help, in /help order, as Telegram accepts them
    (names [a-z0-9_]{1,32}, descriptions <= 256 characters, at most 100 entries)."""
    load_commands()
    load_flows()
    entries: dict[str, tuple[int, str]] = {}
    for command in COMMANDS.values():
        entries[command.name] = (command.order, command.help)
    for flow in FLOWS.values():
        entries.setdefault(flow.name, (flow.order, flow.help))
    ordered = sorted(entries.items(), key=lambda item: (item[1][0], item[0]))
    menu = [
        BotCommand(name, _one_line(help_text or name))
        for name, (_, help_text) in ordered
        if _COMMAND_NAME.fullmatch(name)
    ]
    return menu[:100]


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 256 else line[:255] + "…"


def retry_seconds(err: RetryAfter) -> float:
    """`retry_after` in seconds (a timedelta with PTB_TIMEDELTA on, else a number)."""
    value = err.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramChannel:
    """The Telegram bot. `main.py` calls `start()` and `stop()`; the outbox sender `send()`."""

    platform = "telegram"

    def __init__(
        self,
        settings: Settings,
        router,
        *,
        request: BaseRequest | None = None,
        limits: SendLimits = SendLimits(),
        poll_timeout: float = 10.0,
    ) -> None:
        if settings.telegram_bot_token is None:
            raise SettingsError(
                "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token "
                "in .env (see README, Telegram)."
            )
        if settings.telegram_webhook_url and not settings.telegram_webhook_secret:
            raise SettingsError(
                "TELEGRAM_WEBHOOK_URL is set but TELEGRAM_WEBHOOK_SECRET is not: choose a secret "
                "(1-256 characters A-Z a-z 0-9 _ -), e.g. TELEGRAM_WEBHOOK_SECRET=k3y_f0r_hooks"
            )
        # Opt in to PTB's coming timedelta durations: without it every 429 emits a
        # deprecation warning (RetryAfter reads its own retry_after).
        os.environ.setdefault("PTB_TIMEDELTA", "true")
        # httpx logs every request URL at INFO, and the URL contains the bot token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.settings = settings
        self.router = router
        self._poll_timeout = poll_timeout
        self._pacer = Pacer(limits)
        self._migrated: dict[str, str] = {}  # old chat id -> new (group became supergroup)
        # chat -> (open question's message id, whether it shows inline buttons)
        self._questions: OrderedDict[str, tuple[int, bool]] = OrderedDict()
        self._keyed: OrderedDict[tuple[str, str], int] = OrderedDict()  # (chat, edit_key) -> id
        self._contact_keyboards: set[str] = set()  # chats showing the share-contact keyboard
        self.app = self._build(request)

    def _build(self, request: BaseRequest | None) -> Application:
        base_url, base_file_url = api_urls(self.settings.telegram_api_url)
        builder = (
            Application.builder()
            .token(self.settings.telegram_bot_token.get_secret_value())
            .base_url(base_url)
            .base_file_url(base_file_url)
            .concurrent_updates(PerChatUpdates())
            .job_queue(None)  # schedules live in CRM tables (jobs/), not in PTB's memory
        )
        if request is not None:
            builder = builder.request(request)
        app = builder.build()
        app.add_handler(CallbackQueryHandler(self._on_press))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE, self._on_message))
        app.add_error_handler(self._on_error)
        return app

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def username(self) -> str | None:
        """The bot's @username (known after `start`), for invite deep links."""
        try:
            return self.app.bot.username
        except RuntimeError:  # not initialized yet
            return None

    async def start(self) -> None:
        try:
            await self.app.initialize()
        except InvalidToken:
            await self.app.bot.shutdown()  # close its HTTP clients
            # `from None`: PTB's own message quotes the token, which must not reach the logs.
            raise SettingsError(
                "Telegram refused TELEGRAM_BOT_TOKEN: copy it again from @BotFather "
                "(it looks like 7412345678:AAF...)."
            ) from None
        await self._register_commands()
        await self.app.start()
        url = self.settings.telegram_webhook_url
        if url:
            await self.app.updater.start_webhook(
                listen=self.settings.telegram_webhook_listen,
                port=self.settings.telegram_webhook_port,
                url_path=urlparse(url).path.lstrip("/"),
                webhook_url=url,
                secret_token=self.settings.telegram_webhook_secret.get_secret_value(),
            )
            log.info("Telegram: webhook at %s", url)
        else:
            await self.app.updater.start_polling(timeout=self._poll_timeout)
            log.info("Telegram: polling as @%s", self.app.bot.username)

    async def stop(self) -> None:
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def _register_commands(self) -> None:
        """Fill the command menu from the registry so every command shows its one-line help."""
        await self.app.bot.set_my_commands(command_menu())

    # --- inbound -------------------------------------------------------------------------------

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        inbox = self.settings.data_dir / "inbox"
        inbound = await from_message(update, context.bot, inbox)
        if inbound is not None:
            await self._route(inbound)

    async def _on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        # Answer first: it stops the button's spinner, and a late answer is refused by Telegram.
        try:
            await query.answer()
        except TelegramError as err:
            log.info("Telegram: could not answer a callback query: %s", err)
        if not query.data:
            return
        inbound = from_press(update, query)
        pressed = query.message.message_id if query.message else None
        await self._route(inbound, pressed)

    async def _route(self, inbound: Inbound, pressed: int | None = None) -> None:
        async def progress(reply: Reply) -> None:
            await self._deliver(inbound.chat_id, [reply], pressed)

        replies = await self.router.handle(inbound, progress)
        in_flow = bool(inbound.text) or (inbound.action or "").startswith(FLOW_BUTTONS)
        try:
            await self._deliver(inbound.chat_id, replies, pressed, in_flow=in_flow)
        except Unreachable:
            log.info("Telegram: chat %s is unreachable; replies dropped", inbound.chat_id)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """One place for handler errors: log, and tell the user their flow is intact."""
        log.error("Telegram: handler failed", exc_info=context.error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        try:
            await self._deliver(str(update.effective_chat.id), [Reply.say(SORRY)])
        except (Unreachable, RetryLater, TelegramError) as err:
            log.info("Telegram: could not apologise to %s: %s", update.effective_chat.id, err)

    # --- direct replies ------------------------------------------------------------------------

    async def _deliver(
        self, chat_id: str, replies: list[Reply], pressed: int | None = None, *, in_flow: bool = False
    ) -> None:
        """Send `replies` to `chat_id` in order, editing answered questions and keyed cards.

        `pressed` is the message whose button was pressed; `in_flow` says the user answered a
        question (typed text or a flow button), so replies without a new question end the flow.
        """
        for reply in replies:
            if reply.answered:
                await self._close_question(chat_id, reply.answered, fallback=pressed)
            elif reply.ask:
                # Asked again (an error, a list to pick from): only the newest copy keeps buttons.
                await self._close_question(chat_id, None)
            keyed = None
            if reply.edit_key:
                # A card's button edits that card, even one sent before a restart.
                keyed = self._keyed.get((chat_id, reply.edit_key)) or pressed
            if keyed is not None and not (reply.image or reply.file):
                try:
                    await self._paced(chat_id, lambda chat, m=keyed: self._edit_text(chat, m, reply))
                    continue
                except BadRequest as err:  # a photo, or too old: send the card anew instead
                    log.info("Telegram: could not edit %s, sending anew: %s", keyed, err)
            last = None
            for outgoing in messages_for(reply):
                last = await self._paced(chat_id, lambda chat, o=outgoing: self._send_one(chat, o))
            if last is not None:
                self._remember(chat_id, reply, last.message_id)
        if in_flow and replies and not any(reply.ask for reply in replies):
            # The flow is over (saved or cancelled): its last question keeps no live buttons.
            await self._close_question(chat_id, None)

    async def _close_question(self, chat_id: str, answered: str | None, fallback: int | None = None) -> None:
        """Turn the open question into "✅ Label: value" without its buttons: a clean log.

        `fallback` is the pressed message, used when the question is no longer remembered
        (after a restart)."""
        question, has_buttons = self._questions.pop(chat_id, (fallback, True))
        if question is None:
            return
        if chat_id in self._contact_keyboards:
            # A share-contact keyboard is removed only by a new message: log the answer in one.
            if answered:
                text = to_html(Rich.of("✅ ", answered))
                await self._paced(chat_id, lambda chat: self._send_one(chat, Outgoing(text)))
            return
        bot = self.app.bot
        try:
            if answered:
                text = to_html(Rich.of("✅ ", answered))
                await self._paced(chat_id, lambda chat: bot.edit_message_text(
                    text, chat_id=chat, message_id=question, parse_mode=ParseMode.HTML))
            elif has_buttons:
                await self._paced(chat_id, lambda chat: bot.edit_message_reply_markup(
                    chat_id=chat, message_id=question, reply_markup=None))
        except BadRequest as err:  # deleted, too old to edit, or already without buttons
            log.info("Telegram: could not close question %s: %s", question, err)

    async def _paced(self, chat_id: str, call: Callable[[str], Awaitable[T]]) -> T:
        """Run `call(chat)` within the pacing, waiting out 429s, brief outages (5xx, timeouts,
        dropped connections) and following migrations."""
        chat = self._migrated.get(chat_id, chat_id)
        for attempt in range(MAX_ATTEMPTS):
            await self._pacer.wait(chat)
            try:
                return await call(chat)
            except RetryAfter as err:
                seconds = retry_seconds(err)
                log.info("Telegram: 429 for chat %s, retrying in %ss", chat, seconds)
                self._pacer.pause(chat, seconds)
            except ChatMigrated as err:
                chat = self._follow(chat_id, err)
            except Forbidden as err:
                raise Unreachable(str(err)) from err
            except BadRequest:  # a NetworkError subclass, but a refusal: retrying cannot help
                raise
            except NetworkError as err:
                # Without this the reply is lost and the user told "something went wrong" for
                # an action that did happen. A timed-out send may have arrived: at worst the
                # reply shows twice.
                seconds = NETWORK_BACKOFF_S * 2**attempt
                log.info("Telegram: %s for chat %s, retrying in %ss", err, chat, seconds)
                self._pacer.pause(chat, seconds)
        raise RetryLater(1.0, f"chat {chat} still failing after {MAX_ATTEMPTS} tries")

    def _follow(self, chat_id: str, err: ChatMigrated) -> str:
        new = str(err.new_chat_id)
        log.info("Telegram: chat %s migrated to %s", chat_id, new)
        self._migrated[chat_id] = new
        return new

    def _remember(self, chat_id: str, reply: Reply, message_id: int) -> None:
        if reply.ask:
            self._questions[chat_id] = (message_id, bool(reply.choices))
            self._questions.move_to_end(chat_id)
        if reply.edit_key:
            self._keyed[(chat_id, reply.edit_key)] = message_id
            self._keyed.move_to_end((chat_id, reply.edit_key))
        for memo in (self._questions, self._keyed):
            while len(memo) > _REMEMBERED:
                memo.popitem(last=False)

    async def _send_one(self, chat: str, outgoing: Outgoing) -> Message:
        bot = self.app.bot
        markup = outgoing.markup
        if isinstance(markup, ReplyKeyboardMarkup):
            self._contact_keyboards.add(chat)
        elif markup is None and chat in self._contact_keyboards:
            # The share-contact keyboard stays up until a message removes it.
            markup = ReplyKeyboardRemove()
            self._contact_keyboards.discard(chat)
        caption = outgoing.text or None
        if outgoing.photo is not None:
            return await bot.send_photo(
                chat, outgoing.photo.path.read_bytes(), caption=caption,
                parse_mode=ParseMode.HTML, reply_markup=markup, filename=outgoing.photo.filename,
            )
        if outgoing.document is not None:
            return await bot.send_document(
                chat, outgoing.document.path.read_bytes(), caption=caption,
                parse_mode=ParseMode.HTML, reply_markup=markup,
                filename=outgoing.document.filename,
            )
        return await bot.send_message(
            chat, outgoing.text, parse_mode=ParseMode.HTML, reply_markup=markup
        )

    async def _edit_text(self, chat: str, message_id: int, reply: Reply) -> None:
        """Replace a message's text and inline buttons with (the first piece of) `reply`."""
        first = messages_for(reply)[0]
        # Only inline keyboards can be edited onto a message.
        markup = first.markup if isinstance(first.markup, InlineKeyboardMarkup) else None
        try:
            await self.app.bot.edit_message_text(
                first.text, chat_id=chat, message_id=message_id, parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
        except BadRequest as err:
            if "not modified" not in str(err).lower():  # pressing "Done" twice is fine
                raise

    # --- notifications (the outbox sender) -----------------------------------------------------

    async def send(self, address: Address, reply: Reply) -> str:
        """Deliver one notification; returns the id of its last message (for later edits)."""
        chat_id = address.chat_id
        pieces = messages_for(reply)
        if not pieces:
            return ""
        first, *rest = pieces
        last = await self._once(chat_id, lambda chat: self._send_one(chat, first))
        # Once the first piece is out, the rest wait out 429s here: a retry of the whole row
        # would repeat the first piece.
        for outgoing in rest:
            last = await self._paced(chat_id, lambda chat, o=outgoing: self._send_one(chat, o))
        self._remember(chat_id, reply, last.message_id)
        return str(last.message_id)

    async def edit(self, address: Address, message_ref: str, reply: Reply) -> None:
        """Replace an earlier notification's text and buttons (e.g. a task marked done); a
        message that cannot be edited any more (deleted, a photo) gets a new one instead."""
        try:
            await self._once(
                address.chat_id, lambda chat: self._edit_text(chat, int(message_ref), reply)
            )
        except RetryLater as err:
            if not isinstance(err.__cause__, BadRequest):
                raise
            log.info("Telegram: cannot edit %s (%s); sending anew", message_ref, err.__cause__)
            await self.send(address, reply)

    async def _once(self, chat_id: str, call: Callable[[str], Awaitable[T]]) -> T:
        """One attempt (plus following a migration), mapped to `Unreachable` / `RetryLater`."""
        chat = self._migrated.get(chat_id, chat_id)
        # The outbox sender already waited for this slot; booking it keeps direct replies behind.
        self._pacer.reserve(chat)
        for _ in range(2):
            try:
                return await call(chat)
            except ChatMigrated as err:
                chat = self._follow(chat_id, err)
            except RetryAfter as err:
                seconds = retry_seconds(err)
                self._pacer.pause(chat, seconds)
                raise RetryLater(seconds, str(err)) from err
            except Forbidden as err:
                raise Unreachable(str(err)) from err
            except BadRequest as err:
                if any(gone in str(err).lower() for gone in _GONE):
                    raise Unreachable(str(err)) from err
                raise RetryLater(60.0, f"Telegram refused the message: {err}") from err
            except NetworkError as err:  # includes TimedOut
                raise RetryLater(5.0, f"network: {err}") from err
        raise Unreachable(f"chat {chat_id} keeps migrating")
