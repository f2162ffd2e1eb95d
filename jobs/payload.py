"""A `Reply` <-> JSON, so an outbox row can carry a notification with its styling and buttons."""

from __future__ import annotations

from pathlib import Path

from conversations.messages import Choice, OutFile, Reply
from conversations.rich import Rich, Span


def reply_to_json(reply: Reply) -> dict:
    """A JSON-safe dict for `reply` (spans, choices, image/file paths, edit key)."""
    data: dict = {
        "spans": [_span_to_json(s) for s in reply.text.spans],
    }
    if reply.choices:
        data["choices"] = [[c.label, c.value] for c in reply.choices]
    for name in ("image", "file"):
        out = getattr(reply, name)
        if out is not None:
            data[name] = {"path": str(out.path), "filename": out.filename, "caption": out.caption}
    if reply.edit_key:
        data["edit_key"] = reply.edit_key
    return data


def reply_from_json(data: dict) -> Reply:
    """The inverse of `reply_to_json`."""
    spans = tuple(Span(s["text"], s.get("style", "plain"), s.get("url")) for s in data["spans"])
    return Reply(
        text=Rich(spans),
        choices=tuple(Choice(label, value) for label, value in data.get("choices", ())),
        image=_out_file(data.get("image")),
        file=_out_file(data.get("file")),
        edit_key=data.get("edit_key"),
    )


def _span_to_json(span: Span) -> dict:
    out: dict = {"text": span.text}
    if span.style != "plain":
        out["style"] = span.style
    if span.url:
        out["url"] = span.url
    return out


def _out_file(data: dict | None) -> OutFile | None:
    if not data:
        return None
    return OutFile(Path(data["path"]), data["filename"], data.get("caption"))
