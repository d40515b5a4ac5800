"""One HTTP/2 request with a full-duplex body, on its own connection: ``h2`` (sans-IO) over asyncio.

aiohttp speaks only HTTP/1.1, and httpx's HTTP/2 sends the whole request body before reading the
response, so the bidirectional operation gets this small transport. Each call has its own
connection (the service's multiplexing and GOAWAY behaviour are undocumented; one stream per
connection makes cancellation, shutdown and GOAWAY local to one call). TLS negotiates ``h2`` by
ALPN; ``http://`` URLs (loopback) speak h2c with prior knowledge.

Flow control, both ways:

- receiving: the stream and connection windows are ``receive_window`` bytes, and a DATA frame is
  acknowledged (WINDOW_UPDATE) only when the consumer takes it, so a slow consumer stops the
  server instead of growing our buffer: at most ``receive_window`` bytes are ever buffered;
- sending: ``send()`` writes what the peer's window allows, then waits for a WINDOW_UPDATE.

``h2`` is the optional ``bidi`` extra, imported when a connection is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import (
    CertificateVerificationError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
    TransportError,
)
from ._h2_proxy import open_tunnel

if TYPE_CHECKING:
    from yarl import URL

_READ_SIZE = 65536
_CLOSE_TIMEOUT = 1.0
# RFC 9113 error codes we send or react to.
NO_ERROR = 0x0
CANCEL = 0x8
REFUSED_STREAM = 0x7


def import_h2() -> Any:
    try:
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions
        import h2.settings
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "InvokeEndpointWithBidirectionalStream needs HTTP/2: install the 'bidi' extra "
            "(pip install 'sagemaker-rt-aio[bidi]'), which adds the h2 package"
        ) from None
    return h2


def client_ssl_context(verify: bool = True) -> ssl.SSLContext:
    """A client TLS context offering only ``h2`` by ALPN: the system's CAs, or no verification
    (CA bundles and client certificates come from the client's network settings instead)."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    return context


class StreamRefused(EndpointConnectionError):
    """The server refused the stream before processing it (REFUSED_STREAM, or a GOAWAY that
    excludes it): nothing reached the model."""


class H2Exchange:
    """One request/response on a fresh HTTP/2 connection. Not thread-safe; one event loop."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        receive_window: int,
        read_timeout: float | None,
        ping_interval: float | None = None,
        ping_timeout: float = 20.0,
    ) -> None:
        h2 = import_h2()
        self._h2 = h2
        self._reader = reader
        self._writer = writer
        self.read_timeout = read_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.pings_sent = 0
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._conn = h2.connection.H2Connection(config=config)
        self._conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: receive_window,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1,
            },
        )
        self._conn.initiate_connection()
        if receive_window > 65535:
            self._conn.increment_flow_control_window(receive_window - 65535)
        self.stream_id = self._conn.get_next_available_stream_id()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self._response = asyncio.get_running_loop().create_future()
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        # DATA waits for the server's SETTINGS: a window it shrinks after we sent on the default
        # one would go negative, which some servers treat as a flow-control error.
        self._settings_received = asyncio.Event()
        self._written = 0
        self._remote_ended = False
        self._local_ended = False
        self._error: TransportError | None = None
        self._closed = False
        self._flush()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: URL,
        *,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float | None,
        read_timeout: float | None,
        receive_window: int,
        proxy: tuple[URL, Mapping[str, str]] | None = None,
        ping_interval: float | None = None,
        ping_timeout: float = 20.0,
    ) -> H2Exchange:
        """Connect (through ``proxy``, an ``http://`` CONNECT proxy, if given) and start HTTP/2."""
        import_h2()
        host = url.raw_host or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        tls = ssl_context if url.scheme == "https" else None
        server_hostname = host if tls else None

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            if proxy is None:
                return await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=server_hostname
                )
            sock = await open_tunnel(proxy[0], host, port, proxy[1])
            try:
                return await asyncio.open_connection(
                    sock=sock, ssl=tls, server_hostname=server_hostname
                )
            except BaseException:
                sock.close()
                raise

        try:
            reader, writer = await asyncio.wait_for(connect(), connect_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise ConnectTimeoutError(f"could not connect to {host}:{port} in time") from None
        except EndpointConnectionError:
            raise
        except ssl.SSLCertVerificationError as exc:
            # Not retried: an untrusted certificate stays untrusted.
            raise CertificateVerificationError(
                f"certificate verification failed for {host}:{port}: {exc.verify_message} "
                "(trust the server's CA with verify='/path/to/ca.pem', ca_bundle= or "
                "AWS_CA_BUNDLE)"
            ) from None
        except ssl.SSLError as exc:
            raise SSLError(f"TLS handshake with {host}:{port} failed: {exc.reason}") from None
        except OSError as exc:
            raise EndpointConnectionError(f"could not connect to {host}:{port}: {exc}") from exc
        if tls is not None:
            ssl_object = writer.get_extra_info("ssl_object")
            protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
            if protocol != "h2":
                writer.close()
                raise EndpointConnectionError(
                    f"{host}:{port} did not negotiate HTTP/2 by ALPN (got {protocol!r})"
                )
        return cls(
            reader,
            writer,
            receive_window=receive_window,
            read_timeout=read_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )

    # -- sending ----------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._fail(ConnectionClosedError(f"connection lost while sending: {exc}"))
            raise self._error from exc  # type: ignore[misc]

    def send_headers(self, headers: list[tuple[str, str]]) -> None:
        self._check()
        self._conn.send_headers(
            self.stream_id, [(k.encode(), v.encode()) for k, v in headers], end_stream=False
        )
        self._flush()

    async def send(self, data: bytes, *, end_stream: bool = False) -> None:
        """Send ``data``, waiting for the peer's flow-control window as needed."""
        view = memoryview(data)
        if not self._settings_received.is_set():
            await self._wait(self._settings_received.wait())
        total = len(view)
        try:
            await self._send_view(view, end_stream)
        except asyncio.CancelledError:
            if 0 < self._written < total:
                # Part of an event is out: the peer would read the next one as its remainder.
                self.reset_now(ConnectionClosedError("a send was cancelled partway through"))
            raise

    async def _send_view(self, view: memoryview, end_stream: bool) -> None:
        self._written = 0
        while True:
            self._check_sendable()
            window = min(
                self._conn.local_flow_control_window(self.stream_id),
                self._conn.max_outbound_frame_size,
            )
            if window <= 0 and view:
                self._writable.clear()
                await self._writable.wait()
                continue
            chunk, view = view[:window], view[window:]
            last = end_stream and not view
            try:
                self._conn.send_data(self.stream_id, bytes(chunk), end_stream=last)
            except self._h2.exceptions.StreamClosedError:
                self._check_sendable()
                if self._remote_ended and self.status == 200:
                    # A model may end its answer (with an exception event, say) while input is
                    # still coming: the answer, read from the stream, says how it ended.
                    raise ConnectionClosedError(
                        "the model ended its answer before this input was sent; "
                        "read the stream for how it ended"
                    ) from None
                raise ConnectionClosedError("the server closed the stream") from None
            except self._h2.exceptions.ProtocolError as exc:
                self._check()
                raise ConnectionClosedError(f"HTTP/2 protocol error: {exc}") from None
            self._written += len(chunk)
            self._flush()
            await self._drain()
            if last:
                self._local_ended = True
            if not view:
                if end_stream and not last:  # empty data with END_STREAM
                    self._conn.end_stream(self.stream_id)
                    self._local_ended = True
                    self._flush()
                    await self._drain()
                return

    def _check_sendable(self) -> None:
        self._check()
        if self._remote_ended and self.status is not None and self.status >= 300:
            raise ConnectionClosedError("the server answered before the input was complete")

    # -- receiving --------------------------------------------------------------------------

    async def response(self) -> tuple[int, dict[str, str]]:
        """Wait for the response headers."""
        await self._wait(self._response)
        assert self.status is not None
        return self.status, self.headers

    async def read(self) -> bytes | None:
        """The next chunk of the response body, ``None`` at its end. Acknowledges what it returns."""
        while not self._chunks:
            if self._remote_ended:
                return None
            self._check()
            self._readable.clear()
            await self._wait(self._readable.wait())
        data, flow = self._chunks.popleft()
        if flow and not self._closed:
            with contextlib.suppress(self._h2.exceptions.StreamClosedError):
                self._conn.acknowledge_received_data(flow, self.stream_id)
            self._flush()
        return data

    @property
    def buffered(self) -> int:
        return sum(len(data) for data, _ in self._chunks)

    async def _wait(self, awaitable: Any) -> Any:
        waiter = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait(
                {waiter, self._task}, timeout=self.read_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            waiter.cancel()
            raise
        if waiter in done:
            return waiter.result()
        waiter.cancel()
        self._check()
        if not done:
            self._fail(ReadTimeoutError(f"no data from the server for {self.read_timeout} s"))
        self._check()
        raise ConnectionClosedError("the connection closed")  # pragma: no cover

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, error: TransportError) -> None:
        if self._error is None:
            self._error = error
        if not self._response.done():
            self._response.set_exception(error)
            self._response.exception()  # retrieved: nobody may be waiting for headers
        self._readable.set()
        self._writable.set()

    async def _read_loop(self) -> None:
        h2 = self._h2
        try:
            while True:
                data = await self._read_or_ping()
                if data is None:
                    return
                if not data:
                    self._fail(ConnectionClosedError("the server closed the connection"))
                    return
                try:
                    events = self._conn.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    self._fail(ConnectionClosedError(f"HTTP/2 protocol error: {exc}"))
                    return
                for event in events:
                    self._on_event(event)
                self._flush()
        except (ConnectionError, OSError) as exc:
            self._fail(ConnectionClosedError(f"connection lost: {exc}"))

    async def _read_or_ping(self) -> bytes | None:
        """The next bytes from the server. After ``ping_interval`` seconds of silence, a PING; if
        nothing at all comes within ``ping_timeout``, the connection is dead (a vanished peer
        sends no FIN, and while the input is open no read timeout would notice): None."""
        if self.ping_interval is None:
            return await self._reader.read(_READ_SIZE)
        awaiting_answer = False
        while True:
            wait = self.ping_timeout if awaiting_answer else self.ping_interval
            try:
                # StreamReader.read is cancel-safe: a timeout loses no data.
                return await asyncio.wait_for(self._reader.read(_READ_SIZE), wait)
            except (asyncio.TimeoutError, TimeoutError):
                if awaiting_answer:
                    self._fail(
                        ReadTimeoutError(
                            f"the server stopped answering (no reply to a PING within "
                            f"{self.ping_timeout:g} s)"
                        )
                    )
                    return None
                self._conn.ping(self.pings_sent.to_bytes(8, "big"))
                self.pings_sent += 1
                self._flush()
                awaiting_answer = True

    def _on_event(self, event: Any) -> None:
        ev = self._h2.events
        if isinstance(event, ev.ResponseReceived):
            headers = {k.decode().lower(): v.decode("utf-8", "replace") for k, v in event.headers}
            self.status = int(headers.pop(":status"))
            self.headers = headers
            if not self._response.done():
                self._response.set_result(None)
        elif isinstance(event, ev.DataReceived):
            self._chunks.append((event.data, event.flow_controlled_length))
            self._readable.set()
        elif isinstance(event, ev.StreamEnded):
            self._remote_ended = True
            self._readable.set()
            self._writable.set()
        elif isinstance(event, ev.StreamReset):
            if event.error_code == REFUSED_STREAM and self.status is None:
                self._fail(StreamRefused("the server refused the stream (REFUSED_STREAM)"))
            elif not self._remote_ended:
                self._fail(
                    ConnectionClosedError(f"the server reset the stream (code {event.error_code})")
                )
        elif isinstance(event, ev.ConnectionTerminated):
            last = event.last_stream_id
            if last is not None and last < self.stream_id:
                self._fail(StreamRefused("the server is going away (GOAWAY) before this stream"))
            elif not self._remote_ended:
                # h2 ends the whole connection on GOAWAY, even a graceful one that would let
                # the server finish our (accepted, so not retryable) stream.
                self._fail(
                    ConnectionClosedError(
                        f"the server closed the connection (GOAWAY code {event.error_code})"
                    )
                )
        elif isinstance(event, ev.WindowUpdated | ev.RemoteSettingsChanged):
            self._settings_received.set()
            self._writable.set()

    # -- closing ----------------------------------------------------------------------------

    def reset_now(self, error: TransportError) -> None:
        """Reset the stream at once (no await); later calls raise ``error``."""
        with contextlib.suppress(Exception):
            self._conn.reset_stream(self.stream_id, error_code=CANCEL)
        self._flush()
        self._fail(error)

    @property
    def remote_ended(self) -> bool:
        return self._remote_ended

    @property
    def finished(self) -> bool:
        return self._remote_ended and not self._chunks

    async def close(self, *, reset: bool = False) -> None:
        """Close the connection; with ``reset`` (or an unfinished stream) send RST_STREAM first."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._writer.is_closing():
                if reset or not (self._remote_ended and self._local_ended):
                    with contextlib.suppress(Exception):
                        self._conn.reset_stream(self.stream_id, error_code=CANCEL)
                with contextlib.suppress(Exception):
                    self._conn.close_connection()
                self._flush()
        finally:
            self._task.cancel()
            self._writer.close()
            self._fail(ConnectionClosedError("the stream is closed"))
            # asyncio.wait: our own cancellation still propagates; the reader's does not.
            closing = asyncio.ensure_future(self._writer.wait_closed())
            done, _ = await asyncio.wait({closing}, timeout=_CLOSE_TIMEOUT)
            if closing in done and not closing.cancelled():
                closing.exception()  # a reset connection may close with an error: retrieved
            else:
                closing.cancel()
            await asyncio.wait({self._task})
