"""Child processes the fault tests start, talk to over JSON lines, and kill with SIGKILL."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Only guards a broken test against hanging for ever; nothing asserts on how long things take.
HANG_GUARD_S = 120


class Child:
    """One `python -m <module> <args>` process with piped stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, module: str, *args: str) -> "Child":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "CRM_LOG_LEVEL": "WARNING"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *args, cwd=ROOT, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        child = cls(proc)
        ready = await child.read()
        assert ready == {"ready": True}, ready
        return child

    async def send(self, message: dict) -> None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()

    async def read(self) -> dict:
        line = await asyncio.wait_for(self.proc.stdout.readline(), HANG_GUARD_S)
        if not line:
            raise AssertionError(f"child exited with {await self.proc.wait()} before answering")
        return json.loads(line)

    async def ask(self, message: dict) -> dict:
        await self.send(message)
        return await self.read()

    async def kill(self) -> int:
        """SIGKILL: no cleanup, no flush, no rollback; the process just stops."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        code = await self.proc.wait()
        self.proc.stdin.close()  # our end of the pipe: the transport closes with it
        return code

    async def stop(self) -> int:
        """End input and wait for a clean exit."""
        if self.proc.returncode is None:
            self.proc.stdin.close()
        return await asyncio.wait_for(self.proc.wait(), HANG_GUARD_S)
