"""The in-memory object store and its path-style S3 interface (``GET``/``HEAD``/``PUT``/``DELETE``).

Async inference reads its input from here and writes its output and failure objects here; clients
read them back with ordinary S3 requests (boto3 with ``addressing_style="path"``, or the library's
own waiter) against the runtime's URL. Errors use S3's XML format. The bucket name ``endpoints`` is
reserved: its paths belong to the SageMaker operations.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from aiohttp import web

from . import _sigv4_verify as sigv4
from ._faults import FaultInjector
from ._http import check_signature, new_request_id, precheck_signature, read_body
from ._invocation import BodyTooLarge

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
RESERVED_BUCKETS = frozenset({"endpoints"})
# S3's bucket naming rules, slightly relaxed (underscores and upper case allowed for local use).
_BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")
# Virtual-hosted style: bucket.s3.amazonaws.com, bucket.s3.region.amazonaws.com, bucket.s3-region...
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>.+?)\.s3[.-]")


@dataclass(frozen=True)
class StoredObject:
    data: bytes = field(repr=False)
    content_type: str
    etag: str
    last_modified: float
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: ``x-amz-checksum-*`` headers sent with the upload, answered when a GET asks for them.
    checksums: Mapping[str, str] = field(default_factory=dict)


def validate_bucket(bucket: str) -> None:
    if bucket in RESERVED_BUCKETS:
        raise ValueError(f"the bucket name {bucket!r} is reserved by the local runtime")
    if not _BUCKET_NAME.match(bucket):
        raise ValueError(f"invalid bucket name {bucket!r}")


class StoreFull(Exception):
    """Storing the object would take the store past its ``max_total_bytes``."""


#: Default bound of all stored objects together (the runtime is often reachable without
#: credentials: whoever can connect can store, so memory is bounded).
DEFAULT_MAX_STORE_BYTES = 512 * 1024 * 1024


class ObjectStore:
    """Objects by ``(bucket, key)``. Not persistent; buckets exist implicitly; at most
    ``max_total_bytes`` of object data in all."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        max_total_bytes: int = DEFAULT_MAX_STORE_BYTES,
    ) -> None:
        self._objects: dict[tuple[str, str], StoredObject] = {}
        self._clock = clock
        self.max_total_bytes = max_total_bytes
        self._total = 0

    @property
    def total_bytes(self) -> int:
        return self._total

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        checksums: Mapping[str, str] | None = None,
    ) -> StoredObject:
        validate_bucket(bucket)
        if not key:
            raise ValueError("an object key must not be empty")
        previous = self._objects.get((bucket, key))
        total = self._total - (len(previous.data) if previous else 0) + len(data)
        if total > self.max_total_bytes:
            raise StoreFull(
                f"storing {len(data)} bytes at {bucket}/{key} would pass the store's limit of "
                f"{self.max_total_bytes} bytes"
            )
        stored = StoredObject(
            data=bytes(data),
            content_type=content_type or DEFAULT_CONTENT_TYPE,
            etag=f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
            last_modified=self._clock(),
            metadata=dict(metadata or {}),
            checksums=dict(checksums or {}),
        )
        self._objects[(bucket, key)] = stored
        self._total = total
        return stored

    def get(self, bucket: str, key: str) -> StoredObject | None:
        return self._objects.get((bucket, key))

    def delete(self, bucket: str, key: str) -> bool:
        previous = self._objects.pop((bucket, key), None)
        if previous is None:
            return False
        self._total -= len(previous.data)
        return True

    def list_keys(self) -> list[tuple[str, str]]:
        return sorted(self._objects)


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_location(location: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key`` or an https S3 URL (virtual-hosted or path style).

    Raises ``ValueError`` for anything else.
    """
    parts = urlsplit(location)
    if parts.scheme == "s3":
        bucket, key = parts.netloc, parts.path.lstrip("/")
    elif parts.scheme in ("https", "http"):
        match = _VIRTUAL_HOST.match(parts.hostname or "")
        path = unquote(parts.path).lstrip("/")
        if match:
            bucket, key = match.group("bucket"), path
        else:
            bucket, _, key = path.partition("/")
    else:
        raise ValueError(f"not an S3 location: {location!r}")
    if not bucket or not key:
        raise ValueError(f"an S3 location needs a bucket and a key: {location!r}")
    return bucket, key


_AUTH_ERRORS: dict[str, tuple[int, str]] = {
    sigv4.MISSING: (403, "AccessDenied"),
    sigv4.MALFORMED: (400, "AuthorizationHeaderMalformed"),
    sigv4.UNKNOWN_KEY: (403, "InvalidAccessKeyId"),
    sigv4.BAD_TOKEN: (400, "InvalidToken"),
    sigv4.SKEWED: (403, "RequestTimeTooSkewed"),
    sigv4.BAD_SCOPE: (400, "AuthorizationHeaderMalformed"),
    sigv4.MISMATCH: (403, "SignatureDoesNotMatch"),
    sigv4.CONTENT_SHA_MISSING: (400, "InvalidRequest"),
    sigv4.CONTENT_SHA_MISMATCH: (400, "XAmzContentSHA256Mismatch"),
}


def s3_error(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    extra: Mapping[str, str] | None = None,
) -> web.Response:
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id}
    if request.method == "HEAD":  # S3 answers HEAD errors without a body
        return web.Response(status=status, headers=headers)
    elements = [("Code", code), ("Message", message), *(extra or {}).items()]
    elements += [("RequestId", request_id), ("HostId", request_id)]
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
    xml += "".join(f"<{name}>{escape(value)}</{name}>" for name, value in elements)
    xml += "</Error>"
    return web.Response(
        status=status, body=xml.encode(), content_type="application/xml", headers=headers
    )


_S3_FAULT_MESSAGES = {
    "NoSuchKey": "The specified key does not exist.",
    "SlowDown": "Please reduce your request rate.",
    "AccessDenied": "Access Denied",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "Service is unable to handle request.",
}


class S3FrontEnd:
    """aiohttp handlers for ``/{bucket}/{key}``."""

    def __init__(
        self,
        store: ObjectStore,
        verifier: Callable[[], sigv4.SignatureVerifier | None],
        max_object_bytes: int,
        faults: FaultInjector | None = None,
    ) -> None:
        self._faults = faults
        self._store = store
        self._verifier = verifier
        self._max_object_bytes = max_object_bytes

    def add_routes(self, router: web.UrlDispatcher) -> None:
        path = "/{bucket}/{key:.+}"
        router.add_route("GET", path, self._handle)
        router.add_route("HEAD", path, self._handle)
        router.add_route("PUT", path, self._handle)
        router.add_route("DELETE", path, self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        failure = precheck_signature(self._verifier(), request, "s3")
        if failure is not None:
            status, code = _AUTH_ERRORS[failure.kind]
            return s3_error(request, status, code, failure.message, request_id)
        try:
            body = await read_body(request, self._max_object_bytes)
        except BodyTooLarge as exc:
            return s3_error(
                request,
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                request_id,
                extra={"ProposedSize": str(exc.size), "MaxSizeAllowed": str(exc.limit)},
            )
        failure = check_signature(self._verifier(), request, body, "s3")
        if failure is not None:
            status, code = _AUTH_ERRORS[failure.kind]
            return s3_error(request, status, code, failure.message, request_id)
        if bucket in RESERVED_BUCKETS or not _BUCKET_NAME.match(bucket):
            return s3_error(
                request,
                400,
                "InvalidBucketName",
                "The specified bucket is not valid.",
                request_id,
                extra={"BucketName": bucket},
            )
        fault = self._faults.s3_fault(request.method, bucket, key) if self._faults else None
        if fault is not None:
            return s3_error(
                request,
                fault.status,
                fault.code,
                fault.message or _S3_FAULT_MESSAGES[fault.code],
                request_id,
                extra={"Key": key} if fault.code == "NoSuchKey" else None,
            )
        if request.method == "PUT":
            return self._put(request, bucket, key, body, request_id)
        if request.method == "DELETE":
            self._store.delete(bucket, key)
            return web.Response(status=204, headers={"x-amz-request-id": request_id})
        stored = self._store.get(bucket, key)
        if stored is None:
            return s3_error(
                request,
                404,
                "NoSuchKey",
                "The specified key does not exist.",
                request_id,
                extra={"Key": key},
            )
        headers = {
            "x-amz-request-id": request_id,
            "x-amz-id-2": request_id,
            "ETag": stored.etag,
            "Last-Modified": formatdate(stored.last_modified, usegmt=True),
            "Content-Type": stored.content_type,
            **{f"x-amz-meta-{name}": value for name, value in stored.metadata.items()},
        }
        if request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            headers.update(stored.checksums)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(stored.data))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=stored.data, headers=headers)

    def _put(
        self, request: web.Request, bucket: str, key: str, body: bytes, request_id: str
    ) -> web.Response:
        encoding = request.headers.get("Content-Encoding", "")
        content_sha = request.headers.get("x-amz-content-sha256", "")
        if "aws-chunked" in encoding or content_sha.startswith("STREAMING-"):
            try:
                body = decode_aws_chunked(body)
            except ValueError:
                return s3_error(
                    request,
                    400,
                    "IncompleteBody",
                    "The request body terminated unexpectedly",
                    request_id,
                )
        metadata = {
            name[len("x-amz-meta-") :].lower(): value
            for name, value in request.headers.items()
            if name.lower().startswith("x-amz-meta-")
        }
        checksums = {
            name.lower(): value
            for name, value in request.headers.items()
            if name.lower().startswith("x-amz-checksum-") and name.lower() != "x-amz-checksum-mode"
        }
        try:
            stored = self._store.put(
                bucket,
                key,
                body,
                content_type=request.headers.get("Content-Type"),
                metadata=metadata,
                checksums=checksums,
            )
        except StoreFull as exc:  # local only: S3 has no such limit
            return s3_error(request, 507, "LocalStoreFull", str(exc), request_id)
        return web.Response(
            status=200,
            headers={
                "x-amz-request-id": request_id,
                "x-amz-id-2": request_id,
                "ETag": stored.etag,
                **stored.checksums,
            },
        )


def decode_aws_chunked(data: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body (chunk signatures and trailers are not checked)."""
    parts: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("truncated chunk header")
        try:
            size = int(data[pos:end].split(b";", 1)[0], 16)
        except ValueError:
            raise ValueError("bad chunk size") from None
        pos = end + 2
        if size == 0:
            return b"".join(parts)
        if pos + size + 2 > len(data) or data[pos + size : pos + size + 2] != b"\r\n":
            raise ValueError("truncated chunk")
        parts.append(data[pos : pos + size])
        pos += size + 2
