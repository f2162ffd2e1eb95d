"""Block Kit rendering: mrkdwn escaping, Slack's size limits, modal inputs per field kind, and
reading a submitted modal back."""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.slack_blocks import (
    answered, error_map, help_message, message, modal, mrkdwn, submitted_values,
)
from bot.slack_inbound import split_command, typed_text
from conversations.forms import Field, Flow
from conversations.messages import Choice, Reply
from conversations.rich import Rich, bold, code, italic, link


async def _nothing(ctx):
    return []


@dataclass
class Spec:
    flow: Flow
    values: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    shown: list = field(default_factory=list)
    private: str = "{}"


def a_flow(*fields: Field) -> Flow:
    return Flow(name="demo", help="demo", title="Twenty-four chars title!", fields=fields, submit=_nothing)


def test_every_span_is_escaped_so_hostile_names_ping_nobody():
    text = Rich.of("Lead ", bold("<!channel>"), " from ", italic("<@U123>"), " & ", code("<!here>"),
                   " ", link("<b>site</b>", "https://x.co/?a=1&b=<2>"))
    assert mrkdwn(text) == (
        "Lead *&lt;!channel&gt;* from _&lt;@U123&gt;_ &amp; `&lt;!here&gt;` "
        "<https://x.co/?a=1&amp;b=&lt;2&gt;|&lt;b&gt;site&lt;/b&gt;>"
    )
    assert message(Reply(text=text))["text"].startswith("Lead &lt;!channel&gt; from &lt;@U123&gt;")


def test_style_markers_hug_the_words():
    assert mrkdwn(Rich.of(bold("Phone: "), "+971")) == "*Phone:* +971"
    assert mrkdwn(Rich.of(bold("  "), "x")) == "  x"


def test_long_text_is_split_into_sections_of_at_most_3000_characters():
    lines = Rich.lines([f"line {i} " + "x" * 90 for i in range(100)])
    blocks = message(Reply(text=lines))["blocks"]
    assert len(blocks) == 4
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks)
    assert "".join(b["text"]["text"] for b in blocks) == mrkdwn(lines)


def test_buttons_carry_choice_values_25_per_row_with_clipped_labels():
    choices = tuple(Choice(f"Option {i} " + "y" * 80, f"ans:{i}") for i in range(30))
    blocks = message(Reply(text=Rich.of("Pick"), choices=choices))["blocks"]
    rows = [b for b in blocks if b["type"] == "actions"]
    assert [len(r["elements"]) for r in rows] == [25, 5]
    first = rows[0]["elements"][0]
    assert first["value"] == "ans:0" and len(first["text"]["text"]) == 75
    assert len({e["action_id"] for r in rows for e in r["elements"]}) == 30


def test_a_day_question_offers_a_datepicker_and_confirm_is_primary():
    day = message(Reply(text=Rich.of("When?"), choices=(Choice("Today", "say:today"),), kind="day"))
    assert day["blocks"][-1]["elements"][-1]["type"] == "datepicker"
    confirm = message(Reply(text=Rich.of("Save?"), choices=(Choice("✅ Confirm", "nav:ok"), Choice("✖️ Cancel", "nav:cancel"))))
    assert [e.get("style") for e in confirm["blocks"][-1]["elements"]] == ["primary", "danger"]


def test_an_answered_question_keeps_only_the_answer():
    assert answered("Name: <!channel>") == {
        "text": "✓ Name: &lt;!channel&gt;",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "✓ Name: &lt;!channel&gt;"}}],
    }


def test_modal_inputs_follow_the_field_kinds():
    flow = a_flow(
        Field("name", "Name", "?", placeholder="Rana Haddad"),
        Field("notes", "Notes", "?", multiline=True, optional=True),
        Field("stage", "Stage", "?", kind="choice"),
        Field("due", "Due", "?", kind="when"),
        Field("paid_on", "Paid on", "?", kind="day"),
        Field("contact", "Contact", "?", kind="contact"),
        Field("city", "City", "?", kind="choice"),
        Field("hidden", "Hidden", "?"),
    )
    spec = Spec(
        flow,
        values={"name": "Acme", "paid_on": "2026-12-01", "contact": "Zed Motors"},
        options={"stage": [Choice("New", "ans:new"), Choice("Won", "ans:won")],
                 "contact": [Choice("Zed Motors", "ans:7")],
                 "city": [Choice(f"City {i}", f"ans:{i}") for i in range(101)]},
        shown=["name", "notes", "stage", "due", "paid_on", "contact", "city"],
    )
    view = modal(spec, "demo")
    assert view["callback_id"] == "crm_form:demo" and view["private_metadata"] == "{}"
    assert len(view["title"]["text"]) <= 24
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert "hidden" not in blocks
    assert blocks["name"]["element"] | {} == {
        "type": "plain_text_input", "action_id": "value", "multiline": False, "initial_value": "Acme",
        "placeholder": {"type": "plain_text", "text": "Rana Haddad", "emoji": True},
    }
    assert blocks["notes"]["element"]["multiline"] is True and blocks["notes"]["optional"] is True
    assert [o["value"] for o in blocks["stage"]["element"]["options"]] == ["ans:new", "ans:won"]
    assert blocks["due"]["element"]["placeholder"]["text"] == "e.g. tomorrow 10am"
    assert blocks["paid_on"]["element"] == {"type": "datepicker", "action_id": "value", "initial_date": "2026-12-01"}
    assert blocks["contact__pick"]["element"]["initial_option"]["value"] == "ans:7"
    assert blocks["city"]["element"]["type"] == "plain_text_input"  # 101 options: typed instead


def test_submitted_values_read_every_element_kind():
    view = {"state": {"values": {
        "name": {"value": {"type": "plain_text_input", "value": "Acme"}},
        "stage": {"value": {"type": "static_select", "selected_option": {"value": "ans:won"}}},
        "paid_on": {"value": {"type": "datepicker", "selected_date": "2026-12-01"}},
        "contact": {"value": {"type": "plain_text_input", "value": None}},
        "contact__pick": {"value": {"type": "static_select", "selected_option": {"value": "ans:7"}}},
        "deal": {"value": {"type": "plain_text_input", "value": "Big deal"}},
        "deal__pick": {"value": {"type": "static_select", "selected_option": {"value": "ans:9"}}},
    }}}
    assert submitted_values(view) == {
        "name": "Acme", "stage": "won", "paid_on": "2026-12-01", "contact": "#7", "deal": "Big deal",
    }


def test_errors_for_fields_without_a_block_are_not_dropped():
    view = {"blocks": [{"type": "input", "block_id": "phone"}, {"type": "input", "block_id": "email"}]}
    assert error_map({"email": "Bad email.", "owner": "Pick someone."}, view) == {
        "email": "Bad email.", "phone": "owner: Pick someone.",
    }


def test_help_lists_verbs_with_an_example():
    body = help_message([("newlead", "Add a lead"), ("pay", "Record a payment")])["blocks"][0]["text"]["text"]
    assert "• `/crm newlead` — Add a lead" in body
    assert "_Example:_ `/crm newlead Acme +971501234567`" in body


def test_typed_text_undoes_slack_formatting():
    assert typed_text("mail <mailto:jo@acme.co|jo@acme.co> call <tel:+97150|+97150>") == "mail jo@acme.co call +97150"
    assert typed_text("see <https://acme.co> &lt;b&gt; &amp; co") == "see https://acme.co <b> & co"
    assert split_command("  NewLead Acme  Trading ") == ("newlead", "Acme  Trading")
    assert split_command(None) == ("", "")
