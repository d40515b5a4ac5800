"""Checks a request against the model's rules before anything is sent.

Every failure is a :class:`ParamValidationError` naming the field and the rule it broke. Header values
must also be printable ASCII: a CR or LF would split the header (request smuggling), and the service
only accepts ASCII there.
"""

from __future__ import annotations

import re

from ._errors import ParamValidationError
from ._model import ENDPOINT_NAME_MAX, ENDPOINT_NAME_PATTERN, ENDPOINT_NAME_RULE, Member

# Printable ASCII plus tab: what RFC 9110 allows in a field value, minus obs-text.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


# A service sends the same few endpoint names and header values on every call: the (rule, value)
# pairs that passed are remembered, so each regex runs once per value rather than once per call.
# Only exact str values are remembered (a str subclass could compare equal and differ), and the set
# is bounded: when full it starts over.
_PASSED_LIMIT = 4096
_passed: set[tuple[int, str]] = set()
_NAME_RULE_ID = 0


def _remember(key: tuple[int, str]) -> None:
    if len(_passed) >= _PASSED_LIMIT:
        _passed.clear()
    _passed.add(key)


def check_endpoint_name(value: object, field: str = "endpoint_name") -> str:
    if type(value) is str and (_NAME_RULE_ID, value) in _passed:
        return value
    if not isinstance(value, str):
        raise ParamValidationError(field, f"must be a str, got {type(value).__name__}")
    if not value:
        raise ParamValidationError(field, "must not be empty")
    if len(value) > ENDPOINT_NAME_MAX:
        raise ParamValidationError(field, f"must be at most {ENDPOINT_NAME_MAX} characters")
    if not ENDPOINT_NAME_PATTERN.fullmatch(value):
        raise ParamValidationError(field, f"must be {ENDPOINT_NAME_RULE}, got {value!r}")
    if type(value) is str:
        _remember((_NAME_RULE_ID, value))
    return value


def header_value(member: Member, value: object) -> str:
    """The wire form of one header member, or the error that says why it cannot be sent."""
    if type(value) is str and (id(member), value) in _passed:
        return value
    field = member.attr
    if member.is_int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ParamValidationError(field, f"must be an int, got {type(value).__name__}")
        assert member.min_value is not None and member.max_value is not None
        if not member.min_value <= value <= member.max_value:
            raise ParamValidationError(
                field, f"must be between {member.min_value} and {member.max_value}, got {value}"
            )
        return str(value)
    if not isinstance(value, str):
        raise ParamValidationError(field, f"must be a str, got {type(value).__name__}")
    if len(value) < member.min_len:
        raise ParamValidationError(field, f"must be at least {member.min_len} character(s)")
    if member.max_len is not None and len(value) > member.max_len:
        raise ParamValidationError(field, f"must be at most {member.max_len} characters")
    if not _HEADER_VALUE.fullmatch(value):
        raise ParamValidationError(
            field, "must be printable ASCII (no CR, LF or other control characters)"
        )
    if member.pattern is not None and not member.pattern.fullmatch(value):
        raise ParamValidationError(field, f"must be {member.rule}, got {value!r}")
    if type(value) is str:
        _remember((id(member), value))  # members are module constants: their ids are stable
    return value


def body_bytes(value: object, field: str, limit: int | None) -> bytes:
    """The body as bytes: str is UTF-8; a bytearray or memoryview is copied so it cannot change
    between signing and sending (or between retries)."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        try:
            data = value.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-8 form
            rule = f"is a str that cannot be encoded as UTF-8 ({exc.reason} at {exc.start})"
            raise ParamValidationError(field, rule) from None
    elif isinstance(value, (bytearray, memoryview)):
        try:
            data = bytes(value)
        except (ValueError, TypeError) as exc:  # a released memoryview, an odd buffer format
            raise ParamValidationError(field, f"cannot be read as bytes: {exc}") from None
    else:
        raise ParamValidationError(
            field, f"must be bytes, bytearray, memoryview or str, got {type(value).__name__}"
        )
    if limit is not None and len(data) > limit:
        raise ParamValidationError(
            field, f"is {len(data)} bytes, more than the limit of {limit} bytes"
        )
    return data
