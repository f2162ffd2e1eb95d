"""Turning what Slack sends (slash command text, DM text, shared files) into neutral values."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

import aiohttp

from conversations.messages import Attachment

MAX_DOWNLOAD = 20 * 1024 * 1024  # bytes; bigger files are refused before they fill the disk

# Slack rewrites typed links, e-mails and phones as <mailto:a@b.co|a@b.co>, <tel:+1..|+1..>,
# <https://x.co>; the router wants what the user typed.
_WRAPPED = re.compile(r"<(?:mailto:|tel:|https?://)[^|>]*\|([^>]*)>")
_BARE_URL = re.compile(r"<((?:https?|mailto|tel):[^|>]+)>")


def typed_text(text: str | None) -> str:
    """Text as the user typed it: links unwrapped and Slack's `&amp; &lt; &gt;` undone."""
    if not text:
        return ""
    text = _BARE_URL.sub(lambda m: m.group(1).removeprefix("mailto:").removeprefix("tel:"), _WRAPPED.sub(r"\1", text))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def split_command(text: str | None) -> tuple[str, str]:
    """`/crm <verb> [arguments]` text -> (verb in lower case, the rest)."""
    verb, _, args = typed_text(text).strip().partition(" ")
    return verb.lower().lstrip("/"), args.strip()


def is_direct(channel_id: str | None) -> bool:
    """Direct-message conversation ids start with D (channels with C, private groups with G)."""
    return bool(channel_id) and channel_id.startswith("D")


async def download(file: dict, token: str, inbox: Path) -> Attachment | None:
    """Save a file shared in a DM under `inbox`; None when it cannot be fetched or is too big."""
    url = file.get("url_private_download") or file.get("url_private")
    size = int(file.get("size") or 0)
    if not url or size > MAX_DOWNLOAD:
        return None
    name = Path(file.get("name") or "file").name
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / f"{uuid.uuid4().hex[:12]}-{name}"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            if resp.status != 200:
                return None
            data = await resp.content.read(MAX_DOWNLOAD + 1)
    if len(data) > MAX_DOWNLOAD:
        return None
    path.write_bytes(data)
    return Attachment(path=path, filename=name, size=len(data), mime_type=file.get("mimetype"))
