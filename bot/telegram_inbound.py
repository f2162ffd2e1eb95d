"""Telegram updates -> neutral `Inbound` messages (text, button presses, shared contacts,
forwarded client messages, photos and documents saved under the data directory)."""
from __future__ import annotations

import re
from pathlib import Path

from telegram import (
    Bot,
    CallbackQuery,
    Message,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    Update,
)
from telegram.constants import ChatType

from conversations.messages import Attachment, Forwarded, Inbound, SharedContact

PLATFORM = "telegram"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_group(message: Message) -> bool:
    return message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


def command_text(text: str, bot_username: str) -> str | None:
    """`/cmd@ThisBot args` -> `/cmd args`; None when the command is for another bot."""
    if not text.startswith("/"):
        return text
    head, sep, rest = text.partition(" ")
    name, at, target = head.partition("@")
    if at and target.lower() != bot_username.lower():
        return None
    return name + sep + rest


def wants_bot(message: Message, bot_id: int) -> bool:
    """In a group the bot only listens to commands and to replies to its own messages."""
    if not is_group(message):
        return True
    if (message.text or "").startswith("/"):
        return True
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == bot_id)


def from_press(update: Update, query: CallbackQuery) -> Inbound:
    message = query.message
    return Inbound(
        platform=PLATFORM,
        chat_id=str(message.chat.id if message else query.from_user.id),
        user_id=str(query.from_user.id),
        action=query.data,
        display_name=query.from_user.full_name,
        message_ref=str(message.message_id) if message else None,
        event_key=str(update.update_id),
        is_group=bool(message and is_group(message)),
    )


async def from_message(update: Update, bot: Bot, inbox: Path) -> Inbound | None:
    """The `Inbound` for a message, or None when it is not meant for the bot."""
    message = update.message
    if message is None or message.from_user is None or not wants_bot(message, bot.id):
        return None
    text = message.text or message.caption
    if text is not None:
        text = command_text(text, bot.username or "")
        if text is None:
            return None
    forwarded = _forwarded(message)
    return Inbound(
        platform=PLATFORM,
        chat_id=str(message.chat.id),
        user_id=str(message.from_user.id),
        text=None if forwarded else text,
        display_name=message.from_user.full_name,
        message_ref=str(message.message_id),
        event_key=str(update.update_id),
        is_group=is_group(message),
        attachment=await _attachment(bot, message, inbox, update.update_id),
        contact=_contact(message),
        forwarded=forwarded,
    )


def _contact(message: Message) -> SharedContact | None:
    contact = message.contact
    if contact is None:
        return None
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or None
    phone = contact.phone_number.strip()
    # Telegram gives the number in international form, often without its "+".
    if phone.isdigit():
        phone = "+" + phone
    return SharedContact(phone=phone, name=name)


def _forwarded(message: Message) -> Forwarded | None:
    origin = message.forward_origin
    if origin is None:
        return None
    if isinstance(origin, MessageOriginUser):
        sender = origin.sender_user.full_name
    elif isinstance(origin, MessageOriginHiddenUser):
        sender = origin.sender_user_name
    elif isinstance(origin, MessageOriginChat):
        sender = origin.sender_chat.title
    elif isinstance(origin, MessageOriginChannel):
        sender = origin.chat.title
    else:
        sender = None
    return Forwarded(sender_name=sender, sent_at=origin.date, text=message.text or message.caption or "")


async def _attachment(bot: Bot, message: Message, inbox: Path, update_id: int) -> Attachment | None:
    """Download a photo (largest size) or document into `inbox`."""
    if message.photo:
        photo = message.photo[-1]
        file_id, filename, mime = photo.file_id, f"photo_{photo.file_unique_id}.jpg", "image/jpeg"
    elif message.document:
        doc = message.document
        file_id, filename, mime = doc.file_id, doc.file_name or "document", doc.mime_type
    else:
        return None
    inbox.mkdir(parents=True, exist_ok=True)
    # The update id keeps two uploads of "invoice.pdf" apart; the name is sanitised for the disk.
    path = inbox / f"{update_id}_{_UNSAFE.sub('_', filename)[-100:]}"
    tg_file = await bot.get_file(file_id)
    await tg_file.download_to_drive(path)
    return Attachment(path=path, filename=filename, size=path.stat().st_size, mime_type=mime)
