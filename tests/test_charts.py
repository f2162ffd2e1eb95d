"""Charts are real PNGs, phone sized, drawn from the report's figures (and empty periods)."""
from __future__ import annotations

import struct
from pathlib import Path

from conversations.messages import Inbound
from conversations.registry import ACTIONS, COMMANDS, Turn
from handlers.charts import pipeline_chart, report_charts
from handlers.periods import parse_period
from tests.test_reports import seed_dataset
from zoneinfo import ZoneInfo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    return width, height


def assert_phone_chart(path: Path, data_dir: Path) -> None:
    assert path.parent == data_dir / "charts"
    assert png_size(path) == (1000, 700)
    assert 10_000 < path.stat().st_size < 1_000_000


async def test_report_charts_are_phone_sized_pngs(crm, make_user, data_dir):
    team = await seed_dataset(crm, make_user)
    period = parse_period("last month", crm.now(), ZoneInfo("UTC"))

    charts = await report_charts(crm, team.ada, period)

    assert [caption for _, caption in charts] == [
        "Pipeline by stage (now)",
        "Won per week · November 2026",
        "New leads by source · November 2026",
        "Collections · November 2026",
    ]
    for path, _ in charts:
        assert_phone_chart(path, data_dir)


async def test_an_empty_period_still_draws_readable_charts(crm, make_user, data_dir):
    loner = await make_user("Lone", "rep")
    period = parse_period("Q1 2025", crm.now(), ZoneInfo("UTC"))

    charts = await report_charts(crm, loner, period)

    assert len(charts) == 4
    for path, _ in charts:
        assert_phone_chart(path, data_dir)


async def test_pipeline_button_returns_the_funnel_image(crm, make_user, data_dir):
    team = await seed_dataset(crm, make_user)
    path = await pipeline_chart(crm, team.mia)
    assert_phone_chart(path, data_dir)

    turn = Turn(crm=crm, actor=team.mia, inbound=Inbound("console", "local", "1", action="chart:pipeline"),
                tz=ZoneInfo("UTC"), role="manager")
    [reply] = await ACTIONS["chart"](turn, ["pipeline"])
    assert reply.image is not None and png_size(reply.image.path) == (1000, 700)


async def test_report_command_offers_charts_behind_a_button(crm, make_user):
    team = await seed_dataset(crm, make_user)
    turn = Turn(crm=crm, actor=team.ada, inbound=Inbound("console", "local", "1", text="/report last month by source"),
                tz=ZoneInfo("UTC"), role="admin")

    [reply] = await COMMANDS["report"].run(turn, "last month by source")

    assert "November 2026" in reply.text.plain and "By source" in reply.text.plain
    [button] = reply.choices
    assert button.value == "rpt:charts:20261101:20261201"
    images = await ACTIONS["rpt"](turn, button.value.split(":")[1:])
    assert [r.image.caption for r in images][1] == "Won per week · November 2026"
