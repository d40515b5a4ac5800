"""An HTTP CONNECT tunnel for the HTTP/2 transport (aiohttp's proxy support covers only its own
connections). The tunnel is made on a plain socket; TLS with ALPN ``h2`` then runs through it, so
the proxy sees only the host and port, as with any HTTPS proxying.

Errors name the proxy by host and port only: its URL may hold credentials.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Mapping
from urllib.parse import unquote

from yarl import URL

from ._errors import EndpointConnectionError

_MAX_RESPONSE_HEAD = 16 * 1024


def proxy_headers(proxy: URL) -> dict[str, str]:
    """``Proxy-Authorization`` (Basic) from the proxy URL's credentials, if it has any."""
    if proxy.raw_user is None:
        return {}
    token = f"{unquote(proxy.raw_user)}:{unquote(proxy.raw_password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(token).decode()}


def connect_request(host: str, port: int, headers: Mapping[str, str]) -> bytes:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def connect_status(head: bytes) -> int:
    """The status code of a CONNECT response's head (``HTTP/1.1 200 Connection established``)."""
    first = head.split(b"\r\n", 1)[0].split()
    if len(first) < 2 or not first[0].startswith(b"HTTP/") or not first[1].isdigit():
        raise ValueError("not an HTTP response")
    return int(first[1])


async def open_tunnel(
    proxy: URL, host: str, port: int, headers: Mapping[str, str] | None = None
) -> socket.socket:
    """A connected socket through ``proxy`` to ``host:port`` (non-blocking, ready for TLS)."""
    loop = asyncio.get_running_loop()
    where = f"the proxy {proxy.host}:{proxy.port}"
    if proxy.scheme != "http":
        raise EndpointConnectionError(f"{where}: only http:// proxies can tunnel HTTP/2")
    infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    if not infos:
        raise EndpointConnectionError(f"{where} has no address")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        request_headers = {**proxy_headers(proxy), **(headers or {})}
        await loop.sock_sendall(sock, connect_request(host, port, request_headers))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk:
                raise EndpointConnectionError(f"{where} closed the connection during CONNECT")
            head += chunk
            if len(head) > _MAX_RESPONSE_HEAD:
                raise EndpointConnectionError(f"{where} sent an oversized CONNECT response")
        try:
            status = connect_status(head)
        except ValueError:
            raise EndpointConnectionError(f"{where} did not answer CONNECT with HTTP") from None
        if status != 200:
            refused = EndpointConnectionError(
                f"{where} refused the tunnel to {host}:{port} ({status})"
            )
            refused.retryable = status != 407  # wrong proxy credentials stay wrong
            raise refused
        if head.index(b"\r\n\r\n") + 4 != len(head):
            raise EndpointConnectionError(f"{where} sent data before the tunnel was open")
    except EndpointConnectionError:  # an OSError too: not to be wrapped again below
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        reason = exc.strerror or type(exc).__name__
        raise EndpointConnectionError(f"could not connect to {where}: {reason}") from None
    except BaseException:
        sock.close()
        raise
    return sock
