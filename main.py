"""ChatCRM's composition root: settings, database, use cases, router, channels, scheduler.

    python main.py                 run every configured surface (console when none is)
    python main.py console         the console chat, whatever is configured
    python main.py migrate         apply database migrations and exit
    python main.py jobs [run NAME] list the scheduled jobs / run one now
    python main.py report|export|import ...   reports and data from the command line
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from config import Settings, SettingsError, load_settings

log = logging.getLogger("chatcrm")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and Telegram's URLs contain the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def parser() -> argparse.ArgumentParser:
    from bot import cli_reports
    from jobs import cli as jobs_cli

    root = argparse.ArgumentParser(prog="main.py", description="ChatCRM: a CRM run from chat.")
    sub = root.add_subparsers(dest="command")
    sub.add_parser("run", help="run every configured surface (default)")
    sub.add_parser("console", help="the console chat")
    sub.add_parser("migrate", help="apply database migrations")
    jobs_cli.add_subcommands(sub)
    cli_reports.add_subcommands(sub)
    return root


async def build_crm(settings: Settings):
    """Migrate, open the database and compose the use-case context with its commit hooks."""
    from handlers.context import CRM
    from handlers.users import bootstrap_admins
    from jobs.alerts import enqueue_alerts
    from storage.db import open_database
    from storage.migrate import upgrade_async

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.database_url)
    crm = CRM(db=open_database(settings.database_url), settings=settings)
    crm.hooks.append(enqueue_alerts)
    await bootstrap_admins(crm)
    return crm


def build_router(crm):
    from conversations.router import Router
    from handlers.ratelimit import RateLimiter

    return Router(crm, rate_limiter=RateLimiter())


async def serve(settings: Settings, *, console_only: bool) -> int:
    """Run the configured chat surfaces, the scheduler and the outbox sender until stopped."""
    from aiohttp import web

    from bot.console_channel import ConsoleChannel
    from handlers.users import ensure_console_admin
    from jobs.intake_api import build_intake_app
    from jobs.scheduler import build_scheduler, stop_scheduler
    from jobs.sender import OutboxSender

    crm = await build_crm(settings)
    router = build_router(crm)
    channels: dict = {}
    if not console_only and settings.telegram_bot_token:
        from bot.telegram_channel import TelegramChannel

        channels["telegram"] = TelegramChannel(settings, router)
    if not console_only and settings.slack_bot_token:
        from bot.slack_channel import SlackChannel

        channels["slack"] = SlackChannel(settings, router)
    console = None
    if console_only or not channels:
        await ensure_console_admin(crm)
        console = channels["console"] = ConsoleChannel(router)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    for channel in channels.values():
        await channel.start()
    scheduler = await build_scheduler(crm)
    scheduler.start()
    sender = OutboxSender(crm, channels)
    sender_task = asyncio.create_task(sender.run_forever(stop))
    runner = None
    if settings.api_key:
        runner = web.AppRunner(build_intake_app(crm))
        await runner.setup()
        await web.TCPSite(runner, port=settings.api_port).start()
        log.info("lead intake API on port %s", settings.api_port)
    log.info("ChatCRM running: %s", ", ".join(channels))
    try:
        if console is not None:
            console_task = asyncio.create_task(console.run())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({console_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if console_task.done():
                console_task.result()  # surface a crash instead of hanging
        else:
            await stop.wait()
    finally:
        stop.set()
        await stop_scheduler(scheduler)
        await sender_task
        for channel in channels.values():
            await channel.stop()
        if runner is not None:
            await runner.cleanup()
        await crm.db.dispose()
    return 0


async def one_shot(settings: Settings, args) -> int:
    """The command-line subcommands: migrate, jobs, report, export, import."""
    if args.command == "migrate":
        from storage.migrate import upgrade_async

        await upgrade_async(settings.database_url)
        print("Database is up to date.")
        return 0
    crm = await build_crm(settings)
    try:
        if args.command == "jobs":
            from jobs import cli as jobs_cli

            return await jobs_cli.run(crm, args)
        from bot import cli_reports
        from handlers.users import ensure_console_admin

        return await cli_reports.run(crm, await ensure_console_admin(crm), args)
    finally:
        await crm.db.dispose()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    command = args.command or "run"
    try:
        if command in ("run", "console"):
            return asyncio.run(serve(settings, console_only=command == "console"))
        return asyncio.run(one_shot(settings, args))
    except SettingsError as err:  # a surface found its configuration incomplete
        print(err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
