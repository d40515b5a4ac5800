"""Request and result dataclasses: what a caller builds and what a call returns.

Field names are the snake_case forms of the service model's members. Requests are compared and
hashed by identity (they key the response-metadata cache, as request objects do in the Java SDK);
results are plain data.
"""

from __future__ import annotations

import json as _json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from . import _model as m
from ._lazy import lazy_attributes

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

Body = bytes | bytearray | memoryview | str

if TYPE_CHECKING:  # loaded on first use (``__getattr__`` at the end); here for type checkers
    from ._types_async import InvokeEndpointAsyncRequest as InvokeEndpointAsyncRequest
    from ._types_async import InvokeEndpointAsyncResult as InvokeEndpointAsyncResult
    from ._types_stream import (
        InvokeEndpointWithResponseStreamRequest as InvokeEndpointWithResponseStreamRequest,
    )
    from ._types_stream import PayloadPart as PayloadPart


@dataclass(frozen=True)
class ResponseMetadata:
    """What the HTTP exchange said beside the payload (botocore's ``ResponseMetadata``)."""

    request_id: str | None
    http_status_code: int
    http_headers: Mapping[str, str] = field(default_factory=dict)
    retry_attempts: int = 0

    @classmethod
    def from_http(
        cls, status: int, headers: Mapping[str, str], retry_attempts: int = 0
    ) -> ResponseMetadata:
        """From a response's status and headers (any mapping; names are matched without case).

        ``http_headers`` has lower-cased names and a repeated header's values joined with
        ``", "``, as botocore hands them out (urllib3 folds repeats). The request id is
        ``x-amzn-RequestId`` (S3's ``x-amz-request-id`` failing that).
        """
        folded = _folded(headers)
        return cls(
            folded.get("x-amzn-requestid") or folded.get("x-amz-request-id"),
            status,
            folded,
            retry_attempts,
        )

    if not TYPE_CHECKING:  # mypy would take any attribute name for valid

        def __getattr__(self, name: str) -> Any:
            # Only reached for a name not in __dict__: request_id and http_headers of metadata
            # made by lazy_metadata, until one of them is first read.
            state = self.__dict__
            if name in _LAZY_FIELDS:
                raw = state.get("_raw_headers")
                if raw is not None:
                    # Both fields set before the raw headers go: a reader on another thread
                    # finds either the raw headers (and folds them too) or both fields.
                    folded = _folded(raw)
                    state["request_id"] = folded.get("x-amzn-requestid") or folded.get(
                        "x-amz-request-id"
                    )
                    state["http_headers"] = folded
                    state.pop("_raw_headers", None)
                if name in state:
                    return state[name]
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        self.http_headers  # noqa: B018  # folded first: aiohttp's headers do not pickle
        return self.__dict__


_LAZY_FIELDS = frozenset({"request_id", "http_headers"})
_new = object.__new__


def lazy_metadata(
    status: int, headers: Mapping[str, str], retry_attempts: int = 0
) -> ResponseMetadata:
    """``ResponseMetadata.from_http`` for every successful call's path: ``request_id`` and
    ``http_headers`` are folded from ``headers`` (an immutable mapping, such as aiohttp's) only
    when one of them is first read. Equality, repr, copies and pickles read them as any field."""
    metadata: ResponseMetadata = _new(ResponseMetadata)
    # Fields straight into __dict__: the frozen dataclass's __init__ sets each through
    # object.__setattr__, which costs more than the rest of a call's parsing.
    state = metadata.__dict__
    state["http_status_code"] = status
    state["retry_attempts"] = retry_attempts
    state["_raw_headers"] = headers
    return metadata


def _folded(headers: Mapping[str, str]) -> dict[str, str]:
    folded = {name.lower(): value for name, value in headers.items()}
    if len(folded) != len(headers):  # a repeated name: fold its values (rare, so slower)
        folded = {}
        for name, value in headers.items():
            key = name.lower()
            folded[key] = f"{folded[key]}, {value}" if key in folded else value
    return folded


class _WeakReferenceable:
    """Gives the slotted request dataclasses a ``__weakref__`` slot (``weakref_slot=True`` needs
    Python 3.11): the response-metadata cache refers to requests weakly, so it never keeps one
    (and its body) alive."""

    __slots__ = ("__weakref__",)


@dataclass(eq=False, slots=True)
class InvokeEndpointRequest(_WeakReferenceable):
    """InvokeEndpoint's input. Compared and hashed by identity, like the Java SDK's request objects."""

    endpoint_name: str
    body: Body
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = field(default=None, repr=False)
    target_model: str | None = None
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    enable_explanations: str | None = None
    inference_component_name: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None

    def __repr__(self) -> str:
        # The body is sensitive in the model and may be megabytes: show its size, never its content.
        return (
            f"InvokeEndpointRequest(endpoint_name={self.endpoint_name!r}, "
            f"body=<{_body_len(self.body)} bytes>, content_type={self.content_type!r})"
        )


@dataclass
class InvokeEndpointResult:
    # Slotted by hand, for one slot beside the fields: a result made by lazy_result keeps the
    # HTTP answer there, and its other fields are filled from it when one is first read.
    __slots__ = (
        "_answer",
        "body",
        "closed_session_id",
        "content_type",
        "custom_attributes",
        "invoked_production_variant",
        "new_session_id",
        "response_metadata",
    )

    body: bytes
    content_type: str | None
    invoked_production_variant: str | None
    custom_attributes: str | None
    new_session_id: str | None
    closed_session_id: str | None
    response_metadata: ResponseMetadata

    def json(self) -> Any:
        """The body decoded as JSON."""
        return _json.loads(self.body)

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    if not TYPE_CHECKING:  # mypy would take any attribute name for valid

        def __getattr__(self, name: str) -> Any:
            # Only reached for an unset slot: a field of a result made by lazy_result, until
            # one of them is first read.
            if name in _LAZY_RESULT_FIELDS:
                try:
                    answer = _ANSWER.__get__(self)
                except AttributeError:
                    pass
                else:
                    _fill_result(self, answer[1])  # (status, headers, retry_attempts)
                    return _SLOTS[name].__get__(self)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # The fields only (read, so filled first): aiohttp's headers do not pickle.
        return None, {name: getattr(self, name) for name in _RESULT_FIELDS}


_SLOTS = {name: InvokeEndpointResult.__dict__[name] for name in InvokeEndpointResult.__slots__}
_ANSWER = _SLOTS["_answer"]
_RESULT_FIELDS = tuple(result_field.name for result_field in fields(InvokeEndpointResult))
# Each header field and its header, in the model's names.
_RESULT_HEADERS = (
    ("content_type", m.RESPONSE_CONTENT_TYPE),
    ("invoked_production_variant", m.RESPONSE_INVOKED_VARIANT),
    ("custom_attributes", m.RESPONSE_CUSTOM_ATTRIBUTES),
    ("new_session_id", m.RESPONSE_NEW_SESSION_ID),
    ("closed_session_id", m.RESPONSE_CLOSED_SESSION_ID),
)
_LAZY_RESULT_FIELDS = frozenset(_RESULT_FIELDS) - {"body"}


def lazy_result(
    body: bytes, status: int, headers: CIMultiDictProxy[str], retry_attempts: int = 0
) -> InvokeEndpointResult:
    """A successful call's :class:`InvokeEndpointResult` with only its body set: the header fields
    and ``response_metadata`` are read from aiohttp's (immutable) ``headers`` when one of them
    is first read. Equality, repr, copies, pickles, ``asdict`` and ``replace`` read them as any
    field."""
    result: InvokeEndpointResult = _new(InvokeEndpointResult)
    result.body = body
    result._answer = (status, headers, retry_attempts)  # type: ignore[attr-defined]
    return result


def _fill_result(result: InvokeEndpointResult, headers: CIMultiDictProxy[str]) -> None:
    # Only the unset fields: one the caller has set since stays. A repeated header's values are
    # joined, as folding them does (", ".join of one value is that value).
    for name, header in _RESULT_HEADERS:
        slot = _SLOTS[name]
        if not _is_set(slot, result):
            found = headers.getall(header, None)
            slot.__set__(result, None if found is None else ", ".join(found))
    response_metadata_of(result)


def response_metadata_of(result: InvokeEndpointResult) -> ResponseMetadata:
    """``result.response_metadata``, leaving a lazy result's five header fields unread: made from
    its answer the first time, then kept in its slot. (A call made with a request object has it
    made while parsing instead: ``parse_invoke_endpoint_with_metadata``.)"""
    slot = _SLOTS["response_metadata"]
    if not _is_set(slot, result):  # a lazy result's: made from its answer, kept in its slot
        slot.__set__(result, lazy_metadata(*_ANSWER.__get__(result)))
    return slot.__get__(result)  # type: ignore[no-any-return]


def _is_set(slot: Any, result: InvokeEndpointResult) -> bool:
    try:
        slot.__get__(result)
    except AttributeError:
        return False
    return True


def _body_len(body: Body) -> int:
    try:
        return len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else len(body)
    except (ValueError, TypeError):  # a released memoryview: repr must not fail
        return -1


# The types of the two other operations and the stream's event, in modules of their own made on
# first use (PEP 562): creating a dataclass costs 0.3 ms on import, and most clients use neither.
_LAZY = {
    "InvokeEndpointAsyncRequest": "._types_async",
    "InvokeEndpointAsyncResult": "._types_async",
    "InvokeEndpointWithResponseStreamRequest": "._types_stream",
    "PayloadPart": "._types_stream",
}

if not TYPE_CHECKING:  # hidden from type checkers, which would otherwise accept any name
    __getattr__ = lazy_attributes(globals(), _LAZY)
