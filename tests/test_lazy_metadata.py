"""A successful call's ``ResponseMetadata`` folds aiohttp's headers only when first read: it must be
indistinguishable from the eagerly folded one (``from_http``) in every way a caller can look."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from sagemaker_rt_aio import ResponseMetadata
from sagemaker_rt_aio._protocol import parse_invoke_endpoint


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
}


@pytest.mark.parametrize("repeated", [False, True], ids=["plain", "repeated-names"])
@pytest.mark.parametrize("look", sorted(LOOKS))
def test_lazy_metadata_is_the_eager_one(look: str, repeated: bool) -> None:
    headers = _headers(repeated)
    lazy = parse_invoke_endpoint(200, headers, b"{}", 2)  # aiohttp's headers: the lazy path
    eager = parse_invoke_endpoint(200, dict(headers.items()), b"{}", 2)  # dict: not lazy
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
