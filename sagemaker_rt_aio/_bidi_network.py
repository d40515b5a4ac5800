"""How a client's HTTP/2 streams connect: TLS and proxies from the client's network settings.

The TLS context is built on first use from the same inputs as the client's (``verify``,
``ca_bundle``/``AWS_CA_BUNDLE``, ``client_cert``), but is its own object: its ALPN offers only
``h2``, which must not leak into aiohttp's HTTP/1.1 connections. A ``bidirectional_ssl_context``
given to the client is used instead (its ALPN set to ``h2``). The proxy is the one the client's
network settings pick for the HTTP/2 endpoint (``proxies=``, or ``HTTPS_PROXY``/``NO_PROXY``),
reached with HTTP CONNECT.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING

from yarl import URL

from ._config import config_variable
from ._network import ClientCert, Network, StrPath, build_ssl_context

if TYPE_CHECKING:  # botocore is imported when a session is first used (_botocore_session)
    import botocore.session


class BidiNetwork:
    def __init__(
        self,
        session: botocore.session.Session,
        network: Network,
        *,
        ssl_context: ssl.SSLContext | None,
        verify: bool | StrPath | None,
        ca_bundle: StrPath | None,
        client_cert: ClientCert | None,
    ) -> None:
        if ssl_context is not None:
            # HTTP/2 over TLS is negotiated by ALPN; SSLContext cannot tell what it offers.
            ssl_context.set_alpn_protocols(["h2"])
        if ca_bundle is None and verify is None:
            # botocore reads ca_bundle only when verify is not given, as the client's TLS does.
            configured = config_variable(session, "ca_bundle")
            ca_bundle = str(configured) if configured else None
        self._context = ssl_context
        self._network = network
        self._verify = verify
        self._ca_bundle = ca_bundle
        self._client_cert = client_cert

    def __repr__(self) -> str:
        return f"<BidiNetwork {self._network!r}>"

    def ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            setting = build_ssl_context(
                verify=self._verify, ca_bundle=self._ca_bundle, client_cert=self._client_cert
            )
            if isinstance(setting, ssl.SSLContext):
                setting.set_alpn_protocols(["h2"])  # a new object: aiohttp has its own
                self._context = setting
            else:
                from ._h2 import client_ssl_context  # HTTP/2 support: on the first stream

                self._context = client_ssl_context(setting)
        return self._context

    def proxy_for(self, url: URL) -> tuple[URL, Mapping[str, str]] | None:
        route = self._network.route(url)
        proxy = route.get("proxy")
        if not proxy:
            return None
        return URL(str(proxy)), dict(route.get("proxy_headers") or {})
