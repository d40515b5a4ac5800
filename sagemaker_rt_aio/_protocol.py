"""Requests to bytes and bytes to results: the rest-json binding of the three operations, no I/O.

``serialize`` validates a request object and returns what goes on the wire (path, headers, body,
payload hash); the ``parse_*`` functions turn a received status, headers and body into a result.
The transport layer only moves these bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDictProxy
from yarl import URL

from . import _model as m
from . import _types
from ._constants import USER_AGENT
from ._errors import ParamValidationError
from ._signing import payload_sha256
from ._types import (
    InvokeEndpointRequest,
    InvokeEndpointResult,
    ResponseMetadata,
    lazy_metadata,
    lazy_result,
)
from ._validation import body_bytes, check_endpoint_name, header_value

if TYPE_CHECKING:  # loaded when first used (``_types``)
    from ._types import (
        InvokeEndpointAsyncRequest,
        InvokeEndpointAsyncResult,
        InvokeEndpointWithResponseStreamRequest,
    )

    AnyRequest = (
        InvokeEndpointRequest | InvokeEndpointAsyncRequest | InvokeEndpointWithResponseStreamRequest
    )


class WireRequest:
    """A validated request, ready to be signed. The same object serves every attempt. (A slotted
    class rather than a dataclass, which costs 0.4 ms to create on import; making one and reading
    its attributes cost the same.)"""

    __slots__ = (
        "body", "endpoint_name", "headers", "method", "operation", "path", "payload_hash", "url"
    )  # fmt: skip

    def __init__(
        self,
        operation: m.Operation,
        endpoint_name: str,
        path: str,  # percent-encoded, relative to the endpoint URL's base path
        # Modeled headers only: the signer adds its own to a copy (copy(): dict() of a mapping
        # proxy costs four times as much).
        headers: MappingProxyType[str, str] | dict[str, str],
        body: bytes,
        payload_hash: str,
        method: str = "POST",
        url: URL | None = None,  # an absolute URL (S3's), instead of ``path`` under the endpoint
    ) -> None:
        self.operation = operation
        self.endpoint_name = endpoint_name
        self.path = path
        self.headers = headers
        self.body = body
        self.payload_hash = payload_hash
        self.method = method
        self.url = url

    def __eq__(self, other: object) -> bool:  # field by field, as a dataclass's (tests use it)
        if type(other) is not WireRequest:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __repr__(self) -> str:
        return (
            f"WireRequest({self.operation.name}, endpoint_name={self.endpoint_name!r}, "
            f"body=<{len(self.body)} bytes>)"
        )


# Sent on every request, never signed (the signer skips them, as botocore does).
UNSIGNED_DEFAULT_HEADERS = {"Accept-Encoding": "identity", "User-Agent": USER_AGENT}


def serialize(operation: m.Operation, request: AnyRequest, *, max_body_bytes: int) -> WireRequest:
    """Validate ``request`` against ``operation``'s rules and lay it out for the wire."""
    wire = serialize_fields(
        operation,
        request.endpoint_name,
        request.body,
        operation.member_values(request),
        max_body_bytes=max_body_bytes,
    )
    if operation is m.INVOKE_ENDPOINT_ASYNC:
        _check_async_input(request, has_body=request.body is not None)
    return wire


def serialize_fields(
    operation: m.Operation,
    endpoint_name: object,
    raw_body: object,
    values: Sequence[object],
    *,
    max_body_bytes: int,
) -> WireRequest:
    """:func:`serialize` for a keyword call, without a request object: ``values`` are the header
    members' values in ``operation.members`` order."""
    key = shape = None
    if operation.name in _STRING_MEMBERS_ONLY:  # 60 == 60.0: an int member could pass a float
        try:
            key = (operation.name, endpoint_name, *values)
            shape = _shapes.get(key)
        except TypeError:  # an unhashable value: the checks below say what is wrong with it
            key = None
    if shape is None:
        name = check_endpoint_name(endpoint_name)
        headers: dict[str, str] = {}
        for member, value in zip(operation.members, values, strict=True):
            if value is not None:
                headers[member.header] = header_value(member, value)
        shape = (name, f"/endpoints/{name}{operation.path_suffix}", MappingProxyType(headers))
        if key is not None:
            if len(_shapes) >= _SHAPE_CACHE_SIZE:
                _shapes.clear()
            _shapes[key] = shape
    if raw_body is None:
        if operation.body_required:
            raise ParamValidationError("body", "is required")
        body = b""
    else:
        limit = (
            max_body_bytes
            if operation.body_max is None
            else min(operation.body_max, max_body_bytes)
        )
        body = body_bytes(raw_body, "body", limit)
    return WireRequest(operation, shape[0], shape[1], shape[2], body, payload_sha256(body))


# Requests laid out before, by (operation name, endpoint name, header values): a service calls the
# same few endpoints with the same few header values, and each key's values (strings) have passed
# the checks, as _validation remembers single values. The headers are read-only: the signer
# copies them.
_SHAPE_CACHE_SIZE = 256
_STRING_MEMBERS_ONLY = frozenset(
    operation.name
    for operation in (m.INVOKE_ENDPOINT, m.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM)
    if not any(member.is_int for member in operation.members)
)
_shapes: dict[tuple[object, ...], tuple[str, str, MappingProxyType[str, str]]] = {}


def _check_async_input(request: AnyRequest, *, has_body: bool) -> None:
    # The model marks neither member required, but its documentation says exactly one is needed.
    has_location = getattr(request, "input_location", None) is not None
    if has_location and has_body:
        raise ParamValidationError("body", "give either body or input_location, not both")
    if not has_location and not has_body:
        raise ParamValidationError("input_location", "is required when no inline body is given")


def coerce_request(cls: type[Any], request: Any, fields: dict[str, Any]) -> Any:
    """The request object a call works on: the one given, or one built from keyword fields."""
    if request is None:
        try:
            return cls(**fields)
        except TypeError as exc:  # a missing required keyword
            raise ParamValidationError(cls.__name__, str(exc)) from None
    if not isinstance(request, cls):
        raise ParamValidationError(
            "request", f"must be a {cls.__name__}, got {type(request).__name__}"
        )
    return request


def parse_invoke_endpoint(
    status: int, headers: Mapping[str, str], body: bytes, retry_attempts: int = 0
) -> InvokeEndpointResult:
    """``headers``: aiohttp's ``CIMultiDictProxy`` or any mapping; names are matched without case."""
    if type(headers) is CIMultiDictProxy:
        # Every call's path: nothing but the body is read from the answer until a caller asks.
        return lazy_result(body, status, headers, retry_attempts)
    metadata = ResponseMetadata.from_http(status, headers, retry_attempts)  # any other mapping
    get = metadata.http_headers.get
    return InvokeEndpointResult(
        body,
        get(m.RESPONSE_CONTENT_TYPE),
        get(m.RESPONSE_INVOKED_VARIANT),
        get(m.RESPONSE_CUSTOM_ATTRIBUTES),
        get(m.RESPONSE_NEW_SESSION_ID),
        get(m.RESPONSE_CLOSED_SESSION_ID),
        metadata,
    )


def parse_invoke_endpoint_with_metadata(
    status: int, headers: Mapping[str, str], body: bytes, retry_attempts: int = 0
) -> InvokeEndpointResult:
    """:func:`parse_invoke_endpoint` with the result's ``response_metadata`` made at once (its
    headers still folded only when first read), for a caller that keeps it: read later, the
    field would first be found unset, which costs an exception."""
    result = parse_invoke_endpoint(status, headers, body, retry_attempts)
    if type(headers) is CIMultiDictProxy:  # a lazy result, made without it
        result.response_metadata = lazy_metadata(status, headers, retry_attempts)
    return result


def parse_invoke_endpoint_async(
    status: int, headers: Mapping[str, str], body: bytes, retry_attempts: int = 0
) -> InvokeEndpointAsyncResult:
    # InferenceId is the only member without a location, so it is the JSON body.
    inference_id = None
    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict) and isinstance(doc.get("InferenceId"), str):
        inference_id = doc["InferenceId"]
    metadata = ResponseMetadata.from_http(status, headers, retry_attempts)
    return _types.InvokeEndpointAsyncResult(
        inference_id=inference_id,
        output_location=metadata.http_headers.get(m.RESPONSE_OUTPUT_LOCATION),
        failure_location=metadata.http_headers.get(m.RESPONSE_FAILURE_LOCATION),
        response_metadata=metadata,
    )
