"""The service model, transcribed: each operation's members, where they go on the wire, their rules.

Source: ``sagemaker-runtime/2017-05-13/service-2.json`` as of botocore 1.43.117;
tests/test_model_drift.py compares it member by member with the botocore installed. Patterns are
applied to the whole value (``fullmatch``): endpoint, variant and container names are DNS-like
labels in the service, so a value the unanchored Smithy pattern would let through (``"my ep/.."``)
is refused here rather than sent to fail at the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import attrgetter

from ._constants import MAX_ASYNC_INLINE_BODY_BYTES

_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_PRINTABLE_ID = re.compile(r"\S[\x20-\x7e]*")  # \A\S[\p{Print}]*\z


# Member and Operation are slotted classes, never changed once made: a frozen dataclass costs about
# 0.6 ms to create on import, and a NamedTuple's fields are slower to read on every call.
class Member:
    """One request member sent as a header (the body and endpoint name are handled apart)."""

    __slots__ = (
        "attr", "header", "is_int", "max_len", "max_value", "min_len", "min_value", "pattern",
        "rule",
    )  # fmt: skip

    def __init__(
        self,
        attr: str,
        header: str,
        max_len: int | None = None,
        min_len: int = 0,
        pattern: re.Pattern[str] | None = None,
        rule: str = "",  # the pattern in words, for the error message
        is_int: bool = False,
        min_value: int | None = None,
        max_value: int | None = None,
    ) -> None:
        self.attr = attr
        self.header = header
        self.max_len = max_len
        self.min_len = min_len
        self.pattern = pattern
        self.rule = rule
        self.is_int = is_int
        self.min_value = min_value
        self.max_value = max_value

    def __repr__(self) -> str:
        return f"<Member {self.attr} {self.header}>"


def _str(
    attr: str,
    header: str,
    max_len: int,
    min_len: int = 0,
    pattern: re.Pattern[str] | None = None,
    rule: str = "",
) -> Member:
    return Member(attr, header, max_len, min_len, pattern, rule)


def _int(attr: str, header: str, min_value: int, max_value: int) -> Member:
    return Member(attr, header, is_int=True, min_value=min_value, max_value=max_value)


_NAME_RULE = "letters, digits and hyphens, starting and ending with a letter or digit"

ENDPOINT_NAME_MAX = 63
ENDPOINT_NAME_PATTERN = _NAME
ENDPOINT_NAME_RULE = _NAME_RULE

CONTENT_TYPE = _str("content_type", "Content-Type", 1024)
ACCEPT = _str("accept", "Accept", 1024)
CUSTOM_ATTRIBUTES = _str("custom_attributes", "X-Amzn-SageMaker-Custom-Attributes", 1024)
TARGET_MODEL = _str(
    "target_model",
    "X-Amzn-SageMaker-Target-Model",
    1024,
    1,
    _PRINTABLE_ID,
    "printable ASCII, not starting with white space",
)
TARGET_VARIANT = _str("target_variant", "X-Amzn-SageMaker-Target-Variant", 63, 0, _NAME, _NAME_RULE)
TARGET_CONTAINER = _str(
    "target_container_hostname",
    "X-Amzn-SageMaker-Target-Container-Hostname",
    63,
    0,
    _NAME,
    _NAME_RULE,
)
INFERENCE_ID = _str(
    "inference_id",
    "X-Amzn-SageMaker-Inference-Id",
    64,
    1,
    _PRINTABLE_ID,
    "printable ASCII, not starting with white space",
)
ENABLE_EXPLANATIONS = _str("enable_explanations", "X-Amzn-SageMaker-Enable-Explanations", 64, 1)
INFERENCE_COMPONENT = _str(
    "inference_component_name",
    "X-Amzn-SageMaker-Inference-Component",
    63,
    0,
    re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"),
    _NAME_RULE,
)
SESSION_ID_OR_NEW = _str(
    "session_id",
    "X-Amzn-SageMaker-Session-Id",
    256,
    0,
    re.compile(r"NEW_SESSION|[a-zA-Z0-9](-*[a-zA-Z0-9])*"),
    "NEW_SESSION, or letters, digits and hyphens",
)
SESSION_ID = _str(
    "session_id",
    "X-Amzn-SageMaker-Session-Id",
    256,
    0,
    _NAME,
    "letters, digits and hyphens (NEW_SESSION is only for invoke_endpoint)",
)
PREFIX_AWARE_ID = _str(
    "prefix_aware_id",
    "X-Amzn-SageMaker-Prefix-Aware-Id",
    64,
    1,
    _PRINTABLE_ID,
    "printable ASCII, not starting with white space",
)


class Operation:
    __slots__ = (
        "body_max",
        "body_required",
        "member_values",
        "members",
        "name",
        "path_suffix",
        "success_status",
    )

    def __init__(
        self,
        name: str,
        path_suffix: str,  # after /endpoints/{EndpointName}
        members: tuple[Member, ...],
        success_status: int,
        body_required: bool,
        body_max: int | None,  # None: the client's configurable limit applies
    ) -> None:
        self.name = name
        self.path_suffix = path_suffix
        self.members = members
        # A request object's member values, in ``members`` order.
        self.member_values = _values_reader(tuple(member.attr for member in members))
        self.success_status = success_status
        self.body_required = body_required
        self.body_max = body_max

    def __repr__(self) -> str:
        return f"<Operation {self.name}>"


def _values_reader(names: tuple[str, ...]) -> Callable[[object], tuple[object, ...]]:
    if len(names) > 1:
        return attrgetter(*names)  # one C call (it returns a tuple for two names or more)
    return lambda request: tuple(getattr(request, name) for name in names)


INVOKE_ENDPOINT = Operation(
    "InvokeEndpoint",
    "/invocations",
    (
        CONTENT_TYPE,
        ACCEPT,
        CUSTOM_ATTRIBUTES,
        TARGET_MODEL,
        TARGET_VARIANT,
        TARGET_CONTAINER,
        INFERENCE_ID,
        ENABLE_EXPLANATIONS,
        INFERENCE_COMPONENT,
        SESSION_ID_OR_NEW,
        PREFIX_AWARE_ID,
    ),
    200,
    True,
    None,
)

INVOKE_ENDPOINT_WITH_RESPONSE_STREAM = Operation(
    "InvokeEndpointWithResponseStream",
    "/invocations-response-stream",
    (
        CONTENT_TYPE,
        _str("accept", "X-Amzn-SageMaker-Accept", 1024),
        CUSTOM_ATTRIBUTES,
        TARGET_VARIANT,
        TARGET_CONTAINER,
        INFERENCE_ID,
        INFERENCE_COMPONENT,
        SESSION_ID,
        PREFIX_AWARE_ID,
    ),
    200,
    True,
    None,
)

INVOKE_ENDPOINT_ASYNC = Operation(
    "InvokeEndpointAsync",
    "/async-invocations",
    (
        _str("content_type", "X-Amzn-SageMaker-Content-Type", 1024),
        _str("accept", "X-Amzn-SageMaker-Accept", 1024),
        CUSTOM_ATTRIBUTES,
        INFERENCE_ID,
        _str(
            "input_location",
            "X-Amzn-SageMaker-InputLocation",
            1024,
            1,
            re.compile(r"(https|s3)://([^/]+)/?(.*)"),
            "an s3:// or https:// URI",
        ),
        _int("request_ttl_seconds", "X-Amzn-SageMaker-RequestTTLSeconds", 60, 21600),
        _int("invocation_timeout_seconds", "X-Amzn-SageMaker-InvocationTimeoutSeconds", 1, 3600),
        _str(
            "s3_output_path_extension",
            "X-Amzn-SageMaker-S3OutputPathExtension",
            512,
            1,
            re.compile(r"(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+"),
            "letters, digits and !_.*'()/- (not a URI)",
        ),
        _str(
            "filename",
            "X-Amzn-SageMaker-Filename",
            32,
            1,
            re.compile(r"(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*"),
            "letters, digits, '-', '_' and at most one '.', starting with a letter or digit",
        ),
    ),
    202,
    False,
    MAX_ASYNC_INLINE_BODY_BYTES,
)

# Response headers, lower-cased, mapped to result fields.
RESPONSE_CONTENT_TYPE = "content-type"
RESPONSE_STREAM_CONTENT_TYPE = "x-amzn-sagemaker-content-type"
RESPONSE_INVOKED_VARIANT = "x-amzn-invoked-production-variant"
RESPONSE_CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
RESPONSE_NEW_SESSION_ID = "x-amzn-sagemaker-new-session-id"
RESPONSE_CLOSED_SESSION_ID = "x-amzn-sagemaker-closed-session-id"
RESPONSE_OUTPUT_LOCATION = "x-amzn-sagemaker-outputlocation"
RESPONSE_FAILURE_LOCATION = "x-amzn-sagemaker-failurelocation"
RESPONSE_REQUEST_ID = "x-amzn-requestid"
