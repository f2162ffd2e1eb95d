"""People commands: /invite, /join, /link, /team (with its buttons), /settings, /setchannel,
/channel, /history and /undo. Every button re-checks authorization in the use case it calls:
a value can be forged."""
from __future__ import annotations

import re
from datetime import datetime, time

from conversations.messages import Choice, Reply
from conversations.registry import Turn, action, action_value, command
from conversations.rich import Rich, bold, code, link
from handlers.audit import AuditLine, history_of, undo_last
from handlers.channels import (
    ALERT_KINDS,
    alert_kind,
    list_channels,
    register_channel,
    set_channel_alert,
    unregister_channel,
)
from handlers.contacts import contact_label, search_contacts
from handlers.errors import InvalidInput
from handlers.invites import add_member, create_invite, create_link_code, join, link_identity, platform_name
from handlers.team import (
    MAX_ID,
    MemberView,
    change_role,
    deactivate,
    handover_candidates,
    managers,
    member,
    set_manager,
    team,
)
from handlers.users import format_days, my_settings, parse_clock_range, update_settings
from storage.enums import Role
from storage.models import TeamChannel, User

MAX_MEMBER_BUTTONS = 30
HISTORY_LINES = 15
# Bookkeeping timestamps every change moves: noise in a history read on a phone.
HISTORY_HIDDEN = {"last_touched_at", "stage_changed_at", "closed_at"}
HISTORY_ENTITIES = ("contact", "deal", "task", "contract", "payment", "invoice", "interaction")
LINK_MINUTES = 15
SETTINGS_EXAMPLES = (
    "/settings timezone Asia/Dubai",
    "/settings hours 09:00-18:00",
    "/settings days sun-thu",
    "/settings quiet 20:00-08:00  (or: quiet off)",
    "/settings language ar",
)
STALE = "That button is out of date. Send /team again."


def _when(at: datetime, turn: Turn) -> str:
    return at.astimezone(turn.tz).strftime("%a %d %b, %H:%M")


def _clock(value: time | None) -> str:
    return value.strftime("%H:%M") if value else "off"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- invites and linking --------------------------------------------------------------------


# A Slack mention in a slash command: <@U0456|sara> (the manifest sets should_escape).
_SLACK_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,20})(?:\|([^>]*))?>")


@command("invite", "Invite someone: /invite rep (or manager)", order=80)
async def invite_command(turn: Turn, args: str) -> list[Reply]:
    mention = _SLACK_MENTION.search(args or "")
    if mention and turn.inbound.platform == "slack":
        return await _add_slack_member(turn, mention, _SLACK_MENTION.sub(" ", args))
    word = (args or "rep").split()[0].lower()
    if word not in {r.value for r in Role}:
        raise InvalidInput("Who are you inviting? Try /invite rep or /invite manager.", field="role")
    bot = turn.crm.settings.telegram_bot_username
    invite = await create_invite(turn.crm, turn.actor, Role(word), bot_username=bot)
    lines: list[Rich | str] = [
        Rich.of("🎟 Invite for a ", bold(word), f" (one use, until {_when(invite.expires_at, turn)})."),
    ]
    if invite.deep_link:
        lines.append(Rich.of("On Telegram they tap: ", link(invite.deep_link, invite.deep_link)))
    lines.append(Rich.of("Anywhere else they send: ", code(f"/join {invite.code}")))
    return [Reply(text=Rich.lines(lines))]


async def _add_slack_member(turn: Turn, mention: re.Match, rest: str) -> list[Reply]:
    """`/crm invite @user rep`: a workspace member added straight away, no code needed."""
    word = (rest.split() or ["rep"])[0].lower()
    if word not in {r.value for r in Role}:
        raise InvalidInput("Add them as what? Try /crm invite @user rep.", field="role")
    user_id, name = mention.group(1), mention.group(2) or ""
    await add_member(
        turn.crm, turn.actor, platform="slack", platform_user_id=user_id, display_name=name,
        role=Role(word), dm_address=f"slack:{user_id}",
    )
    return [Reply.say("✅ Added ", bold(name or user_id), f" as a {word}. They can use /crm now.")]


@command("join", "Join with an invite code: /join <code>", public=True, order=81)
async def join_command(turn: Turn, args: str) -> list[Reply]:
    if turn.actor is not None:
        return [Reply.say("You're already on ChatCRM. /help lists what you can do.")]
    if not args:
        raise InvalidInput("Send the code from your invite, like /join Ab3x_9QzK2mP.", field="code")
    msg = turn.inbound
    await join(
        turn.crm,
        code=args.split()[0],
        platform=msg.platform,
        platform_user_id=msg.user_id,
        display_name=msg.display_name or "",
        dm_address=None if msg.is_group else str(msg.address),
        timezone=msg.timezone,
    )
    return [Reply.say("🎉 Welcome to ChatCRM! Send /help to see what you can do, "
                      "and /settings to set your time zone and hours.")]


@command("link", "Use ChatCRM from a second app: /link", public=True, order=82)
async def link_command(turn: Turn, args: str) -> list[Reply]:
    msg = turn.inbound
    if args:
        actor = await link_identity(
            turn.crm,
            code=args.split()[0],
            platform=msg.platform,
            platform_user_id=msg.user_id,
            dm_address=None if msg.is_group else str(msg.address),
        )
        return [Reply.say(f"🔗 Linked. {platform_name(actor.platform or msg.platform)} and your other "
                          "app now share one pipeline.")]
    if turn.actor is None:
        raise InvalidInput("Send /link in the app you already use, then /link <code> here.", field="code")
    code_text = await create_link_code(turn.crm, turn.actor, ttl_minutes=LINK_MINUTES)
    return [Reply.say(
        "🔗 From your other app (Telegram, Slack), send this within ",
        f"{LINK_MINUTES} minutes: ", code(f"/link {code_text}"),
    )]


# --- /team and its buttons -----------------------------------------------------------------


def _member_line(view: MemberView, names: dict[int, str]) -> Rich:
    user = view.user
    boss = f" ({names[user.manager_id]})" if user.manager_id in names else ""
    platforms = ", ".join(view.platforms) or "no app"
    return Rich.of("• ", bold(user.display_name), f" — {user.role}", boss,
                   f" · {platforms} · {_plural(view.open_deals, 'open deal')}")


@command("team", "Your team: roles, apps, open deals", order=83)
async def team_command(turn: Turn, args: str) -> list[Reply]:
    members = await team(turn.crm, turn.actor)
    names = {m.user.id: m.user.display_name for m in members}
    lines = [Rich.of(bold(f"👥 Team ({len(members)})"))]
    lines += [_member_line(m, names) for m in members]
    others = [m for m in members if m.user.id != turn.actor.user_id][:MAX_MEMBER_BUTTONS]
    buttons = [Choice(f"⚙️ {m.user.display_name[:40]}", action_value("team", "m", m.user.id)) for m in others]
    if others:
        lines.append("Tap a name to change their role, manager, or deactivate them.")
    return [Reply(text=Rich.lines(lines), choices=tuple(buttons))]


def _ids(args: list[str], count: int) -> list[int] | None:
    """The first `count` args as ids, or None when a (forged or stale) value is malformed."""
    if len(args) < count or not all(a.isascii() and a.isdigit() and len(a) <= 10 for a in args[:count]):
        return None
    ids = [int(a) for a in args[:count]]
    return ids if all(i <= MAX_ID for i in ids) else None


@action("team")
async def team_action(turn: Turn, args: list[str]) -> list[Reply]:
    """`team:<verb>:<user id>[:<id or role>]`. Verbs: m (member card), r (set role), mv (pick a
    manager), mt (move to manager), d (pick who takes over), dt (deactivate)."""
    verb, rest = (args[0], args[1:]) if args else ("", [])
    handler = TEAM_VERBS.get(verb)
    if handler is None or turn.actor is None:
        return [Reply.say(STALE)]
    return await handler(turn, rest)


async def _card(turn: Turn, rest: list[str]) -> list[Reply]:
    ids = _ids(rest, 1)
    if ids is None:
        return [Reply.say(STALE)]
    view = await member(turn.crm, turn.actor, ids[0])
    user = view.user
    buttons = []
    if turn.role == Role.ADMIN:
        buttons += [
            Choice(f"Make {role.value}", action_value("team", "r", user.id, role.value))
            for role in Role
            if role.value != user.role
        ]
    if user.role == Role.REP:
        buttons.append(Choice("Move to another manager", action_value("team", "mv", user.id)))
    buttons.append(Choice("Deactivate", action_value("team", "d", user.id)))
    return [Reply(text=_member_line(view, {}), choices=tuple(buttons))]


async def _role(turn: Turn, rest: list[str]) -> list[Reply]:
    ids = _ids(rest, 1)
    if ids is None or len(rest) < 2 or rest[1] not in {r.value for r in Role}:
        return [Reply.say(STALE)]
    user = await change_role(turn.crm, turn.actor, ids[0], Role(rest[1]))
    return [Reply.say("✅ ", bold(user.display_name), f" is now {'an' if user.role == 'admin' else 'a'} {user.role}.")]


async def _pick_manager(turn: Turn, rest: list[str]) -> list[Reply]:
    ids = _ids(rest, 1)
    if ids is None:
        return [Reply.say(STALE)]
    view = await member(turn.crm, turn.actor, ids[0])
    options = [
        Choice(m.display_name[:40], action_value("team", "mt", ids[0], m.id))
        for m in await managers(turn.crm, turn.actor)
        if m.id != view.user.manager_id
    ][:MAX_MEMBER_BUTTONS]
    if turn.role == Role.ADMIN and view.user.manager_id is not None:
        options.append(Choice("No manager", action_value("team", "mt", ids[0], 0)))
    if not options:
        return [Reply.say("There is no other manager yet. Invite one with /invite manager.")]
    return [Reply.say("Move ", bold(view.user.display_name), " to which manager?", choices=options)]


async def _move(turn: Turn, rest: list[str]) -> list[Reply]:
    ids = _ids(rest, 2)
    if ids is None:
        return [Reply.say(STALE)]
    user = await set_manager(turn.crm, turn.actor, ids[0], ids[1] or None)
    return [Reply.say("✅ Moved ", bold(user.display_name), ".")]


async def _pick_heir(turn: Turn, rest: list[str]) -> list[Reply]:
    ids = _ids(rest, 1)
    if ids is None:
        return [Reply.say(STALE)]
    view = await member(turn.crm, turn.actor, ids[0])
    options = [
        Choice(u.display_name[:40], action_value("team", "dt", ids[0], u.id))
        for u in await handover_candidates(turn.crm, turn.actor, ids[0])
    ][:MAX_MEMBER_BUTTONS]
    return [Reply.say(
        "Deactivate ", bold(view.user.display_name), "? Who takes over their open deals, contacts, "
        "tasks and contracts?", choices=options,
    )]


async def _deactivate(turn: Turn, rest: list[str]) -> list[Reply]:
    ids = _ids(rest, 2)
    if ids is None:
        return [Reply.say(STALE)]
    done = await deactivate(turn.crm, turn.actor, ids[0], reassign_to=ids[1])
    moved = ", ".join([
        _plural(done.deals, "deal"), _plural(done.contacts, "contact"),
        _plural(done.tasks, "task"), _plural(done.contracts, "contract"),
    ])
    reps = f" Their {_plural(done.reps, 'rep')} moved too." if done.reps else ""
    return [Reply.say("✅ ", bold(done.user.display_name), " is deactivated. ", bold(done.to.display_name),
                      f" took over {moved}.{reps}")]


TEAM_VERBS = {"m": _card, "r": _role, "mv": _pick_manager, "mt": _move, "d": _pick_heir, "dt": _deactivate}


# --- /settings -----------------------------------------------------------------------------


def _settings_text(user: User) -> Rich:
    quiet = f"{_clock(user.quiet_start)}–{_clock(user.quiet_end)}" if user.quiet_start else "off"
    return Rich.lines([
        bold("⚙️ Your settings"),
        f"Time zone: {user.timezone}",
        f"Language: {user.language}",
        f"Working hours: {_clock(user.work_start)}–{_clock(user.work_end)}, {format_days(user.work_days)}",
        f"Quiet hours: {quiet}",
        "Change one, for example:",
        *SETTINGS_EXAMPLES,
    ])


@command("settings", "Your time zone, language and hours: /settings", order=84)
async def settings_command(turn: Turn, args: str) -> list[Reply]:
    word, _, value = (args or "").strip().partition(" ")
    word, value = word.lower(), value.strip()
    if not word:
        return [Reply(text=_settings_text(await my_settings(turn.crm, turn.actor)))]
    if not value:
        raise InvalidInput("Give a value too. For example:\n" + "\n".join(SETTINGS_EXAMPLES))
    if word in ("timezone", "tz", "zone"):
        change = {"timezone": value}
    elif word in ("language", "lang"):
        change = {"language": value}
    elif word in ("hours", "work"):
        start, end = parse_clock_range(value, "work_start")
        change = {"work_start": start, "work_end": end}
    elif word == "days":
        change = {"work_days": value}
    elif word == "quiet" and value.lower() in ("off", "none", "no"):
        change = {"clear_quiet": True}
    elif word == "quiet":
        start, end = parse_clock_range(value, "quiet")
        change = {"quiet_start": start, "quiet_end": end}
    else:
        raise InvalidInput(
            "I can change timezone, hours, days, quiet or language. Try /settings hours 09:00-18:00."
        )
    user = await update_settings(turn.crm, turn.actor, **change)
    return [Reply(text=Rich.of("✅ Saved.\n", _settings_text(user)))]


# --- team channels -------------------------------------------------------------------------


def _alerts(channel: TeamChannel) -> str:
    return ", ".join(f"{kind} {'on' if getattr(channel, col) else 'off'}" for kind, col in ALERT_KINDS.items())


def _scope(channel: TeamChannel) -> str:
    return "the whole company" if channel.manager_id is None else "the team"


@command("setchannel", "Send team alerts to this group chat", group_ok=True, order=85)
async def setchannel_command(turn: Turn, args: str) -> list[Reply]:
    if not turn.inbound.is_group:
        return [Reply.say("Run /setchannel inside the group chat that should get the team's alerts.")]
    channel = await register_channel(
        turn.crm, turn.actor, address=str(turn.inbound.address), platform=turn.inbound.platform,
        title=args or None,
    )
    return [Reply.say(
        f"📣 This chat now gets alerts for {_scope(channel)}: {_alerts(channel)}.\n"
        "Switch one off with /channel alerts won off; stop them all with /channel remove."
    )]


@command("channel", "This group's alerts: /channel alerts won off", group_ok=True, order=86)
async def channel_command(turn: Turn, args: str) -> list[Reply]:
    words = (args or "").split()
    if not turn.inbound.is_group:
        channels = await list_channels(turn.crm, turn.actor)
        if not channels:
            return [Reply.say("No team channels yet. Run /setchannel inside a group chat.")]
        lines = [bold("📣 Team channels")]
        lines += [Rich.of("• ", c.title or c.address, f" — {_scope(c)}: {_alerts(c)}") for c in channels]
        return [Reply(text=Rich.lines(lines))]
    address = str(turn.inbound.address)
    if not words:
        here = [c for c in await list_channels(turn.crm, turn.actor) if c.address == address]
        if not here:
            return [Reply.say("This chat gets no team alerts. Run /setchannel to start them.")]
        return [Reply.say(f"📣 Alerts here for {_scope(here[0])}: {_alerts(here[0])}.")]
    if words[:1] == ["remove"]:
        await unregister_channel(turn.crm, turn.actor, address)
        return [Reply.say("🔕 This chat gets no more team alerts. /setchannel turns them back on.")]
    if len(words) == 3 and words[0] == "alerts" and words[2].lower() in ("on", "off"):
        channel = await set_channel_alert(turn.crm, turn.actor, address, alert_kind(words[1]),
                                          words[2].lower() == "on")
        return [Reply.say(f"✅ Alerts here: {_alerts(channel)}.")]
    raise InvalidInput(
        f"Try /channel alerts won off, or /channel remove. Alerts: {', '.join(ALERT_KINDS)}."
    )


# --- /history and /undo --------------------------------------------------------------------


def _value(text: str | None) -> str:
    if text is None:
        return "—"
    return text if len(text) <= 60 else text[:59] + "…"


def _audit_line(line: AuditLine, turn: Turn) -> Rich:
    who = line.actor_name or "ChatCRM"
    where = f" ({line.platform})" if line.platform else ""
    head = f"{_when(line.at, turn)} · "
    action_name = line.action.replace("_", " ")
    if line.field.startswith("*"):
        return Rich.of(head, bold(who), where, f" · {action_name}: {line.field[1:]}")
    return Rich.of(head, bold(who), where, f" · {action_name}: {line.field.replace('_', ' ')} ",
                   _value(line.old), " → ", _value(line.new))


async def _history_reply(turn: Turn, entity: str, entity_id: int) -> Reply:
    lines = await history_of(turn.crm, turn.actor, entity, entity_id, limit=3 * HISTORY_LINES)
    lines = [line for line in lines if line.field not in HISTORY_HIDDEN][:HISTORY_LINES]
    title = bold(f"🕓 History of {entity} #{entity_id}")
    if not lines:
        return Reply(text=Rich.of(title, "\nNo changes recorded yet."))
    return Reply(text=Rich.lines([title, *(_audit_line(line, turn) for line in lines)]))


def _history_target(args: str) -> tuple[str, int] | None:
    """("deal", 12) from "deal 12" / "deal #12"; ("contact", 7) from "#7"; None for a name."""
    words = args.lower().replace("#", " ").split()
    if len(words) == 1 and (ids := _ids(words, 1)):
        return "contact", ids[0]
    if len(words) == 2 and words[0] in HISTORY_ENTITIES and (ids := _ids(words[1:], 1)):
        return words[0], ids[0]
    return None


@command("history", "Who changed what: /history Lina, /history deal 12", order=87)
async def history_command(turn: Turn, args: str) -> list[Reply]:
    if not args:
        raise InvalidInput("Whose history? Try /history Lina, /history #12 or /history deal 12.")
    target = _history_target(args)
    if target is not None:
        return [await _history_reply(turn, *target)]
    found = await search_contacts(turn.crm, turn.actor, args, limit=8)
    if not found:
        return [Reply.say("🔎 No contact matches “", args[:60], "”. Try /history deal 12.")]
    if len(found) == 1:
        return [await _history_reply(turn, "contact", found[0].id)]
    options = [Choice(contact_label(c)[:60], action_value("hist", "contact", c.id)) for c in found]
    return [Reply.say("Whose history?", choices=options)]


@action("hist")
async def history_action(turn: Turn, args: list[str]) -> list[Reply]:
    """`hist:<entity>:<id>`: the history of one record (visibility re-checked in history_of)."""
    if len(args) != 2 or args[0] not in HISTORY_ENTITIES or _ids(args[1:], 1) is None:
        return [Reply.say("That button is out of date. Try /history again.")]
    return [await _history_reply(turn, args[0], int(args[1]))]


@command("undo", "Undo your last change (within 10 minutes)", order=88)
async def undo_command(turn: Turn, args: str) -> list[Reply]:
    result = await undo_last(turn.crm, turn.actor)
    return [Reply.say("↩️ ", result.description)]
