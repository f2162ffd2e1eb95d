"""An import process for the crash tests: `apply_import` of a file into a database, which
reports each written batch and then waits (so the test can SIGKILL it half-way).

    python -m tests.reliability.import_process DATABASE_URL DATA_DIR FILE USER_ID

Prints {"ready": true}, then {"written": n, "of": total} after the first batch, then waits.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from config import load_settings
from handlers.context import CRM, Actor
from handlers.imports import apply_import
from storage.db import open_database


def _emit(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def serve(args: argparse.Namespace) -> None:
    settings = load_settings(DATABASE_URL=args.database_url, CRM_DATA_DIR=args.data_dir,
                             CRM_CURRENCY="USD", CRM_PHONE_REGION="AE")
    crm = CRM(db=open_database(settings.database_url), settings=settings)

    async def progress(written: int, total: int) -> None:
        _emit({"written": written, "of": total})
        await asyncio.Event().wait()  # half-way, inside the import's transaction: kill me now

    _emit({"ready": True})
    try:
        await apply_import(crm, Actor(args.user_id), Path(args.file), progress=progress)
    finally:
        await crm.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("data_dir")
    parser.add_argument("file")
    parser.add_argument("user_id", type=int)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
