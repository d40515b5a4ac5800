"""Event signing and the HTTP/2 endpoint, checked against tables made by AWS's own code.

- tests/vectors/event_signing.json comes from AWS's ``aws-sdk-signers`` (``AsyncEventSigner``) and
  ``smithy-aws-event-stream`` (``EventMessage``), with the clock pinned; the script that made it is
  scripts/make_event_signing_vectors.py (Python 3.12).
- The endpoint table is the generated test suite of AWS's Rust SDK (``sagemakerruntimehttp2``,
  src/config/endpoint.rs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sagemaker_rt_aio import BidirectionalPart, SageMakerRuntimeClient
from sagemaker_rt_aio._bidi_endpoints import bidirectional_service_url
from sagemaker_rt_aio._bidi_events import EventSigner, encode_part, envelope
from sagemaker_rt_aio._signing import FrozenCredentials, encoded_date_header, sign_event

VECTORS = json.loads((Path(__file__).parent / "vectors" / "event_signing.json").read_text())
CASES = VECTORS["cases"]


def _credentials(case: dict[str, Any]) -> FrozenCredentials:
    return FrozenCredentials(case["access_key"], case["secret_key"], case["session_token"])


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_event_signatures_match_aws_sdk_signers(case: dict[str, Any]) -> None:
    prior = case["seed_signature"]
    for event in case["events"]:
        inner = bytes.fromhex(event["inner_message_hex"])
        signature = sign_event(
            inner,
            prior_signature=prior,
            time_ms=event["time_ms"],
            credentials=_credentials(case),
            region=case["region"],
            service=case["service"],
        )
        assert signature.hex() == event["signature_hex"]
        assert (
            envelope(inner, time_ms=event["time_ms"], signature=signature).hex()
            == (event["envelope_hex"])
        )
        prior = signature.hex()


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_inner_messages_and_chain_match(case: dict[str, Any]) -> None:
    """Our PayloadPart encoding and the stateful chain give AWS's bytes."""
    times = iter(event["time_ms"] for event in case["events"])
    signer = EventSigner(
        seed_signature=case["seed_signature"],
        credentials=_credentials(case),
        region=case["region"],
        service=case["service"],
        clock_ms=lambda: next(times),
    )
    for event in case["events"]:
        if event.get("final"):
            payload = b""
        else:
            headers = event["headers"]
            part = BidirectionalPart(
                bytes.fromhex(event["bytes_hex"]),
                headers.get("DataType"),
                headers.get("CompletionState"),
            )
            payload = encode_part(part, padding=headers.get("P"))
            assert payload.hex() == event["inner_message_hex"]
        assert signer.wrap(payload).hex() == event["envelope_hex"]


def test_date_header_encoding() -> None:
    assert encoded_date_header(1_700_000_000_123) == (
        b"\x05:date\x08" + (1_700_000_000_123).to_bytes(8, "big")
    )


def test_signer_repr_hides_secrets() -> None:
    signer = EventSigner(
        seed_signature="ab" * 32,
        credentials=FrozenCredentials("AKID", "very-secret", "tok3n"),
        region="us-east-1",
        service="sagemaker",
    )
    assert "very-secret" not in repr(signer) and "ab" * 32 not in repr(signer)


# AWS's Rust SDK, sdk/sagemakerruntimehttp2/src/config/endpoint.rs, tests 4-25.
RUST_ENDPOINT_TESTS = [
    ("us-east-1", True, True, "https://runtime-fips.sagemaker.us-east-1.api.aws:8443"),
    ("us-east-1", True, False, "https://runtime-fips.sagemaker.us-east-1.amazonaws.com:8443"),
    ("us-east-1", False, True, "https://runtime.sagemaker.us-east-1.api.aws:8443"),
    ("us-east-1", False, False, "https://runtime.sagemaker.us-east-1.amazonaws.com:8443"),
    (
        "cn-northwest-1", True, True,
        "https://runtime-fips.sagemaker.cn-northwest-1.api.amazonwebservices.com.cn:8443",
    ),
    (
        "cn-northwest-1", True, False,
        "https://runtime-fips.sagemaker.cn-northwest-1.amazonaws.com.cn:8443",
    ),
    (
        "cn-northwest-1", False, True,
        "https://runtime.sagemaker.cn-northwest-1.api.amazonwebservices.com.cn:8443",
    ),
    ("cn-northwest-1", False, False, "https://runtime.sagemaker.cn-northwest-1.amazonaws.com.cn:8443"),
    ("eusc-de-east-1", True, False, "https://runtime-fips.sagemaker.eusc-de-east-1.amazonaws.eu:8443"),
    ("eusc-de-east-1", False, False, "https://runtime.sagemaker.eusc-de-east-1.amazonaws.eu:8443"),
    ("us-iso-east-1", True, False, "https://runtime-fips.sagemaker.us-iso-east-1.c2s.ic.gov:8443"),
    ("us-iso-east-1", False, False, "https://runtime.sagemaker.us-iso-east-1.c2s.ic.gov:8443"),
    ("us-isob-east-1", True, False, "https://runtime-fips.sagemaker.us-isob-east-1.sc2s.sgov.gov:8443"),
    ("us-isob-east-1", False, False, "https://runtime.sagemaker.us-isob-east-1.sc2s.sgov.gov:8443"),
    ("eu-isoe-west-1", True, False, "https://runtime.sagemaker-fips.eu-isoe-west-1.cloud.adc-e.uk"),
    ("eu-isoe-west-1", False, False, "https://runtime.sagemaker.eu-isoe-west-1.cloud.adc-e.uk"),
    (
        "us-isof-south-1", True, False,
        "https://runtime-fips.sagemaker.us-isof-south-1.csp.hci.ic.gov:8443",
    ),
    ("us-isof-south-1", False, False, "https://runtime.sagemaker.us-isof-south-1.csp.hci.ic.gov:8443"),
    ("us-gov-west-1", True, True, "https://runtime-fips.sagemaker.us-gov-west-1.api.aws:8443"),
    ("us-gov-west-1", True, False, "https://runtime-fips.sagemaker.us-gov-west-1.amazonaws.com:8443"),
    ("us-gov-west-1", False, True, "https://runtime.sagemaker.us-gov-west-1.api.aws:8443"),
    ("us-gov-west-1", False, False, "https://runtime.sagemaker.us-gov-west-1.amazonaws.com:8443"),
]  # fmt: skip


@pytest.mark.parametrize(("region", "fips", "dual_stack", "url"), RUST_ENDPOINT_TESTS)
def test_endpoint_rule_set(region: str, fips: bool, dual_stack: bool, url: str) -> None:
    assert bidirectional_service_url(region, fips=fips, dual_stack=dual_stack) == url
    client = SageMakerRuntimeClient(
        region,
        use_fips_endpoint=fips,
        use_dualstack_endpoint=dual_stack,
        aws_access_key_id="AKID",
        aws_secret_access_key="SECRET",
    )
    assert client.bidirectional_endpoint_url == url


def test_fips_pseudo_region_and_explicit_url() -> None:
    client = SageMakerRuntimeClient(
        "us-east-1-fips", aws_access_key_id="AKID", aws_secret_access_key="SECRET"
    )
    assert client.bidirectional_endpoint_url == (
        "https://runtime-fips.sagemaker.us-east-1.amazonaws.com:8443"
    )
    assert client.region_name == "us-east-1"
    explicit = SageMakerRuntimeClient(
        "eu-west-1",
        bidirectional_endpoint_url="https://bidi.example.com:9443",
        aws_access_key_id="AKID",
        aws_secret_access_key="SECRET",
    )
    assert explicit.bidirectional_endpoint_url == "https://bidi.example.com:9443"
    assert explicit.endpoint_url == "https://runtime.sagemaker.eu-west-1.amazonaws.com"
