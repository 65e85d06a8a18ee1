"""A stand-in for the webhook's Service: one loopback port, TCP (TLS passes through) to any of several operator
replicas, round-robin, skipping a backend that refuses the connection.

It routes to a backend from the moment the replica's process exists, ready or not — harsher than a Service,
which waits for readiness: a replica still loading its view must refuse to decide on its own (HTTP 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Iterator


class ServiceProxy:
    """``with ServiceProxy(port) as proxy: proxy.backends = [9001, 9002]`` (replace the list to change them)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.backends: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._turn = itertools.count()

    def __enter__(self) -> ServiceProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self._loop).result(timeout=10)  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _candidates(self) -> Iterator[int]:
        backends = list(self.backends)
        if not backends:
            return iter(())
        start = next(self._turn) % len(backends)
        return iter(backends[start:] + backends[:start])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for port in self._candidates():
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            return
        writer.close()  # no backend: the caller sees a connection error (failurePolicy applies)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        with contextlib.suppress(OSError):
            sink.close()
