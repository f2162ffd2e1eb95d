"""The benchmarks still run: each module imports, and the quick ones run at their smallest size.

No timing is asserted here (benchmarks print figures); these tests only keep `bench/` from
rotting as the code it drives changes.
"""
from __future__ import annotations

import importlib

import pytest

from bench.__main__ import BENCHMARKS, replace_section


@pytest.mark.parametrize("bench", [b for b in BENCHMARKS if b.available], ids=lambda b: b.name)
def test_every_benchmark_module_imports_and_has_an_entry_point(bench):
    module = importlib.import_module(bench.module)
    assert callable(module.main)
    assert module.__doc__  # its docstring is its --help


def test_figures_replace_their_own_section_and_keep_the_analysis():
    doc = "# Benchmarks\n\nWhy the figures look so.\n"
    doc = replace_section(doc, "startup", "old figures", "Start-up")
    assert doc.endswith("## Start-up\n\n<!-- bench:startup -->\nold figures\n<!-- /bench:startup -->\n")
    doc = replace_section(doc, "startup", "new figures", "Start-up")
    assert "new figures" in doc and "old figures" not in doc
    assert doc.count("## Start-up") == 1 and "Why the figures look so." in doc


def test_startup_reaches_the_console_prompt():
    from bench.bench_startup import run

    figures = run(1)
    for seconds, rss, peak in figures.values():
        assert seconds > 0 and 0 < rss <= peak


def test_scale_runs_every_operation_and_explains_the_scans(capsys):
    from bench.bench_scale import main

    main(["--sizes", "300"])
    out = capsys.readouterr().out
    for label in ("monthly report", "pipeline board", "neglected-lead scan", "daily summary job",
                  "morning plans job", "export interactions csv"):
        assert label in out
    assert "EXPLAIN QUERY PLAN" in out and " USING INDEX " in out
    assert "reads without an index:" in out


@pytest.mark.slow
def test_telegram_round_saves_a_lead_and_logs_a_call_through_the_real_bot(capsys):
    from bench.bench_telegram_inbound import main

    main(["--users", "1", "--rounds", "1", "--seconds", "1", "--rate", "5", "--rate-users", "2",
          "--skip-paced"])
    out = capsys.readouterr().out
    crm_line = next(line for line in out.splitlines() if line.strip().startswith("ChatCRM sqlite  "))
    assert "flows saved 2/2" in crm_line and "17" in crm_line.split()
    assert "Something went wrong" not in out


def test_dates_prints_a_warm_figure_for_every_phrase():
    import subprocess
    import sys

    from bench import ROOT
    from bench.bench_dates import DAYS, WHEN

    done = subprocess.run([sys.executable, "-m", "bench.bench_dates", "--rounds", "1"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    for phrase in WHEN:
        assert any(line.startswith(phrase + " ") for line in done.stdout.splitlines())
    for phrase in DAYS:
        assert f"day: {phrase}" in done.stdout
    assert "all phrases" in done.stdout
