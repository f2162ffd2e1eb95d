"""/start, /help: the welcome and the list of everything the bot does."""
from __future__ import annotations

from conversations.forms import FLOWS
from conversations.messages import Choice, Reply
from conversations.registry import COMMANDS, Turn, command
from conversations.rich import Rich, bold, code
from handlers import invites
from handlers.errors import DomainError


def menu() -> list[tuple[str, str, int]]:
    """(name, one-line help, order) of every command and flow, in /help order."""
    items = [(f.name, f.help, f.order) for f in FLOWS.values() if f.listed]
    items += [(c.name, c.help, c.order) for c in COMMANDS.values()]
    return sorted(items, key=lambda item: (item[2], item[0]))


def help_text() -> Rich:
    lines = [Rich.of(bold("What I can do"))]
    lines += [Rich.of(code(f"/{name}"), " — ", help_) for name, help_, _ in menu()]
    lines.append(Rich.of("\nIn any question: ", code("back"), ", ", code("skip"), " or ", code("cancel"),
                         ". Plain text outside a question searches your contacts."))
    return Rich.lines(lines)


@command("help", "Every command with one line of help", order=1, group_ok=True)
async def help_command(turn: Turn, args: str) -> list[Reply]:
    return [Reply(text=help_text())]


@command("start", "Welcome, and how to begin", order=0, public=True)
async def start_command(turn: Turn, args: str) -> list[Reply]:
    msg = turn.inbound
    if turn.actor is None:
        try:
            await invites.join(
                turn.crm, code=args.strip(), platform=msg.platform, platform_user_id=msg.user_id,
                display_name=msg.display_name or "", dm_address=str(msg.address),
                timezone=msg.timezone,
            )
        except DomainError as err:
            return [Reply.say("⚠️ ", err.message)]
        return [Reply.say("🎉 Welcome to the team's ChatCRM! Add your first lead with /newlead, "
                          "or see /help.")]
    name = turn.display_name or "there"
    return [Reply(
        text=Rich.of("👋 Hi ", bold(name), "! I keep your clients, deals and follow-ups so nobody is "
                     "forgotten.\n\nStart with /newlead, log a call with /log, see today with /tasks."),
        choices=(Choice("🆕 New lead", "go:newlead:"), Choice("✅ My tasks", "cmd:tasks"),
                 Choice("📊 Pipeline", "cmd:pipeline")),
    )]
