"""SigV4: ``sagemaker_rt_aio._signing.sign`` against botocore's own signers, and end to end.

The differential tests give the same request to ``sign`` and to ``botocore.auth.SigV4Auth`` (or
``S3SigV4Auth``) on an ``AWSRequest`` with the clock pinned, and compare the whole
``Authorization`` header. The end-to-end tests run a loopback server that re-signs every request
it receives with botocore and answers 403 to any request whose signature differs.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import string
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from unittest import mock

import botocore.auth
import pytest
from aiohttp import web
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode
from conftest import ScriptedServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from sagemaker_rt_aio import RetryPolicy, SageMakerRuntimeClient, ServiceError, _signing
from sagemaker_rt_aio._endpoints import host_header
from sagemaker_rt_aio._signing import (
    EMPTY_SHA256,
    UNSIGNED_HEADERS,
    FrozenCredentials,
    canonical_uri,
    payload_sha256,
    sign,
    sign_headers,
    signing_hmac,
)

SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
# When a property fails, hypothesis's failure report touches mypy_extensions.TypedDict, whose
# DeprecationWarning (an error under filterwarnings=error) turns the report into an INTERNALERROR.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)
HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# -- botocore as the reference ----------------------------------------------------------------


@contextmanager
def botocore_clock(timestamp: str) -> Iterator[None]:
    """Pin the time botocore's signers read. botocore.auth takes it from ``get_current_datetime``
    (botocore.compat), imported by name into botocore.auth, and formats it with SIGV4_TIMESTAMP."""
    assert hasattr(botocore.auth, "get_current_datetime"), "botocore.auth changed its clock"
    now = datetime.datetime.strptime(timestamp, SIGV4_TIMESTAMP)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        yield


def botocore_signed(
    auth_cls: type[botocore.auth.SigV4Auth],
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: FrozenCredentials,
    region: str,
    service: str,
    timestamp: str,
) -> AWSRequest:
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    creds = Credentials(credentials.access_key, credentials.secret_key, credentials.token)
    with botocore_clock(timestamp):
        auth_cls(creds, service, region).add_auth(request)
    return request


# -- strategies ---------------------------------------------------------------------------------

_TCHAR_EXTRA = "!#$%&'*+-.^_`|~"
# Names the signer treats specially, or that neither client puts in the signer's input
# (botocore derives X-Amz-Date, the token and the S3 payload header itself; "Date" makes
# botocore sign with Date instead of X-Amz-Date; Accept-Encoding is added after signing by
# both clients and is tested on its own below).
_RESERVED = frozenset(
    {
        "host",
        "date",
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
        "accept-encoding",
    }
)
_BLACKLISTED = sorted(UNSIGNED_HEADERS - {"accept-encoding"})

header_names = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + _TCHAR_EXTRA, min_size=1, max_size=24),
    st.sampled_from(
        [
            "Content-Type",
            "Accept",
            "X-Amzn-SageMaker-Custom-Attributes",
            "X-Amzn-SageMaker-Target-Model",
            "x-amzn-sagemaker-inference-id",
            "X-AMZN-SAGEMAKER-SESSION-ID",
        ]
    ),
    # botocore's blacklist, in mixed case: signed by neither.
    st.sampled_from(_BLACKLISTED).map(str.title),
).filter(lambda name: name.lower() not in _RESERVED)

printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
header_values = st.one_of(
    st.text(alphabet=printable, max_size=40),
    st.sampled_from(["", " ", "   ", "  a  ", "a   b", " a b  c ", 'x=1;  y="two  words" ']),
    st.lists(st.sampled_from(["a", " ", "  ", "b-c", "=", ";"]), max_size=12).map("".join),
)


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.lists(header_names, max_size=8, unique_by=str.lower))
    return {name: draw(header_values) for name in names}


def _segment(text: str) -> str:
    return percent_encode(text)  # botocore's label encoding: safe chars are -._~


path_segments = st.one_of(
    st.text(max_size=12).map(_segment),  # any text: %2F, %20, %25, non-ASCII...
    st.sampled_from(["", ".", "..", "a", "my%20ep", "a%2Fb", "%2F", "~user", "x.y"]),
)


@st.composite
def paths(draw: st.DrawFn) -> str:
    """Operation paths (a percent-encoded endpoint label), often behind a base path."""
    prefix = draw(st.lists(path_segments, max_size=3))
    label = _segment(draw(st.text(min_size=1, max_size=20)))
    suffix = draw(
        st.sampled_from(["/invocations", "/async-invocations", "/invocations-response-stream"])
    )
    base = "".join("/" + s for s in prefix)
    path = f"{base}/endpoints/{label}{suffix}"
    if draw(st.booleans()):  # now and then, an arbitrary path
        path = "/" + "/".join(draw(st.lists(path_segments, max_size=6)))
    return path


hosts = st.sampled_from(
    [
        "runtime.sagemaker.us-east-1.amazonaws.com",
        "runtime-fips.sagemaker.us-gov-west-1.amazonaws.com",
        "vpce-123-abc.runtime.sagemaker.eu-west-1.vpce.amazonaws.com",
        "127.0.0.1",
        "localhost",
        "[::1]",
        "Example.COM",
    ]
)
ports = st.one_of(st.none(), st.just(80), st.just(443), st.integers(1, 65535))
schemes = st.sampled_from(["http", "https"])
regions = st.one_of(
    st.sampled_from(["us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1", "ap-south-2"]),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=20),
)
timestamps = st.datetimes(
    min_value=datetime.datetime(1990, 1, 1), max_value=datetime.datetime(2099, 12, 31, 23, 59, 59)
).map(lambda dt: dt.strftime(SIGV4_TIMESTAMP))
secret_chars = string.ascii_letters + string.digits + "/+="
credentials_st = st.builds(
    FrozenCredentials,
    access_key=st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=24),
    secret_key=st.text(alphabet=secret_chars, min_size=1, max_size=48),
    token=st.one_of(
        st.none(), st.just(""), st.text(alphabet=secret_chars, min_size=1, max_size=200)
    ),
)
unreserved = string.ascii_letters + string.digits + "-_.~"
queries = st.lists(
    st.tuples(
        st.text(alphabet=unreserved, min_size=1, max_size=6),
        st.text(alphabet=unreserved, max_size=6),
    ),
    max_size=4,
)


def _url(scheme: str, host: str, port: int | None, path: str, query: str = "") -> str:
    netloc = host if port is None else f"{host}:{port}"
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


# -- differential tests -------------------------------------------------------------------------


@HYPOTHESIS
@given(
    method=st.sampled_from(["POST", "GET", "PUT"]),
    scheme=schemes,
    host=hosts,
    port=ports,
    path=paths(),
    query_pairs=queries,
    headers=header_sets(),
    body=st.one_of(st.just(b""), st.binary(max_size=300)),
    credentials=credentials_st,
    region=regions,
    service=st.sampled_from(["sagemaker", "execute-api", "sts"]),
    timestamp=timestamps,
)
def test_sign_matches_botocore_sigv4(
    method: str,
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    query_pairs: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    credentials: FrozenCredentials,
    region: str,
    service: str,
    timestamp: str,
) -> None:
    # The canonical query string: sorted pairs; these characters need no encoding.
    query = "&".join(f"{k}={v}" for k, v in sorted(query_pairs))
    url = _url(scheme, host, port, path, query)
    expected = botocore_signed(
        botocore.auth.SigV4Auth,
        method=method,
        url=url,
        headers=headers,
        body=body,
        credentials=credentials,
        region=region,
        service=service,
        timestamp=timestamp,
    )
    ours = dict(headers)
    sign(
        method=method,
        host=host_header(URL(url)),  # what the client computes from its endpoint URL
        path=path,
        headers=ours,
        payload_hash=payload_sha256(body),
        credentials=credentials,
        region=region,
        service=service,
        query=query,
        timestamp=timestamp,
    )
    assert ours["Authorization"] == expected.headers["Authorization"]
    assert ours["X-Amz-Date"] == expected.headers["X-Amz-Date"] == timestamp
    assert ours.get("X-Amz-Security-Token") == expected.headers.get("X-Amz-Security-Token")
    if not credentials.token:
        assert "X-Amz-Security-Token" not in ours


@HYPOTHESIS
@given(
    scheme=schemes,
    bucket=st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=3, max_size=20),
    virtual=st.booleans(),
    key=st.text(min_size=1, max_size=40),
    headers=header_sets(),
    body=st.one_of(st.just(b""), st.binary(max_size=300)),
    credentials=credentials_st,
    region=regions,
    timestamp=timestamps,
    method=st.sampled_from(["GET", "HEAD", "PUT"]),
)
def test_sign_s3_variant_matches_botocore_s3sigv4(
    scheme: str,
    bucket: str,
    virtual: bool,
    key: str,
    headers: dict[str, str],
    body: bytes,
    credentials: FrozenCredentials,
    region: str,
    timestamp: str,
    method: str,
) -> None:
    # S3 keys go on the wire encoded once, "/" kept (botocore: percent_encode(key, safe="/~")),
    # and are signed as sent: no second encoding, no dot-segment or "//" removal.
    encoded_key = percent_encode(key, safe="/~")
    if virtual:
        host, path = f"{bucket}.s3.{region}.amazonaws.com", f"/{encoded_key}"
    else:
        host, path = f"s3.{region}.amazonaws.com", f"/{bucket}/{encoded_key}"
    url = _url(scheme, host, None, path)
    expected = botocore_signed(
        botocore.auth.S3SigV4Auth,
        method=method,
        url=url,
        headers=headers,
        body=body,
        credentials=credentials,
        region=region,
        service="s3",
        timestamp=timestamp,
    )
    payload_hash = payload_sha256(body)
    ours = {**headers, "X-Amz-Content-SHA256": payload_hash}
    sign(
        method=method,
        host=host,
        path=path,
        headers=ours,
        payload_hash=payload_hash,
        credentials=credentials,
        region=region,
        service="s3",
        timestamp=timestamp,
        double_encode_path=False,
    )
    assert expected.headers["X-Amz-Content-SHA256"] == payload_hash
    assert ours["Authorization"] == expected.headers["Authorization"]
    assert ours.get("X-Amz-Security-Token") == expected.headers.get("X-Amz-Security-Token")


@pytest.mark.parametrize(
    ("path", "botocore_form"),
    [
        (
            "/endpoints/my%20ep%2F..%3Fx/invocations",
            "/endpoints/my%2520ep%252F..%253Fx/invocations",
        ),
        ("/prefix//endpoints/ep/invocations", "/prefix/endpoints/ep/invocations"),
        ("//endpoints/ep/invocations", "/endpoints/ep/invocations"),
        ("/a/./b/../endpoints/ep/invocations", "/a/endpoints/ep/invocations"),
        ("/a/.", "/a"),
        ("/a/b/..", "/a"),
        ("/..", "/"),
        ("//", "/"),
        ("", "/"),
        ("/a/", "/a/"),
        ("/~x/%7E", "/~x/%257E"),
    ],
)
def test_canonical_uri_matches_botocore(path: str, botocore_form: str) -> None:
    reference = botocore.auth.SigV4Auth(None, "sagemaker", "us-east-1")
    assert reference._normalize_url_path(path) == botocore_form
    assert canonical_uri(path) == botocore_form


@HYPOTHESIS
@given(scheme=schemes, host=hosts, port=ports)
def test_host_header_matches_botocore(scheme: str, host: str, port: int | None) -> None:
    url = _url(scheme, host, port, "/endpoints/ep/invocations")
    assert host_header(URL(url)) == botocore.auth._host_from_url(url)


def test_accept_encoding_is_not_signed() -> None:
    # botocore never sees Accept-Encoding (urllib3 adds it after signing), so neither may we sign it.
    headers = {"Accept-Encoding": "identity", "Content-Type": "application/json"}
    sign(
        method="POST",
        host="h",
        path="/",
        headers=headers,
        payload_hash=payload_sha256(b""),
        credentials=FrozenCredentials("AKID", "SECRET"),
        region="us-east-1",
        service="sagemaker",
        timestamp="20260101T000000Z",
    )
    assert "SignedHeaders=content-type;host;x-amz-date," in headers["Authorization"]


# -- the signing-key cache and credential hygiene ---------------------------------------------


def _sign_once(
    credentials: FrozenCredentials,
    timestamp: str,
    region: str = "us-east-1",
    *,
    body: bytes = b"x",
    headers: dict[str, str] | None = None,
) -> str:
    headers = {} if headers is None else dict(headers)
    sign(
        method="POST",
        host="runtime.sagemaker.us-east-1.amazonaws.com",
        path="/endpoints/ep/invocations",
        headers=headers,
        payload_hash=payload_sha256(body),
        credentials=credentials,
        region=region,
        service="sagemaker",
        timestamp=timestamp,
    )
    return headers["Authorization"]


def _botocore_once(
    credentials: FrozenCredentials,
    timestamp: str,
    *,
    body: bytes = b"x",
    headers: dict[str, str] | None = None,
) -> str:
    """botocore's Authorization for what ``_sign_once`` signs."""
    return botocore_signed(
        botocore.auth.SigV4Auth,
        method="POST",
        url="https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/ep/invocations",
        headers=headers or {},
        body=body,
        credentials=credentials,
        region="us-east-1",
        service="sagemaker",
        timestamp=timestamp,
    ).headers["Authorization"]


def test_signing_key_is_cached_per_day() -> None:
    credentials = FrozenCredentials("AKID", f"secret-{uuid.uuid4()}")
    before = signing_hmac.cache_info()
    first = _sign_once(credentials, "20260315T000001Z")
    after_first = signing_hmac.cache_info()
    assert after_first.misses == before.misses + 1
    second = _sign_once(credentials, "20260315T235959Z")  # same day: the key is reused
    after_second = signing_hmac.cache_info()
    assert after_second.misses == after_first.misses  # (the per-shape template may not even ask)
    assert first != second  # a different timestamp still signs differently
    _sign_once(credentials, "20260316T000000Z")  # the next day derives a new key
    assert signing_hmac.cache_info().misses == after_second.misses + 1
    _sign_once(credentials, "20260316T120000Z", region="eu-west-1")  # so does another region
    assert signing_hmac.cache_info().misses == after_second.misses + 2
    # The cached key is the one botocore derives.
    assert second == _botocore_once(credentials, "20260315T235959Z")


def test_requests_are_signed_with_openssls_sha256_from_one_ready_state() -> None:
    # hashlib's (OpenSSL's: the CPU's SHA instructions, and the validated module in FIPS mode),
    # copied from one ready state rather than made per hash; the HMAC's states are copies too.
    assert type(_signing._SHA256) is type(hashlib.sha256())
    inner, outer = signing_hmac("secret/ready", "20260315", "us-east-1", "sagemaker")
    assert type(inner) is type(outer) is type(hashlib.sha256())
    assert _signing._SHA256.hexdigest() == EMPTY_SHA256  # the ready state is never updated


@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 119, 120, 300, 100_000])
def test_bodies_around_sha256_block_boundaries_sign_as_botocore(size: int) -> None:
    # Bodies around SHA-256's padding boundaries (55/56 bytes in a block, and a second block),
    # and a canonical request and string to sign of the usual few hundred bytes.
    body = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    credentials = FrozenCredentials("AKIDEXAMPLE", f"secret/{size}", "token" if size % 2 else None)
    headers = {"Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "a"}
    for timestamp in ("20260315T120000Z", "20260315T120001Z", "20260316T000000Z"):
        ours = _sign_once(credentials, timestamp, body=body, headers=headers)
        assert ours == _botocore_once(credentials, timestamp, body=body, headers=headers)
        assert payload_sha256(body) == hashlib.sha256(body).hexdigest()


@settings(max_examples=100, deadline=None, database=None)
@given(
    access_key=st.text(alphabet=string.ascii_uppercase + string.digits, min_size=4, max_size=20),
    secret=st.text(alphabet=secret_chars, min_size=12, max_size=48),
    token=st.one_of(st.none(), st.text(alphabet=secret_chars, min_size=12, max_size=100)),
)
def test_frozen_credentials_repr_hides_secrets(
    access_key: str, secret: str, token: str | None
) -> None:
    credentials = FrozenCredentials(access_key, secret, token)
    shown = [repr(credentials), str(credentials), f"{credentials!r}", repr([credentials])]
    for text in shown:
        assert secret not in text
        assert token is None or token not in text
        assert "FrozenCredentials" in text


def test_frozen_credentials_repr_fixed_example() -> None:
    credentials = FrozenCredentials(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "IQoJb3JpZ2luX2VjEXAMPLE",
    )
    text = repr(credentials)
    assert "wJalr" not in text and "IQoJ" not in text and "EXAMPLEKEY" not in text
    assert "AKIAIOSFODNN7EXAMPLE" not in text  # the key id is abbreviated too
    assert text.startswith("FrozenCredentials(access_key=AKIA")


# -- end to end: a server that checks every signature with botocore ---------------------------

_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[^/,]+)/(?P<date>\d{8})/(?P<region>[^/,]+)/"
    r"(?P<service>[^/,]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
KNOWN_KEYS = {
    "AKIDTOKEN": Credentials("AKIDTOKEN", "secret/with+token=", "session-token-" + "x" * 300),
    "AKIDPLAIN": Credentials("AKIDPLAIN", "plain-secret"),
}


class SignatureChecker:
    """Re-signs each received request with botocore; records why any one was refused."""

    def __init__(self) -> None:
        self.verified = 0
        self.refusals: list[str] = []

    def check(self, request: web.Request, body: bytes) -> str | None:
        authorization = request.headers.get("Authorization", "")
        match = _AUTH_RE.fullmatch(authorization)
        if match is None:
            return f"malformed Authorization: {authorization!r}"
        known = KNOWN_KEYS.get(match["akid"])
        if known is None:
            return "unknown access key"
        stamp = request.headers.get("X-Amz-Date", "")
        try:
            when = datetime.datetime.strptime(stamp, SIGV4_TIMESTAMP)
        except ValueError:
            return f"bad X-Amz-Date {stamp!r}"
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        if abs((now - when).total_seconds()) > 300:
            return "signature expired"
        if match["date"] != stamp[:8]:
            return "credential scope date differs from X-Amz-Date"
        signed = match["signed"].split(";")
        if signed != sorted(signed) or not {"host", "x-amz-date"} <= set(signed):
            return f"bad SignedHeaders {signed}"
        if known.token and (
            "x-amz-security-token" not in signed
            or request.headers.get("X-Amz-Security-Token") != known.token
        ):
            return "session token missing or unsigned"
        headers = {}
        for name in signed:
            values = request.headers.getall(name, [])
            if len(values) != 1:
                return f"signed header {name} appears {len(values)} times"
            headers[name] = values[0]
        url = f"http://{request.headers['Host']}{request.raw_path}"
        frozen = FrozenCredentials(known.access_key, known.secret_key, known.token)
        expected = botocore_signed(
            botocore.auth.SigV4Auth,
            method=request.method,
            url=url,
            headers=headers,
            body=body,
            credentials=frozen,
            region=match["region"],
            service=match["service"],
            timestamp=stamp,
        )
        if (match["region"], match["service"]) != ("us-east-1", "sagemaker"):
            return f"scope {match['region']}/{match['service']}"
        if expected.headers["Authorization"] != authorization:
            return "signature mismatch"
        return None

    async def handler(self, request: web.Request, body: bytes) -> web.StreamResponse:
        refusal = self.check(request, body)
        if refusal is not None:
            self.refusals.append(refusal)
            return web.json_response(
                {"message": f"The request signature we calculated does not match: {refusal}"},
                status=403,
                headers={
                    "x-amzn-ErrorType": "InvalidSignatureException:http://internal.amazon.com/",
                    "x-amzn-RequestId": "req-403",
                },
            )
        self.verified += 1
        if request.path.endswith("/async-invocations"):
            return web.json_response(
                {"InferenceId": "inf-1"},
                status=202,
                headers={"X-Amzn-SageMaker-OutputLocation": "s3://bucket/out.json"},
            )
        return web.Response(body=body, headers={"Content-Type": "application/octet-stream"})


@pytest.fixture
def checker(scripted_server: ScriptedServer) -> SignatureChecker:
    checker = SignatureChecker()
    scripted_server.default = checker.handler
    return checker


ODD_ATTRIBUTES = [
    "",
    " ",
    "  leading and trailing  ",
    "runs   of    spaces",
    'a=1; b="two words"; c=3',
    string.punctuation,
    "x" * 1024,
]


@pytest.mark.parametrize("akid", sorted(KNOWN_KEYS))
@pytest.mark.parametrize(
    "base_path", ["", "/", "/prefix", "/prefix/", "/a/b/c", "/a%20b/c~d", "/a//b"]
)
async def test_client_requests_verify_with_botocore(
    scripted_server: ScriptedServer, checker: SignatureChecker, akid: str, base_path: str
) -> None:
    known = KNOWN_KEYS[akid]
    async with SageMakerRuntimeClient(
        region_name="us-east-1",
        endpoint_url=scripted_server.url + base_path,
        aws_access_key_id=known.access_key,
        aws_secret_access_key=known.secret_key,
        aws_session_token=known.token,
        retry_policy=RetryPolicy.none(),
    ) as client:
        for attributes in ODD_ATTRIBUTES:
            result = await client.invoke_endpoint(
                endpoint_name="my-endpoint",
                body=b'{"inputs": "hi"}',
                content_type="application/json",
                accept="application/json; q=0.9,  text/plain",
                custom_attributes=attributes,
            )
            assert result.body == b'{"inputs": "hi"}'
        await client.invoke_endpoint(
            endpoint_name="e",
            body="",
            target_model="models/m 1.tar.gz",
            target_variant="v1",
            target_container_hostname="c-1",
            inference_id="id with  spaces",
            enable_explanations="`true`",
            inference_component_name="ic-1",
            session_id="NEW_SESSION",
        )
        await client.invoke_endpoint(endpoint_name="e", body=bytes(range(256)) * 40)
        queued = await client.invoke_endpoint_async(
            endpoint_name="async-ep",
            input_location="s3://bucket/in put.json",
            content_type="text/csv",
            custom_attributes="  k=v  ",
            request_ttl_seconds=60,
            invocation_timeout_seconds=3600,
            s3_output_path_extension="out/x",
            filename="f.json",
        )
        assert queued.inference_id == "inf-1"
        await client.invoke_endpoint_async(endpoint_name="async-ep", body=b"inline")
    assert checker.refusals == []
    assert checker.verified == len(ODD_ATTRIBUTES) + 4
    received_paths = {r.raw_path for r in scripted_server.received}
    prefix = base_path.rstrip("/")
    assert f"{prefix}/endpoints/my-endpoint/invocations" in received_paths
    assert f"{prefix}/endpoints/async-ep/async-invocations" in received_paths


async def test_wrong_secret_is_refused(
    scripted_server: ScriptedServer, checker: SignatureChecker
) -> None:
    async with SageMakerRuntimeClient(
        region_name="us-east-1",
        endpoint_url=scripted_server.url,
        aws_access_key_id="AKIDPLAIN",
        aws_secret_access_key="not-the-secret",
        retry_policy=RetryPolicy.none(),
    ) as client:
        with pytest.raises(ServiceError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert caught.value.status_code == 403
    assert caught.value.code == "InvalidSignatureException"
    assert caught.value.request_id == "req-403"
    assert checker.refusals == ["signature mismatch"]
    assert checker.verified == 0


async def test_wrong_region_is_refused(
    scripted_server: ScriptedServer, checker: SignatureChecker
) -> None:
    # The checker itself must notice a request signed for another scope.
    async with SageMakerRuntimeClient(
        region_name="eu-west-1",
        endpoint_url=scripted_server.url,
        aws_access_key_id="AKIDPLAIN",
        aws_secret_access_key="plain-secret",
        retry_policy=RetryPolicy.none(),
    ) as client:
        with pytest.raises(ServiceError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert caught.value.status_code == 403
    assert checker.refusals == ["scope eu-west-1/sagemaker"]


def test_clients_with_other_keys_sign_one_request_shape_from_many_threads() -> None:
    """The signer's per-shape template remembers the last key's signing state; clients with other
    keys, on other threads (each with its own event loop), sign the same shape at once and must
    each get their own signature, never a mix of the two keys'."""
    import threading

    keys = [FrozenCredentials(f"AKIDTHREAD{i}", f"thread-secret-{i}") for i in range(2)]

    def authorization(credentials: FrozenCredentials, day_offset: int) -> str:
        headers = {"Content-Type": "application/json"}
        stamp = f"202612{2 + day_offset:02d}T083000Z"
        sign_headers(
            "POST", "runtime.sagemaker.us-east-1.amazonaws.com", "/endpoints/threads/invocations",
            headers, EMPTY_SHA256, credentials, "us-east-1", "sagemaker", "", stamp,
        )  # fmt: skip
        return headers["Authorization"]

    # The oracle: each key's signatures on their own, one thread, for two days.
    expected = {(i, d): authorization(keys[i], d) for i in range(2) for d in range(2)}
    assert len(set(expected.values())) == 4
    wrong: list[tuple[int, int, str]] = []

    def work(i: int) -> None:
        for n in range(3000):
            d = n % 2  # another day now and then: the state is recomputed, not only read
            got = authorization(keys[i], d)
            if got != expected[i, d]:
                wrong.append((i, d, got))

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(previous)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []
