"""The client's side of a local bidirectional stream: envelopes in, verified, ``BidirectionalPart``s
out (reference section 10).

Every envelope's ``:chunk-signature`` is recomputed (when the runtime has credentials) from the
previous signature, the envelope's ``:date`` and its payload, starting from the request's own
signature; a mismatch, an unsigned envelope or a malformed message raises ``BadEvent``. An envelope
is acknowledged to the client (flow control) only once the handler has taken what it carried.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

from .._bidi_events import BidirectionalPart
from .._eventstream import EventStreamDecoder, Message
from .._signing import FrozenCredentials, sign_event
from ._h2_server import ServerStream

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)


class BadEvent(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


class Inbound:
    """The client's events as ``BidirectionalPart``s, verified when there are credentials."""

    def __init__(
        self,
        stream: ServerStream,
        credentials: FrozenCredentials | None,
        seed: str | None,
        region: str,
    ) -> None:
        self._stream = stream
        self._credentials = credentials
        self._prior = seed
        self._region = region
        self._decoder = EventStreamDecoder()
        self._pending: list[Message] = []
        self.ended = False
        self.error: BadEvent | None = None

    def __aiter__(self) -> AsyncIterator[BidirectionalPart]:
        return self._parts()

    async def _parts(self) -> AsyncIterator[BidirectionalPart]:
        while not self.ended:
            if not self._pending:
                # Everything decoded was taken: let the client send more (flow control).
                self._stream.ack()
                chunk = await self._stream.receive()
                if chunk is None:
                    self.ended = True
                    self._decoder.close()
                    return
                self._pending.extend(self._decoder.feed(chunk))
                if self._decoder.error is not None:
                    raise self._fail("SerializationException", str(self._decoder.error))
                continue
            envelope = self._pending.pop(0)
            part = self._open(envelope)
            if part is None:  # the final, empty envelope
                self.ended = True
                self._stream.ack()
                return
            yield part

    def _fail(self, code: str, message: str) -> BadEvent:
        self.error = BadEvent(code, message)
        return self.error

    def _open(self, envelope: Message) -> BidirectionalPart | None:
        headers = envelope.headers
        date, signature = headers.get(":date"), headers.get(":chunk-signature")
        if self._credentials is not None:
            if not isinstance(date, datetime) or not isinstance(signature, bytes):
                raise self._fail("InvalidSignatureException", "event is not signed")
            assert self._prior is not None
            time_ms = (date - _EPOCH) // _ONE_MS
            expected = sign_event(
                envelope.payload,
                prior_signature=self._prior,
                time_ms=time_ms,
                credentials=self._credentials,
                region=self._region,
                service="sagemaker",
            )
            if not hmac.compare_digest(expected, signature):
                raise self._fail(
                    "InvalidSignatureException",
                    "The event signature we calculated does not match the signature you provided.",
                )
            self._prior = signature.hex()
        if not envelope.payload:
            return None
        decoder = EventStreamDecoder()
        messages = decoder.feed(envelope.payload)
        if len(messages) != 1 or decoder.pending:
            raise self._fail("SerializationException", "an envelope must hold one event message")
        inner = messages[0].headers
        if inner.get(":message-type") != "event" or inner.get(":event-type") != "PayloadPart":
            raise self._fail("SerializationException", "expected a PayloadPart event")
        data_type, state = inner.get("DataType"), inner.get("CompletionState")
        return BidirectionalPart(
            messages[0].payload,
            data_type if isinstance(data_type, str) else None,
            state if isinstance(state, str) else None,
        )
