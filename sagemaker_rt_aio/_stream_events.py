"""The messages of a SageMaker response stream, on top of the event-stream codec (``_eventstream``).

``message_to_part`` turns a decoded message into a ``PayloadPart`` or raises the error it carries
(the client's side); the ``encode_*`` functions build the same messages (the local runtime's side,
and tests').
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from ._errors import (
    EventStreamError,
    InternalStreamFailure,
    ModelStreamError,
    ServiceError,
)
from ._eventstream import HeaderValue, Message, encode_headers, encode_message, frame
from ._types import PayloadPart

logger = logging.getLogger("sagemaker_rt_aio")

_PAYLOAD_PART_HEADERS = encode_headers(
    {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
)


def encode_payload_part(data: bytes) -> bytes:
    """A ``PayloadPart`` event carrying ``data`` (112 bytes for ``b'{"x":1}'``)."""
    return frame(_PAYLOAD_PART_HEADERS, bytes(data))


def encode_exception(exception_type: str, message: str, *, error_code: str | None = None) -> bytes:
    """A modeled exception event such as ``ModelStreamError``, JSON payload as the service sends."""
    doc = {"Message": message}
    if error_code is not None:
        doc["ErrorCode"] = error_code
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps(doc).encode())


def encode_error(error_code: str, error_message: str) -> bytes:
    """An unmodeled ``error`` message: code and text in headers, empty payload."""
    headers = {":error-code": error_code, ":error-message": error_message, ":message-type": "error"}
    return encode_message(headers, b"")


# ------------------------------------------------------------------------ SageMaker's message kinds


def message_to_part(
    message: Message, *, request_id: str | None = None, status_code: int = 200
) -> PayloadPart | None:
    """The ``PayloadPart`` a message carries, ``None`` for an event type we do not know, or raise.

    ``exception`` and ``error`` messages raise the typed ``ServiceError`` (as botocore maps them,
    recommended behaviour: ``ErrorCode`` surfaced, ``message`` accepted as well as ``Message``).
    """
    headers = message.headers
    message_type = headers.get(":message-type")
    if message_type == "event":
        event_type = headers.get(":event-type")
        if event_type == "PayloadPart":
            return PayloadPart(bytes=message.payload)
        # New union members must not break old clients; botocore skips them too.
        logger.debug("skipping event stream event of unknown type %r", event_type)
        return None
    if message_type == "exception":
        text, error_code = _parse_exception_payload(message.payload)
        code = _str_header(headers, ":exception-type") or _str_header(headers, ":error-code")
        if text is None:
            text = _str_header(headers, ":error-message")
        if code == "ModelStreamError":
            raise ModelStreamError(
                text,
                error_code=error_code,
                code=code,
                status_code=status_code,
                request_id=request_id,
            )
        cls = InternalStreamFailure if code == "InternalStreamFailure" else ServiceError
        raise cls(
            text, code=code or "UnknownException", status_code=status_code, request_id=request_id
        )
    if message_type == "error":
        raise ServiceError(
            _str_header(headers, ":error-message"),
            code=_str_header(headers, ":error-code") or "UnknownError",
            status_code=status_code,
            request_id=request_id,
        )
    raise EventStreamError(f"event stream message has unknown :message-type {message_type!r}")


def _str_header(headers: Mapping[str, HeaderValue], name: str) -> str | None:
    value = headers.get(name)
    return value if isinstance(value, str) else None


def _parse_exception_payload(payload: bytes) -> tuple[str | None, str | None]:
    """(message, ErrorCode) of an exception event's JSON payload; tolerant of bad JSON."""
    try:
        doc = json.loads(payload) if payload.strip() else {}
    except ValueError:
        return payload.decode("utf-8", "replace"), None
    if not isinstance(doc, dict):
        return payload.decode("utf-8", "replace"), None
    text = next((v for k in ("Message", "message") if isinstance(v := doc.get(k), str)), None)
    error_code = doc.get("ErrorCode")
    return text, error_code if isinstance(error_code, str) else None
