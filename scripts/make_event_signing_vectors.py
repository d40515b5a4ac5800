"""Make tests/vectors/event_signing.json with AWS's own event signer (``aws-sdk-signers``).

An oracle that is not our code: the event envelopes (``:date``, ``:chunk-signature``) of
InvokeEndpointWithBidirectionalStream, chained from a fixed request signature, with the clock
pinned. Needs Python 3.12+ (the AWS packages require it)::

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/v312
    /tmp/v312/bin/pip install aws-sdk-signers smithy-aws-event-stream
    /tmp/v312/bin/python scripts/make_event_signing_vectors.py > tests/vectors/event_signing.json

The inner messages are encoded by smithy's ``EventMessage`` too, with the headers AWS's SageMaker
Runtime HTTP/2 SDK sets on a ``PayloadPart`` (``:message-type``, ``:event-type``, the optional
``DataType``/``CompletionState``/``P`` and, with a non-empty payload, ``:content-type``).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys

from aws_sdk_signers import AsyncEventSigner, AWSCredentialIdentity, signers
from smithy_aws_event_stream.events import EventHeaderEncoder, EventMessage

CASES = [
    {
        "name": "static-key",
        "access_key": "AKIDEXAMPLE",
        "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "session_token": None,
        "region": "us-east-1",
        "service": "sagemaker",
        "seed_signature": "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        "events": [
            {"time_ms": 1_700_000_000_123, "bytes_hex": b"hello".hex(), "headers": {}},
            {
                "time_ms": 1_700_000_000_999,
                "bytes_hex": "00ff10",
                "headers": {"DataType": "BINARY", "CompletionState": "PARTIAL"},
            },
            {
                "time_ms": 1_700_000_001_000,
                "bytes_hex": "7b2278223a317d",
                "headers": {"DataType": "UTF8", "CompletionState": "COMPLETE", "P": "abc"},
            },
            {"time_ms": 1_700_000_002_500, "final": True},
        ],
    },
    {
        "name": "other-region-midnight",
        "access_key": "ASIAEXAMPLE",
        "secret_key": "secret/with+chars",
        "session_token": "token",
        "region": "eu-central-1",
        "service": "sagemaker",
        "seed_signature": "0000000000000000000000000000000000000000000000000000000000000001",
        "events": [
            # Crosses midnight UTC between events: each event's scope uses its own date.
            {"time_ms": 1_704_067_199_900, "bytes_hex": "", "headers": {}},
            {"time_ms": 1_704_067_200_100, "bytes_hex": "61" * 300, "headers": {}},
            {"time_ms": 1_704_067_200_200, "final": True},
        ],
    },
]

_INNER_ORDER = ("DataType", "CompletionState", "P")


class _PinnedDatetime(datetime.datetime):
    pinned: datetime.datetime

    @classmethod
    def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:  # type: ignore[override]
        return cls.pinned


class _PinnedModule:
    UTC = datetime.UTC
    datetime = _PinnedDatetime


def _inner(event: dict[str, object]) -> bytes:
    headers: dict[str, str] = {":message-type": "event", ":event-type": "PayloadPart"}
    extra = event["headers"]
    assert isinstance(extra, dict)
    for name in _INNER_ORDER:
        if name in extra:
            headers[name] = extra[name]
    payload = bytes.fromhex(str(event["bytes_hex"]))
    if payload:  # smithy's serializer sets the media type only on a non-empty payload
        headers[":content-type"] = "application/octet-stream"
    return EventMessage(headers=headers, payload=payload).encode()


async def _run(case: dict[str, object]) -> dict[str, object]:
    signers.datetime = _PinnedModule  # type: ignore[attr-defined]
    signer = AsyncEventSigner(
        initial_signature=str(case["seed_signature"]).encode(),
        event_encoder_cls=EventHeaderEncoder,
    )
    identity = AWSCredentialIdentity(
        access_key_id=str(case["access_key"]),
        secret_access_key=str(case["secret_key"]),
        session_token=case["session_token"],  # type: ignore[arg-type]
    )
    properties = {"region": case["region"], "service": case["service"]}
    out = []
    events = case["events"]
    assert isinstance(events, list)
    for event in events:
        _PinnedDatetime.pinned = datetime.datetime.fromtimestamp(
            event["time_ms"] / 1000, datetime.UTC
        )
        if event.get("final"):
            signed = await signer.sign_empty(
                event=EventMessage(),
                identity=identity,
                properties=properties,  # type: ignore[arg-type]
            )
            inner = b""
        else:
            inner = _inner(event)
            signed = await signer._sign_payload(  # the payload is the inner message, as sign() does
                event=EventMessage(),
                payload=inner,
                identity=identity,
                properties=properties,  # type: ignore[arg-type]
            )
        out.append(
            {
                **event,
                "inner_message_hex": inner.hex(),
                "signature_hex": signed.headers[":chunk-signature"].hex(),
                "envelope_hex": signed.encode().hex(),
            }
        )
    return {**case, "events": out}


def main() -> None:
    results = [asyncio.run(_run(case)) for case in CASES]
    doc = {
        "generator": "scripts/make_event_signing_vectors.py",
        "oracle": "aws-sdk-signers AsyncEventSigner + smithy-aws-event-stream EventMessage",
        "python": sys.version.split()[0],
        "cases": results,
    }
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
