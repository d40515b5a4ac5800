"""The event streams of InvokeEndpointWithBidirectionalStream, without any I/O (reference section 10).

Requests: each ``PayloadPart`` event is encoded (``encode_request_part``), then wrapped in a signed
envelope (``EventSigner``: ``:date`` + ``:chunk-signature``, chained from the request's signature);
the input ends with a signed envelope whose payload is empty. Responses: ``PayloadPart`` events
(same headers as the request's), ``ModelStreamError`` and ``InternalStreamFailure`` exceptions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ._errors import ParamValidationError
from ._eventstream import HeaderValue, Message, encode_message
from ._signing import FrozenCredentials, sign_event
from ._stream_events import message_to_part

DATA_TYPES = ("UTF8", "BINARY")
COMPLETION_STATES = ("PARTIAL", "COMPLETE")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class BidirectionalPart:
    """One ``PayloadPart`` of a bidirectional stream, in either direction.

    ``data_type`` is ``"UTF8"`` or ``"BINARY"``, ``completion_state`` ``"PARTIAL"`` or
    ``"COMPLETE"``; both are ``None`` when the sender did not set them.
    """

    bytes: bytes
    data_type: str | None = None
    completion_state: str | None = None


def make_part(
    data: bytes | bytearray | memoryview | str,
    data_type: str | None = None,
    completion_state: str | None = None,
) -> BidirectionalPart:
    """Validate what ``send()`` was given; a ``str`` is sent as UTF-8 with ``DataType=UTF8``."""
    if isinstance(data, str):
        raw = data.encode()
        if data_type is None:
            data_type = "UTF8"
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise ParamValidationError("data", f"must be bytes or str, not {type(data).__name__}")
    if data_type is not None and data_type not in DATA_TYPES:
        raise ParamValidationError("data_type", f"must be one of {', '.join(DATA_TYPES)}")
    if completion_state is not None and completion_state not in COMPLETION_STATES:
        raise ParamValidationError(
            "completion_state", f"must be one of {', '.join(COMPLETION_STATES)}"
        )
    return BidirectionalPart(raw, data_type, completion_state)


def encode_part(part: BidirectionalPart, *, padding: str | None = None) -> bytes:
    """The inner ``PayloadPart`` message, headers in the order AWS's SDK writes them."""
    headers: dict[str, HeaderValue] = {":message-type": "event", ":event-type": "PayloadPart"}
    if part.data_type is not None:
        headers["DataType"] = part.data_type
    if part.completion_state is not None:
        headers["CompletionState"] = part.completion_state
    if padding is not None:
        headers["P"] = padding
    if part.bytes:
        headers[":content-type"] = "application/octet-stream"
    return encode_message(headers, part.bytes)


def envelope(payload: bytes, *, time_ms: int, signature: bytes) -> bytes:
    """A signed envelope message around ``payload``."""
    date = _EPOCH + timedelta(milliseconds=time_ms)
    return encode_message({":date": date, ":chunk-signature": signature}, payload)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class EventSigner:
    """Signs a stream's envelopes in order. The credentials are a snapshot taken for the stream,
    so a key rotating mid-stream does not break the chain (its seed was signed with this one)."""

    def __init__(
        self,
        *,
        seed_signature: str,
        credentials: FrozenCredentials,
        region: str,
        service: str,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._prior = seed_signature
        self._credentials = credentials
        self._region = region
        self._service = service
        self._clock_ms = clock_ms

    def __repr__(self) -> str:
        return f"<EventSigner region={self._region!r}>"

    def wrap(self, payload: bytes) -> bytes:
        time_ms = self._clock_ms()
        signature = sign_event(
            payload,
            prior_signature=self._prior,
            time_ms=time_ms,
            credentials=self._credentials,
            region=self._region,
            service=self._service,
        )
        self._prior = signature.hex()
        return envelope(payload, time_ms=time_ms, signature=signature)


def response_part(message: Message, *, request_id: str | None = None) -> BidirectionalPart | None:
    """The part a response message carries; ``None`` for unknown events; raises for exceptions."""
    headers = message.headers
    if headers.get(":message-type") == "event" and headers.get(":event-type") == "PayloadPart":
        data_type = headers.get("DataType")
        state = headers.get("CompletionState")
        return BidirectionalPart(
            message.payload,
            data_type if isinstance(data_type, str) else None,
            state if isinstance(state, str) else None,
        )
    message_to_part(message, request_id=request_id)  # raises for exceptions and errors
    return None
