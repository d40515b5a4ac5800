"""AWS Signature Version 4, as pure functions over a request's parts.

botocore's ``SigV4Auth`` wants an ``AWSRequest`` per call and costs more than the whole aiohttp
request; this module signs the method, path, headers and payload hash directly, caching the derived
signing key per (secret, date, region, service). Its output equals botocore's for the same inputs
(tests/test_signing.py checks that over generated requests).
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from ._constants import EMPTY_SHA256, SIGV4_ALGORITHM

# Headers botocore never signs (auth.py SIGNED_HEADERS_BLACKLIST): proxies and clients may change them.
UNSIGNED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
        # Not in botocore's list, but botocore adds it after signing (urllib3), so neither do we.
        "accept-encoding",
    }
)


class FrozenCredentials:
    """A snapshot of credentials, never changed once made. Its repr never shows the secret or the
    token. (A slotted class rather than a frozen dataclass, which costs 0.5 ms to create on
    import; attribute reads cost the same.)"""

    __slots__ = ("access_key", "secret_key", "token")

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token

    def __eq__(self, other: object) -> bool:
        if type(other) is not FrozenCredentials:
            return NotImplemented
        return (self.access_key, self.secret_key, self.token) == (
            other.access_key, other.secret_key, other.token
        )  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.access_key, self.secret_key, self.token))

    def __repr__(self) -> str:
        return f"FrozenCredentials(access_key={self.access_key[:4]}****)"


# Hashes are made by copying this ready state: OpenSSL 3 looks the algorithm up (behind a lock)
# each time a new hash object is made, which costs more than hashing a small request, most of all
# with cold caches between network calls. OpenSSL's SHA-256 (hashlib's) signs rather than CPython's
# own (``_sha256``, in software): it uses the CPU's SHA instructions where there are any, it is the
# validated module in FIPS mode, and inside real calls the two measure within 2 % of each other,
# one way on one CPU and the other way on another (``benchmarks/bench_sha256.py``).
_SHA256 = hashlib.sha256()


def sha256_hex(data: bytes) -> str:
    digest = _SHA256.copy()
    digest.update(data)
    return digest.hexdigest()


def payload_sha256(body: bytes) -> str:
    if not body:
        return EMPTY_SHA256
    digest = _SHA256.copy()  # sha256_hex, inlined: every call hashes its body
    digest.update(body)
    return digest.hexdigest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key (four HMACs); ``signing_hmac`` caches what is made from it, per day."""
    key = _hmac(("AWS4" + secret_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _hmac(key: bytes, msg: str) -> bytes:
    import hmac  # here: used once a day per key, and not otherwise loaded on import

    return hmac.digest(key, msg.encode(), "sha256")


@lru_cache(maxsize=64)
def signing_hmac(secret_key: str, date: str, region: str, service: str) -> tuple[Any, Any]:
    """HMAC-SHA256 with the day's signing key, as (inner, outer) states ready to copy (RFC 2104).

    Cached per (secret, date, region, service): the key changes once a day, so each call signs
    with two hash copies instead of deriving the key (four HMACs) and keying a fifth.
    """
    key = signing_key(secret_key, date, region, service).ljust(64, b"\0")
    inner, outer = _SHA256.copy(), _SHA256.copy()
    inner.update(bytes(byte ^ 0x36 for byte in key))
    outer.update(bytes(byte ^ 0x5C for byte in key))
    return inner, outer


def hmac_signature(states: tuple[Any, Any], message: bytes) -> str:
    """The hex HMAC-SHA256 of ``message`` from ``signing_hmac``'s (inner, outer) states."""
    inner, outer = states[0].copy(), states[1].copy()
    inner.update(message)
    outer.update(inner.digest())
    return str(outer.hexdigest())


@lru_cache(maxsize=1024)
def canonical_uri(path: str, double_encode: bool = True) -> str:
    """The path as SigV4 signs it. ``path`` is already percent-encoded, as it goes on the wire.

    Every service but S3 encodes it once more (``%2F`` becomes ``%252F``) after removing dot
    segments and empty segments (``//``), exactly as botocore's ``normalize_url_path`` does; S3
    signs it as sent. Cached: every call to an endpoint signs the same path.
    """
    if not double_encode:
        return path or "/"
    if "//" in path or "/." in path or path.startswith("."):
        path = _remove_dot_segments(path)
    return quote(path, safe="/~") or "/"


def _remove_dot_segments(path: str) -> str:
    # botocore's utils.remove_dot_segments: RFC 3986 5.2.4, and AWS also drops empty segments
    # ("/a//b" is signed as "/a/b"); a trailing slash survives only after a kept segment.
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and output else ""
    return first + "/".join(output) + last


_last_stamp: tuple[int, str] = (-1, "")
# The wall clock requests are dated by: a module global, so tests can drive it (monkeypatch).
_wall_clock = time.time


def amz_date(now: float | None = None) -> str:
    """``X-Amz-Date`` for ``now`` (default: the current time); formatted once per second."""
    global _last_stamp
    second = int(_wall_clock() if now is None else now)
    if _last_stamp[0] != second:
        _last_stamp = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
    return _last_stamp[1]


class _Template:
    """What stays the same between signatures of one request shape: for a (method, host, path,
    query, header names, region, service), the canonical request with holes for the header values
    and the payload hash; and, per day and key, the scope, the Authorization prefix and the HMAC
    states. Only the date, the hashes and the values are formatted per call."""

    __slots__ = ("canonical", "date_at", "keyed", "names", "signed")

    def __init__(self, names: list[str], date_at: int, canonical: str, signed: str) -> None:
        # The headers' own names, in the canonical (sorted, lower-case) order, but X-Amz-Date's:
        # its value is ours, never folded, and goes in at ``date_at`` (-1: a caller set one).
        self.names = names
        self.date_at = date_at
        self.canonical = canonical  # a %-format: its holes are the values, then the payload hash
        self.signed = signed
        # (day, access key, secret key, scope, Authorization prefix, HMAC states) of the last
        # signature: one tuple, read once and replaced whole, so that clients with other keys
        # signing the same shape on other threads never mix their halves.
        self.keyed: _Keyed = _NO_KEY


_Keyed = tuple[str, str, str, str, str, tuple[Any, Any]]
_NO_KEY: _Keyed = ("", "", "", "", "", (None, None))

_TEMPLATE_CACHE_SIZE = 256
_templates: dict[tuple[Any, ...], _Template] = {}


def _make_template(
    method: str, host: str, path: str, query: str, double_encode: bool, names: list[str]
) -> _Template:
    def literal(text: str) -> str:
        return text.replace("%", "%%")  # a path's percent-encoding

    canonical: dict[str, str | None] = {"host": host}  # None: a hole for that header's value
    own: dict[str, str] = {}
    for name in names:
        lname = name.lower()
        if lname not in UNSIGNED_HEADERS:
            # Two headers differing only in case are one in SigV4 (botocore keeps the last).
            canonical[lname] = None
            own[lname] = name
    order = sorted(canonical)
    signed = ";".join(order)
    lines = "".join(
        f"{literal(lname)}:{literal(host) if canonical[lname] is not None else '%s'}\n"
        for lname in order
    )
    text = (
        f"{literal(method)}\n{literal(canonical_uri(path, double_encode))}\n{literal(query)}\n"
        f"{lines}\n{literal(signed)}\n%s"
    )
    holes = [lname for lname in order if lname in own]
    if own.get("x-amz-date") != "X-Amz-Date":  # a caller's own date header, in its own case
        return _Template([own[lname] for lname in holes], -1, text, signed)
    date_at = holes.index("x-amz-date")
    return _Template([own[lname] for lname in holes if lname != "x-amz-date"], date_at, text, signed)


def sign(
    *,
    method: str,
    host: str,
    path: str,
    headers: dict[str, str],
    payload_hash: str,
    credentials: FrozenCredentials,
    region: str,
    service: str,
    query: str = "",
    timestamp: str | None = None,
    double_encode_path: bool = True,
) -> None:
    """Add ``X-Amz-Date``, ``X-Amz-Security-Token`` (if any) and ``Authorization`` to ``headers``.

    Every header already in ``headers`` except the unsigned ones is signed, with ``host`` added.
    ``query`` must be the canonical query string (sorted, encoded); our operations have none.
    """
    sign_headers(
        method,
        host,
        path,
        headers,
        payload_hash,
        credentials,
        region,
        service,
        query,
        timestamp,
        double_encode_path,
    )


def sign_headers(
    method: str,
    host: str,
    path: str,
    headers: dict[str, str],
    payload_hash: str,
    credentials: FrozenCredentials,
    region: str,
    service: str,
    query: str = "",
    timestamp: str | None = None,
    double_encode_path: bool = True,
) -> None:
    """:func:`sign` with positional arguments: the pipeline's every-call path (passing nine
    keywords costs more than the rest of the call's bookkeeping around it)."""
    stamp = timestamp or amz_date()
    headers["X-Amz-Date"] = stamp
    if credentials.token:
        headers["X-Amz-Security-Token"] = credentials.token
    key = (method, host, path, query, double_encode_path, region, service, *headers)
    template = _templates.get(key)
    if template is None:
        if len(_templates) >= _TEMPLATE_CACHE_SIZE:
            _templates.clear()
        template = _templates[key] = _make_template(
            method, host, path, query, double_encode_path, list(headers)
        )
    day = stamp[:8]
    keyed = template.keyed
    if (
        keyed[0] != day
        or keyed[1] != credentials.access_key
        or keyed[2] != credentials.secret_key
    ):
        scope = f"{day}/{region}/{service}/aws4_request"
        keyed = template.keyed = (
            day,
            credentials.access_key,
            credentials.secret_key,
            scope,
            f"{SIGV4_ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={template.signed}, Signature=",
            signing_hmac(credentials.secret_key, day, region, service),
        )
    # Values folded as botocore does. (Checking whether a value needs it costs twice as much as
    # folding it: a single word's split and join hand back the string itself.)
    values = [" ".join(headers[name].split()) for name in template.names]
    if template.date_at >= 0:
        values.insert(template.date_at, stamp)
    values.append(payload_hash)
    canonical_request = template.canonical % tuple(values)
    string_to_sign = (
        f"{SIGV4_ALGORITHM}\n{stamp}\n{keyed[3]}\n{sha256_hex(canonical_request.encode())}"
    )
    headers["Authorization"] = keyed[4] + hmac_signature(keyed[5], string_to_sign.encode())


# ------------------------------------------------------------------------------- event signing

EVENT_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
#: The payload hash (``X-Amz-Content-SHA256``) of a request whose body is a signed event stream.
STREAMING_EVENTS_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-EVENTS"
# An encoded ``:date`` header is its name (length-prefixed), type 8 (timestamp) and int64 ms.
_DATE_HEADER_PREFIX = b"\x05:date\x08"


def encoded_date_header(time_ms: int) -> bytes:
    """The ``:date`` event header (timestamp, milliseconds since the epoch), as encoded on the wire."""
    return _DATE_HEADER_PREFIX + time_ms.to_bytes(8, "big", signed=True)


def sign_event(
    payload: bytes,
    *,
    prior_signature: str,
    time_ms: int,
    credentials: FrozenCredentials,
    region: str,
    service: str,
) -> bytes:
    """The 32-byte ``:chunk-signature`` of one event-stream envelope (a pure function).

    ``payload`` is the envelope's payload (the encoded inner message, or ``b""`` for the final
    envelope); ``prior_signature`` the hex signature it chains from (the request's ``Signature=``
    for the first event, else the previous event's). The string to sign dates the event to the
    second; its ``:date`` header (hashed here) carries the milliseconds. The key is the request's
    signing key (cached per day by ``signing_hmac``).
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time_ms // 1000))
    date = stamp[:8]
    string_to_sign = "\n".join(
        (
            EVENT_ALGORITHM,
            stamp,
            f"{date}/{region}/{service}/aws4_request",
            prior_signature,
            sha256_hex(encoded_date_header(time_ms)),
            sha256_hex(payload),
        )
    )
    inner, outer = signing_hmac(credentials.secret_key, date, region, service)
    inner, outer = inner.copy(), outer.copy()
    inner.update(string_to_sign.encode())
    outer.update(inner.digest())
    return bytes(outer.digest())


def request_signature(authorization: str) -> str:
    """The hex ``Signature=`` of a SigV4 ``Authorization`` header: the seed of the event chain."""
    return authorization.rsplit("Signature=", 1)[-1].strip()
