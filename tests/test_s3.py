"""The pure S3 helpers of the async-result waiter: URIs, object URLs, S3's XML errors, and the S3
flavour of SigV4, each checked against what botocore does for the same object."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import boto3
import botocore.auth
import botocore.config
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from sagemaker_rt_aio import ParamValidationError, S3Error, ServiceError
from sagemaker_rt_aio._endpoints import host_header
from sagemaker_rt_aio._s3 import (
    MISSING,
    TRANSIENT,
    object_url,
    parse_s3_error,
    parse_s3_uri,
)
from sagemaker_rt_aio._signing import FrozenCredentials, payload_sha256, sign

ODD_KEY = "out/a b/\u00fc\u6f22+~!*'()%&=?#;:@$,[]{}|^`\"<>\\.txt"


class _Captured(Exception):
    """Raised from botocore's ``before-send`` hook: the request is recorded, never sent."""


def boto3_request(
    bucket: str,
    key: str,
    *,
    method: str = "GET",
    region: str = "us-west-2",
    endpoint_url: str | None = None,
    addressing_style: str | None = None,
) -> AWSRequest:
    """The request boto3 would send to fetch (or put) ``bucket/key``, caught before it leaves."""
    config = botocore.config.Config(
        s3={"addressing_style": addressing_style} if addressing_style else {},
        retries={"max_attempts": 1},
    )
    s3 = boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=config,
    )
    captured: list[AWSRequest] = []

    def capture(request: AWSRequest, **_: object) -> None:
        captured.append(request)
        raise _Captured

    s3.meta.events.register("before-send.s3.*", capture)
    with pytest.raises(_Captured):
        if method == "PUT":
            s3.put_object(Bucket=bucket, Key=key, Body=b"data")
        else:
            s3.get_object(Bucket=bucket, Key=key)
    return captured[0]


# -- parse_s3_uri ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bkt/key", ("bkt", "key")),
        ("s3://bkt/out/run 1/result.json.out", ("bkt", "out/run 1/result.json.out")),
        ("s3://my.dotted.bucket/a/b/c/", ("my.dotted.bucket", "a/b/c/")),
        (
            "s3://bkt/\u00fcber/\u6f22\u5b57 \U0001f600.out",
            ("bkt", "\u00fcber/\u6f22\u5b57 \U0001f600.out"),
        ),
        # An s3:// URI is not percent-encoded: "%20" is three characters of the key.
        ("s3://bkt/a%20b+c", ("bkt", "a%20b+c")),
        ("s3://bkt//leading//slashes", ("bkt", "/leading//slashes")),
        ("s3://bkt/line\nbreak", ("bkt", "line\nbreak")),
        # https object URLs are percent-encoded; path style and virtual-hosted style.
        ("https://s3.us-east-1.amazonaws.com/bkt/a%20b/c%2B", ("bkt", "a b/c+")),
        ("https://bkt.s3.us-west-2.amazonaws.com/a%20b/c", ("bkt", "a b/c")),
        ("https://my.bkt.s3.amazonaws.com/k", ("my.bkt", "k")),
        ("https://bkt.s3-us-west-2.amazonaws.com/k", ("bkt", "k")),
        ("https://bkt.s3.dualstack.eu-west-1.amazonaws.com/k/", ("bkt", "k/")),
        ("https://bkt.s3.cn-north-1.amazonaws.com.cn/k", ("bkt", "k")),
        ("https://s3-us-west-2.amazonaws.com/bkt/k", ("bkt", "k")),
    ],
)
def test_parse_s3_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "bkt/key",
        "s3://",
        "s3://bkt",
        "s3://bkt/",
        "s3:///key",
        "s3:/bkt/key",
        "S3://bkt/key",
        "http://bkt/key",
        "ftp://bkt/key",
        "https://s3.amazonaws.com/bkt",
        " s3://bkt/key",
    ],
)
def test_parse_s3_uri_rejects(uri: str) -> None:
    with pytest.raises(ParamValidationError) as info:
        parse_s3_uri(uri, "output_location")
    assert info.value.field == "output_location"
    assert isinstance(info.value, ValueError)


@pytest.mark.timeout(30)  # catastrophic backtracking on these hosts would run for ages, not seconds
def test_parse_s3_uri_hostile_host_is_quick() -> None:
    """The host pattern must not backtrack catastrophically on a long, almost-matching host."""
    for host in ("x.s3-" + "a-" * 5000 + "!", "x.s3" + ".a" * 5000 + "!", "a.s3." * 2000):
        with pytest.raises(ParamValidationError):
            parse_s3_uri(f"https://{host}/")
        parse_s3_uri(f"https://{host}/bkt/key")  # read as path style


# -- object_url --------------------------------------------------------------------------------


def test_object_url_virtual_hosted_on_aws() -> None:
    url = object_url("bkt", "key", region="us-east-1", endpoint_url=None)
    assert str(url) == "https://bkt.s3.us-east-1.amazonaws.com/key"
    assert host_header(url) == "bkt.s3.us-east-1.amazonaws.com"


def test_object_url_other_partitions() -> None:
    assert (
        str(object_url("bkt", "k", region="cn-north-1", endpoint_url=None))
        == "https://bkt.s3.cn-north-1.amazonaws.com.cn/k"
    )
    assert (
        str(object_url("bkt", "k", region="us-gov-west-1", endpoint_url=None))
        == "https://bkt.s3.us-gov-west-1.amazonaws.com/k"
    )


@pytest.mark.parametrize("bucket", ["bkt", "my-bucket-123", "a1b"])
@pytest.mark.parametrize("key", ["key", "a b/c.out", ODD_KEY, "k/../x//y", "~/x"])
def test_object_url_matches_boto3_virtual_hosted(bucket: str, key: str) -> None:
    ours = object_url(bucket, key, region="us-west-2", endpoint_url=None)
    theirs = boto3_request(bucket, key, region="us-west-2").url
    assert str(ours) == theirs
    assert ours.raw_host == f"{bucket}.s3.us-west-2.amazonaws.com"


@pytest.mark.parametrize("bucket", ["my.dotted.bucket", "Upper_Case_Legacy"])
def test_object_url_path_style_when_bucket_is_not_a_dns_label(bucket: str) -> None:
    """Dots would break TLS host matching (``*.s3...`` covers one label); botocore goes path style
    for them, as for legacy names that are not valid host labels."""
    ours = object_url(bucket, "a b", region="us-west-2", endpoint_url=None)
    assert str(ours) == f"https://s3.us-west-2.amazonaws.com/{bucket}/a%20b"
    assert str(ours) == boto3_request(bucket, "a b", region="us-west-2").url


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9000/",
        "http://localhost:9000/s3proxy",
        "http://localhost:9000/s3proxy/",
        "https://s3.internal.example:8443/deep/base",
    ],
)
@pytest.mark.parametrize("key", ["key", ODD_KEY, "k/../x//y"])
def test_object_url_path_style_for_custom_endpoint(endpoint: str, key: str) -> None:
    ours = object_url("bkt", key, region="us-east-1", endpoint_url=URL(endpoint))
    theirs = boto3_request(
        "bkt", key, region="us-east-1", endpoint_url=endpoint, addressing_style="path"
    ).url
    assert str(ours) == theirs
    base = endpoint.rstrip("/")
    assert str(ours).startswith(f"{base}/bkt/")


def test_object_url_key_is_encoded_once_and_kept_raw() -> None:
    """The URL carries the key exactly as S3 expects it on the wire: no dot-segment removal, no
    collapsed slashes, no double encoding of ``%``."""
    url = object_url("bkt", "a/./b/../c//d%2F e", region="us-west-2", endpoint_url=None)
    assert url.raw_path == "/a/./b/../c//d%252F%20e"
    custom = URL("http://127.0.0.1:1/base")
    assert object_url("bkt", "x/../y", region="us-west-2", endpoint_url=custom).raw_path == (
        "/base/bkt/x/../y"
    )


# -- parse_s3_error ----------------------------------------------------------------------------


def _headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


def test_parse_s3_error_xml_body() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
        b"<RequestId>4442587FB7D0A2F9</RequestId><HostId>host-id</HostId></Error>"
    )
    error = parse_s3_error(403, _headers(x_amz_request_id="header-id"), body)
    assert isinstance(error, S3Error)
    assert isinstance(error, ServiceError)
    assert error.code == "AccessDenied"
    assert error.message == "Access Denied"
    assert error.status_code == 403
    assert error.request_id == "4442587FB7D0A2F9"  # the body's, over the header's
    assert error.response_metadata is not None
    assert error.response_metadata.http_status_code == 403
    assert error.response_metadata.http_headers["x-amz-request-id"] == "header-id"
    assert "AccessDenied (403): Access Denied" in str(error)


def test_parse_s3_error_slowdown() -> None:
    body = (
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    )
    error = parse_s3_error(503, _headers(x_amz_request_id="rid"), body)
    assert (error.code, error.status_code, error.request_id) == ("SlowDown", 503, "rid")
    assert error.message == "Please reduce your request rate."


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, "AccessDenied"), (404, "NoSuchKey"), (503, "SlowDown"), (400, "400"), (301, "301")],
)
def test_parse_s3_error_bodiless_head(status: int, code: str) -> None:
    """A HEAD answer has no body: the code comes from the status, the id from the header."""
    error = parse_s3_error(status, _headers(x_amz_request_id="head-rid"), b"")
    assert error.code == code
    assert error.status_code == status
    assert error.request_id == "head-rid"
    assert error.message is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html",
        b"\x00\xff\xfe not xml at all",
        b"<Error><Code>unterminated",
        b"{}" * 500,
    ],
)
def test_parse_s3_error_garbage_body(body: bytes) -> None:
    error = parse_s3_error(502, _headers(), body)
    assert isinstance(error, S3Error)
    assert error.code == "502"
    assert error.status_code == 502
    assert error.request_id is None
    assert error.message is not None
    assert len(error.message) <= 200  # a bounded excerpt, never the whole body


def test_parse_s3_error_xml_without_code_uses_status() -> None:
    error = parse_s3_error(403, _headers(), b"<Other><Message>hm</Message></Other>")
    assert error.code == "AccessDenied"
    assert error.message == "hm"


def test_status_classes() -> None:
    assert 404 in MISSING
    assert {500, 503} <= TRANSIENT
    assert 403 not in MISSING | TRANSIENT


# -- the S3 flavour of SigV4 -------------------------------------------------------------------

TIMESTAMP = "20240229T235959Z"


@contextmanager
def botocore_clock(timestamp: str) -> Iterator[None]:
    now = datetime.datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ")
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        yield


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT"])
@pytest.mark.parametrize(
    ("bucket", "key", "endpoint"),
    [
        ("bkt", "out/result.out", None),
        ("bkt", ODD_KEY, None),
        ("my.bkt", "a b/../c//d", None),
        ("bkt", ODD_KEY, "http://127.0.0.1:9000/base"),
    ],
)
@pytest.mark.parametrize("token", [None, "session-token/+="])
def test_s3_signature_matches_botocore(
    method: str, bucket: str, key: str, endpoint: str | None, token: str | None
) -> None:
    credentials = FrozenCredentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token
    )
    url = object_url(
        bucket, key, region="eu-west-1", endpoint_url=URL(endpoint) if endpoint else None
    )
    body = b'{"input": "\xc3\xbc"}' * 7 if method == "PUT" else b""
    digest = payload_sha256(body)
    assert digest == hashlib.sha256(body).hexdigest()
    headers = {"x-amz-content-sha256": digest}
    if method == "PUT":
        headers["Content-Type"] = "application/json"
    ours = dict(headers)
    sign(
        method=method,
        host=host_header(url),
        path=url.raw_path,
        headers=ours,
        payload_hash=digest,
        credentials=credentials,
        region="eu-west-1",
        service="s3",
        timestamp=TIMESTAMP,
        double_encode_path=False,
    )

    reference = AWSRequest(method=method, url=str(url), headers=dict(headers), data=body)
    with botocore_clock(TIMESTAMP):
        botocore.auth.S3SigV4Auth(
            Credentials(credentials.access_key, credentials.secret_key, token), "s3", "eu-west-1"
        ).add_auth(reference)

    assert ours["Authorization"] == reference.headers["Authorization"]
    assert ours["X-Amz-Date"] == reference.headers["X-Amz-Date"] == TIMESTAMP
    assert ours["x-amz-content-sha256"] == reference.headers["X-Amz-Content-SHA256"]
    assert "/eu-west-1/s3/aws4_request" in ours["Authorization"]
    assert "x-amz-content-sha256" in ours["Authorization"].split("SignedHeaders=")[1]
    if token:
        assert ours["X-Amz-Security-Token"] == reference.headers["X-Amz-Security-Token"]


def test_s3_signature_signs_the_path_as_sent_not_double_encoded() -> None:
    """SigV4 for every other service encodes the path a second time; S3 must not, or any key
    with a space or a '%' gets SignatureDoesNotMatch."""
    credentials = FrozenCredentials("AKIDEXAMPLE", "secret")
    url = object_url("bkt", "a b%", region="us-east-1", endpoint_url=None)
    once: dict[str, str] = {"x-amz-content-sha256": payload_sha256(b"")}
    twice = dict(once)
    common = {
        "method": "GET",
        "host": host_header(url),
        "path": url.raw_path,
        "payload_hash": payload_sha256(b""),
        "credentials": credentials,
        "region": "us-east-1",
        "service": "s3",
        "timestamp": TIMESTAMP,
    }
    sign(headers=once, double_encode_path=False, **common)  # type: ignore[arg-type]
    sign(headers=twice, double_encode_path=True, **common)  # type: ignore[arg-type]
    assert once["Authorization"] != twice["Authorization"]

    reference = AWSRequest(method="GET", url=str(url), headers={}, data=b"")
    with botocore_clock(TIMESTAMP):
        botocore.auth.S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "s3", "us-east-1").add_auth(
            reference
        )
    assert once["Authorization"] == reference.headers["Authorization"]


def test_object_url_put_matches_boto3() -> None:
    request = boto3_request("bkt", ODD_KEY, method="PUT", region="ap-southeast-2")
    assert request.method == "PUT"
    assert str(object_url("bkt", ODD_KEY, region="ap-southeast-2", endpoint_url=None)) == (
        request.url
    )
