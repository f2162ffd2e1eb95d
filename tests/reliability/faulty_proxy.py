"""A TCP proxy between a bot and a fake platform API that breaks chosen requests on purpose:
`drop` closes the connection without an answer, `stall` keeps it open and never answers (the
client's timeout fires). Faults are matched by the API method in the request line, so the
long poll or other calls are not hit by accident.

    proxy = await FaultyProxy.start(api.port)
    proxy.plan("drop", "sendMessage", times=2)
    ... point the client at proxy.port ...
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass
class _Fault:
    kind: str  # "drop" | "stall"
    method: str
    times: int


class FaultyProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.injected: list[tuple[str, str]] = []  # (kind, method) of every fault applied
        self._faults: list[_Fault] = []
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    async def start(cls, target_port: int) -> "FaultyProxy":
        proxy = cls(target_port)
        proxy._server = await asyncio.start_server(proxy._client, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def plan(self, kind: str, method: str, *, times: int = 1) -> None:
        self._faults.append(_Fault(kind, method, times))

    @property
    def pending(self) -> int:
        return sum(f.times for f in self._faults)

    async def stop(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _fault_for(self, chunk: bytes) -> str | None:
        parts = chunk.split(b" ", 2)
        if len(parts) < 3 or parts[0] not in (b"GET", b"POST"):
            return None  # not the start of a request (a body, or the rest of one)
        path = parts[1].split(b"?", 1)[0].decode(errors="replace")
        for fault in self._faults:
            if path.rsplit("/", 1)[-1] == fault.method:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                self.injected.append((fault.kind, fault.method))
                return fault.kind
        return None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._track(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._track(up_writer)
        back = asyncio.create_task(self._pipe(up_reader, writer))
        self._tasks.add(back)
        back.add_done_callback(self._tasks.discard)
        try:
            while chunk := await reader.read(65536):
                fault = self._fault_for(chunk)
                if fault == "stall":  # swallow everything until the client gives up and closes
                    while await reader.read(65536):
                        pass
                if fault is not None:
                    break
                up_writer.write(chunk)
                await up_writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            back.cancel()
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    def _track(self, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)

