"""A successful call's result reads aiohttp's headers only when one of its header fields or its
``response_metadata`` is first read, and that ``ResponseMetadata`` folds them only when first read:
both must be indistinguishable from the eagerly made ones in every way a caller can look."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from sagemaker_rt_aio import InvokeEndpointResult, ResponseMetadata
from sagemaker_rt_aio._protocol import (
    parse_invoke_endpoint,
    parse_invoke_endpoint_with_metadata,
)
from sagemaker_rt_aio._types import response_metadata_of


def _headers(repeated: bool) -> CIMultiDictProxy[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", "rid-1"),
            ("X-Amzn-Invoked-Production-Variant", "AllTraffic"),
            ("X-Amzn-SageMaker-Custom-Attributes", "first=1"),
            ("X-Amzn-SageMaker-New-Session-Id", "sess; Expires=2026-12-03T00:00:00Z"),
            ("Date", "Wed, 02 Dec 2026 07:00:00 GMT"),
        ]
    )
    if repeated:
        headers.add("x-amzn-sagemaker-custom-attributes", "second=2")
        headers.add("X-AMZN-INVOKED-PRODUCTION-VARIANT", "variant-b")
        headers.add("X-Amzn-RequestId", "rid-2")
    return CIMultiDictProxy(headers)


LOOKS: dict[str, Callable[[Any], Any]] = {
    "fields": lambda result: (
        result.content_type,
        result.invoked_production_variant,
        result.custom_attributes,
        result.new_session_id,
        result.closed_session_id,
    ),
    "equal": lambda result: result,
    "repr": repr,
    "request_id": lambda result: result.response_metadata.request_id,
    "http_headers": lambda result: result.response_metadata.http_headers,
    "status_and_retries": lambda result: (
        result.response_metadata.http_status_code,
        result.response_metadata.retry_attempts,
    ),
    "asdict": dataclasses.asdict,
    "pickle": lambda result: pickle.loads(pickle.dumps(result)),
    "deepcopy": copy.deepcopy,
    "copy": lambda result: copy.copy(result.response_metadata),
    "replace": lambda result: dataclasses.replace(result.response_metadata, retry_attempts=5),
    "copy_result": copy.copy,
    "replace_result": lambda result: dataclasses.replace(result, body=b"[]"),
    "astuple": dataclasses.astuple,
    "fields_by_name": lambda result: [
        getattr(result, result_field.name) for result_field in dataclasses.fields(result)
    ],
    "json": lambda result: result.json(),
}


@pytest.mark.parametrize("repeated", [False, True], ids=["plain", "repeated-names"])
@pytest.mark.parametrize("look", sorted(LOOKS))
def test_lazy_metadata_is_the_eager_one(look: str, repeated: bool) -> None:
    headers = _headers(repeated)
    lazy = parse_invoke_endpoint(200, headers, b"{}", 2)  # aiohttp's headers: the lazy path
    eager = parse_invoke_endpoint(200, dict(headers.items()), b"{}", 2)  # dict: not lazy
    assert unread(lazy) == LAZY_FIELDS  # nothing read from the answer yet
    assert "_raw_headers" in lazy.response_metadata.__dict__  # nothing folded yet
    expected = ResponseMetadata.from_http(200, headers, 2)
    assert eager.response_metadata == expected
    # A dict of the items would keep one value per name; from_http's is the reference here.
    eager = dataclasses.replace(
        eager,
        content_type=expected.http_headers.get("content-type"),
        invoked_production_variant=expected.http_headers.get("x-amzn-invoked-production-variant"),
        custom_attributes=expected.http_headers.get("x-amzn-sagemaker-custom-attributes"),
        new_session_id=expected.http_headers.get("x-amzn-sagemaker-new-session-id"),
        response_metadata=expected,
    )
    assert LOOKS[look](lazy) == LOOKS[look](eager)


LAZY_FIELDS = [
    "closed_session_id",
    "content_type",
    "custom_attributes",
    "invoked_production_variant",
    "new_session_id",
    "response_metadata",
]


def unread(result: InvokeEndpointResult) -> list[str]:
    """The fields a lazy result has not read from its answer yet (their slots are unset)."""
    cls = type(result)
    missing = []
    for name in LAZY_FIELDS:
        try:
            cls.__dict__[name].__get__(result)
        except AttributeError:
            missing.append(name)
    return missing


def test_a_lazy_result_keeps_what_the_caller_set_before_reading() -> None:
    result = parse_invoke_endpoint(200, _headers(repeated=False), b"{}", 0)
    result.content_type = "text/plain"
    assert unread(result) == [name for name in LAZY_FIELDS if name != "content_type"]
    assert result.invoked_production_variant == "AllTraffic"  # reading one fills the others
    assert unread(result) == []
    assert result.content_type == "text/plain"
    assert result.closed_session_id is None
    with pytest.raises(AttributeError, match="'InvokeEndpointResult' object has no attribute 'x'"):
        result.x  # type: ignore[attr-defined]  # noqa: B018
    assert type(result) is InvokeEndpointResult


def test_a_lazy_results_metadata_is_made_without_reading_its_fields() -> None:
    # response_metadata_of, the one place a lazy result's metadata is made from its answer (as its
    # fields are filled on first read): the metadata alone, the five header fields left unread.
    headers = _headers(repeated=False)
    result = parse_invoke_endpoint(200, headers, b"{}", 1)
    metadata = response_metadata_of(result)
    assert unread(result) == [name for name in LAZY_FIELDS if name != "response_metadata"]
    assert metadata is result.response_metadata
    assert metadata == ResponseMetadata.from_http(200, headers, 1)
    assert result.content_type == "application/json"  # the fields still fill, metadata kept
    assert result.response_metadata is metadata
    # A result made as a dataclass, or one already filled, has its metadata read as it is.
    assert response_metadata_of(result) is metadata
    eager = parse_invoke_endpoint(200, dict(headers.items()), b"{}", 1)
    assert response_metadata_of(eager) is eager.response_metadata


def test_a_result_parsed_with_its_metadata_leaves_the_fields_unread() -> None:
    # A call made with a request object parses its answer so: the metadata it caches is set on
    # the result at once (finding the slot unset later would cost an exception), and the five
    # header fields, and the metadata's own two folded ones, are still read only when asked.
    headers = _headers(repeated=False)
    result = parse_invoke_endpoint_with_metadata(200, headers, b"{}", 2)
    assert unread(result) == [name for name in LAZY_FIELDS if name != "response_metadata"]
    metadata = result.response_metadata
    assert "http_headers" not in metadata.__dict__  # not folded yet
    assert metadata == ResponseMetadata.from_http(200, headers, 2)
    assert result.content_type == "application/json"  # the fields still fill, metadata kept
    assert result.response_metadata is metadata
    assert response_metadata_of(result) is metadata
    # Headers of any other mapping: the dataclass, made whole, as parse_invoke_endpoint makes it.
    eager = parse_invoke_endpoint_with_metadata(200, dict(headers.items()), b"{}", 2)
    assert unread(eager) == []
    assert eager.response_metadata == metadata


def test_repeated_result_headers_are_joined_as_botocore_does() -> None:
    result = parse_invoke_endpoint(200, _headers(repeated=True), b"", 0)
    assert result.custom_attributes == "first=1, second=2"
    assert result.invoked_production_variant == "AllTraffic, variant-b"
    assert result.response_metadata.request_id == "rid-1, rid-2"


def test_lazy_metadata_is_frozen_and_names_unknown_attributes() -> None:
    metadata = parse_invoke_endpoint(200, _headers(repeated=False), b"", 0).response_metadata
    with pytest.raises(dataclasses.FrozenInstanceError):
        metadata.request_id = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="'ResponseMetadata' object has no attribute 'nope'"):
        metadata.nope  # type: ignore[attr-defined]  # noqa: B018
    assert type(metadata) is ResponseMetadata


# -- response streams: the same lazy metadata, from the headers their response came with ---------


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)

    async def readany(self) -> bytes:
        return next(self._chunks, b"")


class _Response:
    def __init__(self, headers: Any, chunks: list[bytes]) -> None:
        self.status = 200  # a stream's metadata is made from the response it reads
        self.headers = headers
        self.content = _Content(chunks)

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


def _open(headers: Any, *chunks: bytes) -> Any:
    from sagemaker_rt_aio._stream import open_stream
    from sagemaker_rt_aio._transport import HttpResponse

    response = _Response(headers, list(chunks))
    return open_stream(HttpResponse(200, headers, b"", response), 2)  # type: ignore[arg-type]


STREAM_LOOKS: dict[str, Callable[[Any], Any]] = {
    "request_id": lambda metadata: metadata.request_id,
    "http_headers": lambda metadata: metadata.http_headers,
    "equal": lambda metadata: metadata,
    "repr": repr,
    "asdict": dataclasses.asdict,
    "pickle": lambda metadata: pickle.loads(pickle.dumps(metadata)),
    "deepcopy": copy.deepcopy,
    "replace": lambda metadata: dataclasses.replace(metadata, retry_attempts=5),
}


@pytest.mark.parametrize("repeated", [False, True], ids=["plain", "repeated-names"])
@pytest.mark.parametrize("look", sorted(STREAM_LOOKS))
async def test_a_streams_lazy_metadata_is_the_eager_one(look: str, repeated: bool) -> None:
    from sagemaker_rt_aio._stream_events import encode_payload_part

    headers = _headers(repeated)
    stream = _open(headers, encode_payload_part(b"a"), encode_payload_part(b"b"))
    assert [part.bytes async for part in stream] == [b"a", b"b"]
    await stream.aclose()
    # Neither opening nor reading the stream folded the headers.
    assert "_raw_headers" in stream.response_metadata.__dict__
    expected = ResponseMetadata.from_http(200, headers, 2)
    assert STREAM_LOOKS[look](stream.response_metadata) == STREAM_LOOKS[look](expected)
    assert repr(stream) == f"<ResponseStream content_type=None request_id={expected.request_id!r}>"


@pytest.mark.parametrize("helper", ["parts", "iter_text"])
async def test_an_error_in_a_lazy_stream_carries_the_request_id(helper: str) -> None:
    from sagemaker_rt_aio._errors import ModelStreamError
    from sagemaker_rt_aio._stream_events import encode_exception, encode_payload_part

    token = b'data: {"token": {"text": "x", "special": false}}\n\n'
    body = encode_payload_part(token) + encode_exception("ModelStreamError", "boom")
    stream = _open(_headers(repeated=False), body)
    with pytest.raises(ModelStreamError) as raised:
        if helper == "parts":
            async for _ in stream:
                pass
        else:
            async for _ in stream.iter_text():
                pass
    assert raised.value.request_id == "rid-1"


def test_a_stream_over_other_headers_folds_them_at_once() -> None:
    headers = {"X-Amzn-RequestId": "rid-9", "Content-Type": "application/vnd.amazon.eventstream"}
    metadata = _open(headers).response_metadata
    assert "_raw_headers" not in metadata.__dict__
    assert metadata == ResponseMetadata.from_http(200, headers, 2)


async def test_a_streams_metadata_is_made_once_when_first_asked_for() -> None:
    stream = _open(_headers(repeated=False))
    assert stream._metadata is None  # opening the stream made none
    metadata = stream.response_metadata
    assert metadata is stream.response_metadata  # made once, then kept
    assert metadata.retry_attempts == 2 and metadata.http_status_code == 200
    assert metadata == ResponseMetadata.from_http(200, _headers(repeated=False), 2)
