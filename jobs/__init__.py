"""The work that runs by itself: periodic scans, the outbox and its sender, the intake API.

Wiring for `main.py` (all in the one asyncio loop):

    from jobs.alerts import enqueue_alerts
    from jobs.intake_api import build_intake_app
    from jobs.scheduler import build_scheduler
    from jobs.sender import OutboxSender

    crm.hooks.append(enqueue_alerts)                 # team alerts + welcome, same transaction
    scheduler = await build_scheduler(crm)           # missed jobs are set to run at once
    scheduler.start()
    sender = OutboxSender(crm, {"telegram": tg, "slack": slack, "console": console})
    sender_task = asyncio.create_task(sender.run_forever(stop_event))
    if crm.settings.api_key:                         # POST /api/leads on CRM_API_PORT
        runner = web.AppRunner(build_intake_app(crm)); await runner.setup()
        await web.TCPSite(runner, port=crm.settings.api_port).start()
    ...
    scheduler.shutdown(wait=False); stop_event.set(); await sender_task; await runner.cleanup()

CLI: `jobs.cli.add_subcommands(subparsers)` adds `jobs` and `jobs run <name>`;
`await jobs.cli.run(crm, args)` carries them out and returns the exit code.

Modules: `scans` (job functions `(crm, now) -> rows queued`), `scheduler` (`JOBS`, `run_job`),
`outbox` (enqueue under a dedupe key), `notify` (DM addresses, working/quiet hours),
`texts` (the notifications' words and buttons), `payload` (Reply <-> JSON), `sender`
(claim, pace, deliver, mark), `alerts` (before-commit hook), `intake_api`, `cli`.
"""
