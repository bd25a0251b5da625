"""A small TCP proxy on loopback that can black-hole, slow, refuse and cut connections.

It stands between regfed and a PostgreSQL server (reached over TCP or its Unix socket),
so a drill can make a dependency fail the ways networks do:

- ``pass``: bytes flow both ways;
- ``blackhole``: connections are accepted (and existing ones kept) but nothing flows in
  either direction — like a link whose packets are dropped; bytes sent meanwhile are held
  and delivered when the mode goes back to ``pass`` (as TCP would retransmit them);
- ``slow``: every chunk from the server reaches the client ``delay`` seconds late;
- ``refuse``: the listener is closed (connections are refused) and existing ones are cut.

:meth:`FaultProxy.cut` resets every open connection once, whatever the mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit, urlunsplit


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the proxied server listens: a Unix socket path, or a TCP host and port."""

    path: str | None = None
    host: str = "127.0.0.1"
    port: int = 5432

    @classmethod
    def of_dsn(cls, dsn: str) -> Upstream:
        """The server a PostgreSQL DSN points at (``?host=/dir`` is a Unix socket)."""
        parts = urlsplit(dsn)
        port = parts.port or 5432
        host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
        if host.startswith("/"):
            return cls(path=f"{host}/.s.PGSQL.{port}", port=port)
        return cls(host=host, port=port)

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the server."""
        if self.path is not None:
            return await asyncio.open_unix_connection(self.path)
        return await asyncio.open_connection(self.host, self.port)


def through(dsn: str, port: int) -> str:
    """``dsn`` with its server replaced by the proxy on 127.0.0.1:``port``."""
    parts = urlsplit(dsn)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = (credentials + "@" if credentials else "") + f"127.0.0.1:{port}"
    query = "&".join(
        f"{key}={value}"
        for key, values in parse_qs(parts.query).items()
        if key != "host"
        for value in values
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side and the server's."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                transport = writer.transport
                if isinstance(transport, asyncio.Transport):
                    sock = transport.get_extra_info("socket")
                    # SO_LINGER 0: a reset, as when a link is cut, not a polite FIN.
                    if sock is not None and sock.family != socket.AF_UNIX:
                        with contextlib.suppress(OSError):
                            sock.setsockopt(
                                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                            )
                transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """A proxy to one upstream server, on 127.0.0.1 and a free port."""

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.mode = "pass"
        self.delay = 0.0
        self.port = 0

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port after ``refuse``)."""
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def set(self, mode: str, delay: float = 0.0) -> None:
        """Switch to ``mode`` (``pass``, ``blackhole``, ``slow``, ``refuse``)."""
        if mode not in ("pass", "blackhole", "slow", "refuse"):
            raise ValueError(mode)
        self.mode, self.delay = mode, delay
        if mode == "blackhole":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == "refuse":
            if self._server is not None:
                self._server.close()
                self._server = None
            self.cut()
        elif self._server is None:
            await self.start()

    def cut(self) -> None:
        """Reset every open connection."""
        for link in list(self._links):
            link.abort()
        self._links.clear()

    async def close(self) -> None:
        """Stop listening and cut everything."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        if self.mode == "refuse":
            link.abort()
            return
        self._links.add(link)
        try:
            upstream_reader, link.server = await self._upstream.open()
        except OSError:
            link.abort()
            self._links.discard(link)
            return
        link.tasks = [
            asyncio.create_task(self._pump(reader, link.server, slow=False)),
            asyncio.create_task(self._pump(upstream_reader, writer, slow=True)),
        ]
        await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        link.abort()
        self._links.discard(link)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, slow: bool
    ) -> None:
        """Copy ``source`` to ``sink`` while the mode lets bytes flow; ``slow``: this is
        the server-to-client direction, which ``slow`` mode delays."""
        late: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def deliver() -> None:
            while True:
                due, chunk = await late.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                await self._flowing.wait()
                sink.write(chunk)
                await sink.drain()
                late.task_done()

        courier = asyncio.create_task(deliver())
        try:
            while chunk := await source.read(65536):
                await self._flowing.wait()
                delay = self.delay if slow and self.mode == "slow" else 0.0
                late.put_nowait((loop.time() + delay, chunk))
            # The source ended: what was read still reaches the other side, if it may.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await late.join()
        except (ConnectionError, OSError):
            pass
        finally:
            # Never leave the courier behind (blocked on a black hole, it would be
            # destroyed pending when the proxy is collected).
            courier.cancel()
            await asyncio.wait((courier,))
