"""Alembic, driven from code: `upgrade()` at start-up, `python -m storage.migrate regenerate` in dev.

The migration scripts run on the same async drivers as the app, so no second driver is needed.
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from storage.db import async_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (blocking; call via `upgrade_async` in a loop)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)


def regenerate() -> None:
    """Rewrite the single pre-release revision from `storage/models.py`."""
    versions = MIGRATIONS_DIR / "versions"
    for old in versions.glob("*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(f"sqlite:///{tmp}/empty.db")
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")


if __name__ == "__main__":
    if sys.argv[1:] == ["regenerate"]:
        regenerate()
    else:
        print("usage: python -m storage.migrate regenerate", file=sys.stderr)
        sys.exit(2)
