"""A minimal HTTP/2 server on ``h2`` + asyncio: connections, streams and flow control, no routing.

Each request stream is handed to ``serve(stream)`` in its own task. A stream's request body is
read with ``await stream.receive()`` and acknowledged (WINDOW_UPDATE) only by ``stream.ack()``, so
a slow handler stops the client instead of growing our buffers. ``send_data`` waits for the
client's window. h2c with prior knowledge without TLS; with an ``ssl.SSLContext``, TLS whose ALPN
offers ``h2``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Awaitable, Callable

from .._h2 import import_h2

_READ_SIZE = 65536
NO_ERROR = 0x0
CANCEL = 0x8


class StreamGone(Exception):
    """The client reset the stream or the connection closed."""


class ServerStream:
    def __init__(self, connection: _Connection, stream_id: int, headers: dict[str, str]) -> None:
        self._connection = connection
        self.stream_id = stream_id
        self.headers = headers
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self.remote_ended = False
        self.gone = False
        self.response_started = False
        self.response_ended = False
        self.unacked = 0
        self.task: asyncio.Task[None] | None = None

    # -- request body -----------------------------------------------------------------------

    async def receive(self) -> bytes | None:
        """The next chunk of the request body (not yet acknowledged), ``None`` at its end."""
        while not self._chunks:
            if self.gone:
                raise StreamGone()
            if self.remote_ended:
                return None
            self._readable.clear()
            await self._readable.wait()
        data, flow = self._chunks.popleft()
        self.unacked += flow
        return data

    def ack(self) -> None:
        """Open the window again for everything received so far."""
        if self.unacked and not self.gone:
            self._connection.ack(self.stream_id, self.unacked)
        self.unacked = 0

    # -- response ---------------------------------------------------------------------------

    async def respond(self, status: int, headers: dict[str, str], *, end: bool = False) -> None:
        if self.gone:
            raise StreamGone()
        self.response_started = True
        fields = [(":status", str(status)), *headers.items()]
        self._connection.send_headers(self.stream_id, fields, end)
        self.response_ended = end
        await self._connection.drain()

    async def send_data(self, data: bytes, *, end: bool = False) -> None:
        view = memoryview(data)
        while True:
            if self.gone:
                raise StreamGone()
            window = self._connection.window(self.stream_id)
            if window <= 0 and view:
                self._writable.clear()
                await self._writable.wait()
                continue
            chunk, view = view[:window], view[window:]
            self._connection.send_data(self.stream_id, bytes(chunk), end and not view)
            self.response_ended = end and not view
            await self._connection.drain()
            if not view:
                return

    def reset(self, code: int = CANCEL) -> None:
        if not self.gone:
            self._connection.reset(self.stream_id, code)
            self._on_gone()

    # -- events -----------------------------------------------------------------------------

    def _on_data(self, data: bytes, flow: int) -> None:
        self._chunks.append((data, flow))
        self._readable.set()

    def _on_end(self) -> None:
        self.remote_ended = True
        self._readable.set()

    def _on_gone(self) -> None:
        self.gone = True
        self._readable.set()
        self._writable.set()

    def _on_window(self) -> None:
        self._writable.set()


class _Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        serve: Callable[[ServerStream], Awaitable[None]],
        window: int,
    ) -> None:
        h2 = import_h2()
        self._h2 = h2
        self._reader = reader
        self._writer = writer
        self._serve = serve
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self._conn = h2.connection.H2Connection(config=config)
        self._conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            },
        )
        self._window = window
        self._streams: dict[int, ServerStream] = {}

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.drain()

    def ack(self, stream_id: int, amount: int) -> None:
        with contextlib.suppress(Exception):
            self._conn.acknowledge_received_data(amount, stream_id)
        self._flush()

    def window(self, stream_id: int) -> int:
        try:
            return int(
                min(
                    self._conn.local_flow_control_window(stream_id),
                    self._conn.max_outbound_frame_size,
                )
            )
        except Exception:
            return 0

    def send_headers(self, stream_id: int, fields: list[tuple[str, str]], end: bool) -> None:
        try:
            self._conn.send_headers(
                stream_id, [(k.encode(), v.encode()) for k, v in fields], end_stream=end
            )
        except self._h2.exceptions.H2Error as exc:
            raise StreamGone() from exc
        self._flush()

    def send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        try:
            self._conn.send_data(stream_id, data, end_stream=end)
        except self._h2.exceptions.H2Error as exc:
            raise StreamGone() from exc
        self._flush()

    def reset(self, stream_id: int, code: int = CANCEL) -> None:
        with contextlib.suppress(Exception):
            self._conn.reset_stream(stream_id, error_code=code)
        self._flush()

    async def run(self) -> None:
        ev = self._h2.events
        self._conn.initiate_connection()
        if self._window > 65535:
            self._conn.increment_flow_control_window(self._window - 65535)
        self._flush()
        try:
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    return
                try:
                    events = self._conn.receive_data(data)
                except self._h2.exceptions.ProtocolError:
                    self._flush()
                    return
                for event in events:
                    if isinstance(event, ev.RequestReceived):
                        headers: dict[str, str] = {}
                        for key, value in event.headers:
                            name = key.decode().lower()
                            text = value.decode("utf-8", "replace")
                            headers[name] = f"{headers[name]},{text}" if name in headers else text
                        stream = ServerStream(self, event.stream_id, headers)
                        self._streams[event.stream_id] = stream
                        stream.task = asyncio.get_running_loop().create_task(self._run(stream))
                        if event.stream_ended is not None:
                            stream._on_end()
                    elif isinstance(event, ev.DataReceived):
                        found = self._streams.get(event.stream_id)
                        if found is not None:
                            found._on_data(event.data, event.flow_controlled_length)
                        else:
                            self.ack(event.stream_id, event.flow_controlled_length)
                    elif isinstance(event, ev.StreamEnded):
                        if (found := self._streams.get(event.stream_id)) is not None:
                            found._on_end()
                    elif isinstance(event, ev.StreamReset):
                        if (found := self._streams.get(event.stream_id)) is not None:
                            found._on_gone()
                            if found.task is not None:
                                found.task.cancel()
                    elif isinstance(event, ev.WindowUpdated | ev.RemoteSettingsChanged):
                        for stream in self._streams.values():
                            stream._on_window()
                    elif isinstance(event, ev.ConnectionTerminated):
                        self._flush()
                        return
                self._flush()
        except (ConnectionError, OSError):
            return
        finally:
            await self._close()

    async def _run(self, stream: ServerStream) -> None:
        try:
            await self._serve(stream)
        except (StreamGone, asyncio.CancelledError):
            pass
        finally:
            self._streams.pop(stream.stream_id, None)
            if not stream.remote_ended:
                # Answered before the input ended: the client must stop sending, not wait on a
                # window nobody will open again (NO_ERROR after a complete answer, RFC 9113 8.1).
                stream.reset(NO_ERROR if stream.response_ended else CANCEL)

    async def _close(self) -> None:
        tasks = [s.task for s in self._streams.values() if s.task is not None]
        for stream in list(self._streams.values()):
            stream._on_gone()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            self._conn.close_connection()
            self._flush()
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)


class H2Server:
    """Listens on ``host:port`` and serves each request stream with ``serve``."""

    def __init__(
        self,
        serve: Callable[[ServerStream], Awaitable[None]],
        *,
        ssl_context: ssl.SSLContext | None = None,
        window: int = 65535,
    ) -> None:
        import_h2()
        self._serve = serve
        self._ssl = ssl_context
        self.window = window
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        if self._ssl is not None:
            # Offer h2 first; HTTP/1.1 stays for the context's other (aiohttp) listeners.
            self._ssl.set_alpn_protocols(["h2", "http/1.1"])
        self._server = await asyncio.start_server(self._on_connect, host, port, ssl=self._ssl)
        return int(self._server.sockets[0].getsockname()[1])

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await _Connection(reader, writer, self._serve, self.window).run()
        finally:
            self._tasks.discard(task)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
