"""Proxies, TLS trust and socket options, decided as botocore decides them, once per client.

- Proxies: an explicit ``proxies={"https": ...}`` applies to every host (botocore ignores
  ``NO_PROXY`` for it). Without one, the environment's ``HTTPS_PROXY``/``HTTP_PROXY`` apply unless
  ``NO_PROXY`` exempts the host; both are read with the very functions botocore uses
  (``urllib.request.getproxies`` and ``proxy_bypass`` on the URL's ``host[:port]``), so every
  ``NO_PROXY`` form behaves as with boto3: ``*``, ``example.com`` and ``.example.com`` (the domain and
  its subdomains), ``host:port`` (only for a URL naming that port). IP networks in CIDR form are
  not matched, by botocore either. Credentials in the proxy URL become a ``Proxy-Authorization``
  header and are never shown (the URL handed to aiohttp has none).
- TLS: ``verify=False`` turns verification off; ``verify="/path"`` trusts that bundle; otherwise
  ``ca_bundle=``, then ``AWS_CA_BUNDLE`` / ``ca_bundle`` in the profile; then the system's store.
  ``client_cert`` (a path, or ``(cert, key)``) is presented to servers that ask. One
  ``ssl.SSLContext`` is built per client and used for SageMaker and S3 requests alike.
- ``tcp_keepalive``: ``SO_KEEPALIVE`` on the client's sockets (``BOTOCORE_TCP_KEEPALIVE`` /
  ``tcp_keepalive`` in the profile), for connections that sit idle behind NAT gateways.

Nothing here is on a call's hot path: the route to a host is computed once and cached.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias
from urllib.parse import unquote

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._errors import ParamValidationError
from ._lifecycle import Lifecycle
from ._protocol import WireRequest
from ._transport import DIRECT, WatchedConnector
from ._watchdog import ReadWatchdog

StrPath: TypeAlias = "str | os.PathLike[str]"
ClientCert: TypeAlias = "StrPath | tuple[StrPath, StrPath]"

# Hosts whose route is remembered; S3 virtual-hosted buckets make hosts vary, so it is bounded.
_ROUTE_CACHE_SIZE = 256


def proxy_url_for(url: URL, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy botocore would use for ``url``, or None for a direct connection."""
    if proxies is None:
        netloc = url.raw_authority  # host[:port] as written, as botocore passes urlparse().netloc
        try:
            if urllib.request.proxy_bypass(netloc):
                return None
        except (TypeError, OSError):  # botocore tolerates the same failures
            pass
        proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme)
    return _with_scheme(proxy) if proxy else None


def _with_scheme(proxy: str) -> str:
    """botocore's ``ProxyConfiguration._fix_proxy_url``: a bare ``host:port`` means http://."""
    if proxy.startswith(("http:", "https:")):
        return proxy
    if proxy.startswith("//"):
        return "http:" + proxy
    return "http://" + proxy


def split_proxy_credentials(proxy: str) -> tuple[URL, CIMultiDictProxy[str]]:
    """The proxy URL without credentials, and the headers that carry them (Basic, as botocore)."""
    try:
        parsed = URL(proxy)
    except ValueError:
        parsed = URL()
    if parsed.scheme not in ("http", "https") or not parsed.host:
        # The URL itself is not quoted: it may hold credentials.
        raise ParamValidationError("proxies", "a proxy must be an http(s)://host:port URL")
    headers: CIMultiDict[str] = CIMultiDict()
    user, password = parsed.raw_user, parsed.raw_password
    if user and password:
        token = f"{unquote(user)}:{unquote(password)}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(token).decode()
    bare = parsed.with_user(None).with_path("").with_query(None).with_fragment(None)
    return bare, CIMultiDictProxy(headers)


def build_ssl_context(
    *,
    verify: bool | StrPath | None,
    ca_bundle: StrPath | None,
    client_cert: ClientCert | None,
) -> ssl.SSLContext | bool:
    """The client's TLS settings for aiohttp: ``True`` (aiohttp's default context, shared),
    ``False`` (no verification), or a context built here from the files named."""
    if verify is False:
        if client_cert is None:
            return False
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        bundle = ca_bundle if verify is None or verify is True else verify
        if bundle is None and client_cert is None:
            return True
        field = "ca_bundle" if verify is None or verify is True else "verify"
        if client_cert is None:
            return _shared_trusting(os.fspath(bundle), field)  # type: ignore[arg-type]
        context = _trusting(os.fspath(bundle) if bundle is not None else None, field)
    if client_cert is not None:
        cert, key = client_cert if isinstance(client_cert, tuple) else (client_cert, None)
        try:
            context.load_cert_chain(os.fspath(cert), os.fspath(key) if key is not None else None)
        except (OSError, ssl.SSLError) as exc:
            raise ParamValidationError(
                "client_cert", f"cannot load the certificate or key: {_reason(exc)}"
            ) from None
    return context


# Contexts that trust a CA bundle, shared by the clients that name the same unchanged file: loading
# a system bundle takes tens of milliseconds, and AWS_CA_BUNDLE makes every client name one. Never
# handed out for changing (a client certificate gets a context of its own). Bounded: when full it
# starts over.
_SHARED_CONTEXTS: dict[tuple[str, int, int, int], ssl.SSLContext] = {}
_SHARED_CONTEXTS_SIZE = 16


def _shared_trusting(bundle: str, field: str) -> ssl.SSLContext:
    try:
        stat = os.stat(bundle)
    except OSError:
        return _trusting(bundle, field)  # raises the usual error
    key = (os.path.abspath(bundle), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    context = _SHARED_CONTEXTS.get(key)
    if context is None:
        context = _trusting(bundle, field)
        if len(_SHARED_CONTEXTS) >= _SHARED_CONTEXTS_SIZE:
            _SHARED_CONTEXTS.clear()
        _SHARED_CONTEXTS[key] = context
    return context


def _trusting(bundle: str | None, field: str) -> ssl.SSLContext:
    try:
        if bundle is not None and os.path.isdir(bundle):
            return ssl.create_default_context(capath=bundle)
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ParamValidationError(
            field, f"cannot load the CA bundle {bundle!r}: {_reason(exc)}"
        ) from None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__


def _keepalive_socket(addr_info: Any) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


class Network:
    """The resolved network settings of one client: where each host's requests go and how TLS
    is checked. ``route(url)`` gives the extra keyword arguments for ``ClientSession.request``."""

    def __init__(
        self,
        *,
        proxies: Mapping[str, str] | None = None,
        ssl_setting: ssl.SSLContext | bool = True,
        tcp_keepalive: bool = False,
    ) -> None:
        if proxies is not None:
            for proxy in proxies.values():
                if proxy:  # a malformed URL is refused now, not on the first call
                    split_proxy_credentials(_with_scheme(proxy))
        self._proxies = dict(proxies) if proxies is not None else None
        self.ssl = ssl_setting
        self.tcp_keepalive = tcp_keepalive
        # Per host: (its route, its route on the client's own session), decided once.
        self._routes: dict[
            tuple[str, str | None, int | None], tuple[Mapping[str, Any], Mapping[str, Any]]
        ] = {}

    def __repr__(self) -> str:
        # Never the proxy URLs: they may hold credentials.
        proxies = "explicit" if self._proxies is not None else "environment"
        return f"<Network proxies={proxies} tcp_keepalive={self.tcp_keepalive}>"

    def route(self, url: URL) -> Mapping[str, Any]:
        return self._routes_for(url)[0]

    def own_route(self, url: URL) -> Mapping[str, Any]:
        """``route(url)`` for the session the client owns, whose connector (``connector()``) holds
        the TLS setting: without a proxy, nothing to pass per request. (aiohttp's handling of an
        ``ssl`` argument costs a call about 6k instructions.)"""
        return self._routes_for(url)[1]

    def _routes_for(self, url: URL) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        key = (url.scheme, url.raw_host, url.port)
        routes = self._routes.get(key)
        if routes is None:
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            route = own = self._decide(url)
            if "ssl" in route:
                rest = {name: value for name, value in route.items() if name != "ssl"}
                own = MappingProxyType(rest) if rest else DIRECT
            routes = self._routes[key] = (route, own)
        return routes

    def _decide(self, url: URL) -> Mapping[str, Any]:
        kwargs: dict[str, Any] = {}
        proxy = proxy_url_for(url, self._proxies)
        if proxy:
            kwargs["proxy"], kwargs["proxy_headers"] = split_proxy_credentials(proxy)
        if self.ssl is not True:
            kwargs["ssl"] = self.ssl
        return MappingProxyType(kwargs) if kwargs else DIRECT

    def connector(
        self,
        *,
        limit: int,
        watchdog: ReadWatchdog,
        lifecycle: Lifecycle,
        admit: Callable[[aiohttp.ClientRequest, WireRequest], Awaitable[None]],
    ) -> WatchedConnector:
        """The connector of a session the client owns (its requests take ``own_route``); it tells
        ``watchdog`` each call's connection (see ``_watchdog``), and admits the calls that waited
        in its pool with ``admit`` (see ``WatchedConnector``)."""
        kwargs: dict[str, Any] = {"limit": limit, "ttl_dns_cache": 60, "ssl": self.ssl}
        if self.tcp_keepalive:
            kwargs["socket_factory"] = _keepalive_socket
        return WatchedConnector(watchdog=watchdog, lifecycle=lifecycle, admit=admit, **kwargs)


def check_keepalive_supported() -> None:
    """``socket_factory`` arrived in aiohttp 3.12; older versions cannot set socket options."""
    import inspect

    if "socket_factory" not in inspect.signature(aiohttp.TCPConnector).parameters:
        raise ParamValidationError("tcp_keepalive", "needs aiohttp 3.12 or newer")
