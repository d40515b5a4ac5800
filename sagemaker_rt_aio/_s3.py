"""The little of S3 the async-result waiter needs, as pure functions: object URLs, signing inputs,
and S3's XML errors.

Virtual-hosted style on AWS (``https://bucket.s3.region.amazonaws.com/key``), path style for a custom
``s3_endpoint_url`` (an emulator, a VPC endpoint) and for bucket names with dots, which would break
TLS host matching as botocore also avoids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

from yarl import URL

from ._endpoints import s3_url
from ._errors import ParamValidationError, S3Error
from ._types import ResponseMetadata

# A key may hold any character, line breaks included.
_S3_URI = re.compile(r"s3://(?P<bucket>[^/]+)/(?P<key>.+)", re.DOTALL)
_HTTPS_URI = re.compile(r"https://(?P<host>[^/]+)/(?P<rest>.+)", re.DOTALL)
# bucket.s3.amazonaws.com, bucket.s3.region.amazonaws.com, bucket.s3-region.amazonaws.com(.cn)
# (Each part has one way to match: no catastrophic backtracking on a long hostile host.)
_VIRTUAL_HOST = re.compile(
    r"(?P<bucket>.+)\.s3(?:-[a-z0-9-]+)?(?:\.[a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?"
)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")

# What S3's answers mean to a poller.
MISSING = frozenset({404})
TRANSIENT = frozenset({500, 502, 503, 504})


def parse_s3_uri(uri: str, field: str = "location") -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``, or of an ``https://`` object URL: virtual-hosted
    (``https://bucket.s3.region.amazonaws.com/key``) or path style (``https://s3.../bucket/key``)."""
    match = _S3_URI.fullmatch(uri)
    if match is None and (https := _HTTPS_URI.fullmatch(uri)):
        host = https["host"].rpartition("@")[2].split(":")[0].lower()
        # A DNS name has at most 253 characters; a longer "host" is never virtual-hosted S3.
        if len(host) <= 253 and (virtual := _VIRTUAL_HOST.fullmatch(host)):
            return virtual["bucket"], unquote(https["rest"])
        bucket, _, key = https["rest"].partition("/")
        if key:
            return bucket, unquote(key)
    if match is None:
        raise ParamValidationError(field, f"must be an s3://bucket/key URI, got {uri!r}")
    return match["bucket"], match["key"]


def object_url(bucket: str, key: str, *, region: str, endpoint_url: URL | None) -> URL:
    """The URL of an object, already percent-encoded as it goes on the wire."""
    path_key = quote(key, safe="/~")
    if endpoint_url is not None:
        base = endpoint_url.raw_path.rstrip("/")
        return endpoint_url.with_path(f"{base}/{bucket}/{path_key}", encoded=True)
    regional = URL(s3_url(region))
    if _BUCKET.fullmatch(bucket) and "." not in bucket:
        host = f"{bucket}.{regional.raw_host}"
        return URL.build(scheme="https", host=host, path=f"/{path_key}", encoded=True)
    return regional.with_path(f"/{bucket}/{path_key}", encoded=True)


def parse_s3_error(status: int, headers: Mapping[str, str], body: bytes) -> S3Error:
    """S3's XML error (``<Error><Code>…``), or a code from the status for bodiless HEAD answers."""
    code = message = None
    request_id = headers.get("x-amz-request-id")
    if body.strip():
        try:
            from xml.etree import ElementTree  # only for an S3 error: not at import time

            root = ElementTree.fromstring(body)
            code = root.findtext("Code")
            message = root.findtext("Message")
            request_id = root.findtext("RequestId") or request_id
        except ElementTree.ParseError:
            message = body[:200].decode("utf-8", "replace")
    if not code:
        code = {403: "AccessDenied", 404: "NoSuchKey", 503: "SlowDown"}.get(status, str(status))
    metadata = ResponseMetadata.from_http(status, headers)
    return S3Error(
        message,
        code=code,
        status_code=status,
        request_id=request_id,
        response_metadata=metadata,
    )
