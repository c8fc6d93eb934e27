"""A TCP forwarder to a real server, in a thread of the test process: a server that comes up
after its clients (start it late), one that drops every connection (cut), or one reached under
another address (listen on 127.0.0.2, which the server's certificate does not name)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from wallet_lake_tests.ports import free_port


class TcpForwarder:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.host, self.port = host, port or free_port()
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-forwarder", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> "TcpForwarder":
        """Listen (and forward) from now on."""
        async def listen() -> None:
            self._server = await asyncio.start_server(self._forward, self.host, self.port)
        self._run(listen())
        return self

    def cut(self) -> None:
        """Close every forwarded connection, both ways, as a server that went away does; keep listening."""
        async def close_all() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
        self._run(close_all())

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
        with contextlib.suppress(Exception):
            self._run(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()  # one side gone: the other goes too

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def __enter__(self) -> "TcpForwarder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
