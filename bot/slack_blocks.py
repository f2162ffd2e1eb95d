"""Block Kit rendering for Slack: messages with buttons, modals built from a flow's spec, the
App Home tab. Pure functions (no I/O), so they are easy to test and respect Slack's limits.

Every user-supplied string goes through `escape`, so a lead named `<!channel>` or `<@U123>`
is shown as typed and pings nobody.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from conversations.engine import ANSWER, NAV_CANCEL, NAV_OK
from conversations.forms import CHOICE, DAY, PICKER_KINDS, WHEN, Field
from conversations.messages import Choice, Reply
from conversations.rich import Rich, Span

# Slack's documented limits.
SECTION_CHARS = 3000
BUTTON_CHARS = 75
OPTION_CHARS = 75
ACTIONS_PER_BLOCK = 25
MAX_OPTIONS = 100
MAX_BLOCKS = 100
PLACEHOLDER_CHARS = 150
LABEL_CHARS = 2000

# action_id prefixes the channel listens for.
CHOICE_ACTION = "crm_choice_"  # a Choice button; its value is the Choice.value
DAY_ACTION = "crm_day"  # the datepicker offered with a "day" question in a DM
HOME_FORM_ACTION = "crm_home_form_"  # App Home quick action opening a flow's modal
HOME_CMD_ACTION = "crm_home_cmd_"  # App Home quick action running a command in the DM
HOME_ACT_ACTION = "crm_home_act_"  # App Home button on a line (a task's Done); value: the action
FORM_CALLBACK = "crm_form:"  # modal callback_id prefix, followed by the flow name
PICK_SUFFIX = "__pick"  # block_id of a picker's "recent records" select
INPUT_ACTION = "value"  # action_id of every modal input

_STYLES = {"plain": "{}", "bold": "*{}*", "italic": "_{}_", "code": "`{}`"}


def escape(text: str) -> str:
    """Escape the three characters Slack treats as markup in mrkdwn and plain `text`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tight(text: Rich) -> Rich:
    """Move a styled span's outer spaces and newlines out of it: Slack ignores `*` or `_`
    markers that touch a space, so `*Phone: *` would show its stars."""
    spans: list[Span] = []
    for span in text.spans:
        core = span.text.strip()
        if span.style in ("plain", "link") or core == span.text:
            spans.append(span)
            continue
        if not core:  # only spaces: nothing to style
            spans.append(Span(span.text))
            continue
        start = span.text.index(core)
        spans += [Span(span.text[:start]), Span(core, span.style), Span(span.text[start + len(core):])]
    return Rich(tuple(spans))


def mrkdwn(text: Rich) -> str:
    """A `Rich` value as Slack mrkdwn, every span escaped."""
    return _tight(text).render(escape, _STYLES, lambda label, url: f"<{escape(url)}|{label}>")


def plain_text(text: str, limit: int) -> dict:
    return {"type": "plain_text", "text": _clip(text, limit) or " ", "emoji": True}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sections(body: str) -> list[dict]:
    """Long text split into sections of at most 3000 characters, on line breaks when possible."""
    blocks = []
    while body:
        chunk = body[:SECTION_CHARS]
        if len(body) > SECTION_CHARS and "\n" in chunk:
            chunk = chunk[: chunk.rindex("\n") + 1]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
        body = body[len(chunk):]
    return blocks


def button(label: str, value: str, action_id: str) -> dict:
    element = {"type": "button", "text": plain_text(label, BUTTON_CHARS), "value": value, "action_id": action_id}
    if value == NAV_OK:
        element["style"] = "primary"
    elif value == NAV_CANCEL:
        element["style"] = "danger"
    return element


def _choice_blocks(choices: tuple[Choice, ...], kind: str | None) -> list[dict]:
    elements: list[dict] = [button(c.label, c.value, f"{CHOICE_ACTION}{i}") for i, c in enumerate(choices)]
    if kind == DAY:
        elements.append({"type": "datepicker", "action_id": DAY_ACTION,
                         "placeholder": plain_text("Pick a day", PLACEHOLDER_CHARS)})
    return [
        {"type": "actions", "elements": elements[i: i + ACTIONS_PER_BLOCK]}
        for i in range(0, len(elements), ACTIONS_PER_BLOCK)
    ]


def message(reply: Reply) -> dict:
    """`chat.postMessage` / `chat.update` arguments (text fallback and blocks) for a reply."""
    body = mrkdwn(reply.text)
    blocks = _sections(body) + _choice_blocks(reply.choices, reply.kind)
    return {"text": _clip(escape(reply.text.plain), 3000) or " ", "blocks": blocks[:MAX_BLOCKS]}


def answered(text: str) -> dict:
    """What a question message becomes once answered: the answer, no buttons."""
    body = "✓ " + escape(text)
    return {"text": body, "blocks": _sections(body)}


# --- modals ---------------------------------------------------------------------------------


def _option(choice: Choice) -> dict:
    return {"text": plain_text(choice.label, OPTION_CHARS), "value": choice.value}


def _text_input(fld: Field, initial: str | None, placeholder: str | None) -> dict:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": INPUT_ACTION, "multiline": fld.multiline}
    if initial:
        element["initial_value"] = initial
    if placeholder:
        element["placeholder"] = plain_text(placeholder, PLACEHOLDER_CHARS)
    return element


def _input(fld: Field, element: dict, *, block_id: str | None = None, label: str | None = None,
           optional: bool | None = None) -> dict:
    # Fields that apply only after some answers are optional in Slack: the router's
    # validators decide, and report a missing answer inline like any other error.
    return {
        "type": "input",
        "block_id": block_id or fld.name,
        "label": plain_text(label or fld.label, LABEL_CHARS),
        "optional": fld.optional or fld.when is not None if optional is None else optional,
        "element": element,
    }


def _field_blocks(fld: Field, initial: str | None, options: list[Choice]) -> list[dict]:
    if fld.kind == CHOICE and 0 < len(options) <= MAX_OPTIONS:
        element: dict[str, Any] = {"type": "static_select", "action_id": INPUT_ACTION,
                                   "options": [_option(c) for c in options],
                                   "placeholder": plain_text(fld.placeholder or "Choose", PLACEHOLDER_CHARS)}
        chosen = [c for c in options if initial in (c.label, c.value.removeprefix(ANSWER))]
        if chosen:
            element["initial_option"] = _option(chosen[0])
        return [_input(fld, element)]
    if fld.kind == DAY:
        element = {"type": "datepicker", "action_id": INPUT_ACTION}
        day = _iso_day(initial)
        if day:
            element["initial_date"] = day
        return [_input(fld, element)]
    if fld.kind in PICKER_KINDS:
        return _picker_blocks(fld, initial, options)
    hint = fld.placeholder or ("e.g. tomorrow 10am" if fld.kind == WHEN else None)
    if fld.kind == CHOICE and options:  # too many options for a select: type the name
        hint = hint or "Type the name"
    return [_input(fld, _text_input(fld, initial, hint))]


def _picker_blocks(fld: Field, initial: str | None, options: list[Choice]) -> list[dict]:
    """A record picker: a text box (name, or last digits of a phone) validated by the same
    parser as in chat, plus a select of recent records when there are any."""
    recent = options[:MAX_OPTIONS]
    chosen = [c for c in recent if initial == c.label]
    hint = fld.placeholder or "Name or last 4 digits of phone"
    blocks = [_input(fld, _text_input(fld, None if chosen else initial, hint),
                     optional=True if recent else None)]
    if recent:
        select: dict[str, Any] = {"type": "static_select", "action_id": INPUT_ACTION,
                                  "options": [_option(c) for c in recent],
                                  "placeholder": plain_text("Pick a recent one", PLACEHOLDER_CHARS)}
        if chosen:
            select["initial_option"] = _option(chosen[0])
        blocks.append(_input(fld, select, block_id=fld.name + PICK_SUFFIX,
                             label=f"…or a recent {fld.kind}", optional=True))
    return blocks


def _iso_day(text: str | None) -> str | None:
    try:
        return date.fromisoformat(text).isoformat() if text else None
    except ValueError:
        return None


def modal(spec, flow_name: str) -> dict:
    """A modal for `router.form_spec(...)`'s FormSpec: one input per shown field (two for
    pickers with recent records)."""
    shown = set(getattr(spec, "shown", None) or [f.name for f in spec.flow.fields])
    blocks: list[dict] = []
    for fld in (f for f in spec.flow.fields if f.name in shown):
        blocks += _field_blocks(fld, spec.values.get(fld.name), list(spec.options.get(fld.name, [])))
    return {
        "type": "modal",
        "callback_id": FORM_CALLBACK + flow_name,
        "title": plain_text(spec.flow.title, 24),
        "submit": plain_text("Save", 24),
        "close": plain_text("Cancel", 24),
        "private_metadata": spec.private or "",
        "blocks": blocks[:MAX_BLOCKS],
    }


def submitted_values(view: dict) -> dict[str, str]:
    """The raw text per field from a view_submission: typed text, a selected option's value
    (without the `ans:` prefix), or a picked date (ISO). A picker's typed text wins over its
    recent-records select, whose pick is sent as `#<id>`."""
    raw: dict[str, str] = {}
    picked: dict[str, str] = {}
    for block_id, actions in view.get("state", {}).get("values", {}).items():
        state = actions.get(INPUT_ACTION) or next(iter(actions.values()), {})
        value = state.get("value") or state.get("selected_date") or (
            (state.get("selected_option") or {}).get("value", "").removeprefix(ANSWER)
        )
        if block_id.endswith(PICK_SUFFIX):
            # "#12" is how every picker's parser reads a record id.
            picked[block_id.removesuffix(PICK_SUFFIX)] = f"#{value}" if value.isdigit() else value
        else:
            raw[block_id] = value or ""
    for name, value in picked.items():
        if not raw.get(name, "").strip():
            raw[name] = value
    return raw


def error_map(errors: dict[str, str], view: dict) -> dict[str, str]:
    """Errors keyed by a block of this view (an error about a field without a block goes on
    the first input, prefixed with the field's name, so it is never silently dropped; the
    empty name is a message about the whole form)."""
    blocks = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input"]
    out: dict[str, str] = {}
    for name, text in errors.items():
        if name in blocks:
            out[name] = out.get(name, "") + text
        elif blocks:
            key = blocks[0]
            note = f"{name}: {text}" if name else text
            out[key] = (out[key] + " " if key in out else "") + note
    return out


# --- help and App Home ----------------------------------------------------------------------


def help_message(commands: list[tuple[str, str]]) -> dict:
    """`/crm` alone: every verb with its one-line help."""
    lines = ["*What I can do* — type `/crm <verb>`:"]
    lines += [f"• `/crm {escape(name)}` — {escape(text)}" for name, text in commands]
    lines.append("_Example:_ `/crm newlead Acme +971501234567`")
    body = "\n".join(lines)
    return {"text": escape("Commands: " + ", ".join(n for n, _ in commands)), "blocks": _sections(body)}


def home_view(sections: list[tuple[str, list]], forms: list[tuple[str, str]],
              commands: list[tuple[str, str]], note: str | None = None) -> dict:
    """The App Home tab: quick-action buttons, then titled sections. A section's lines are
    mrkdwn strings (already escaped by the caller) or `(line, Choice)` pairs, shown with the
    choice as a button beside the line."""
    blocks: list[dict] = [{"type": "header", "text": plain_text("ChatCRM", 150)}]
    if note:
        blocks += _sections(note)
    buttons = [button(label, name, f"{HOME_FORM_ACTION}{name}") for name, label in forms]
    buttons += [button(label, name, f"{HOME_CMD_ACTION}{name}") for name, label in commands]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:ACTIONS_PER_BLOCK]})
    acting = 0
    for title, lines in sections:
        blocks.append({"type": "divider"})
        plain = [line for line in lines if isinstance(line, str)]
        head = f"*{escape(title)}*"
        if not lines:
            head += "\n_Nothing here._"
        elif plain:
            head += "\n" + "\n".join(plain)
        blocks += _sections(head)
        for line, choice in (line for line in lines if not isinstance(line, str)):
            section = _sections(line)[0]
            section["accessory"] = button(choice.label, choice.value, f"{HOME_ACT_ACTION}{acting}")
            blocks.append(section)
            acting += 1
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}
