"""SigV4 verification of received requests, by recomputing the signature with botocore.

The verifier rebuilds the request the client signed: the method, the raw (still percent-encoded) path
and query exactly as received, only the headers named in ``SignedHeaders``, and the body; then it
asks botocore's own signer (``SigV4Auth`` for SageMaker, ``S3SigV4Auth`` for S3, which does not
normalise the path and takes the payload hash from ``x-amz-content-sha256``) for the canonical
request, string to sign and signature at the request's ``X-Amz-Date``, and compares in constant time.

A failure is reported as an :class:`AuthFailure` *kind*; each front end (SageMaker JSON, S3 XML)
turns kinds into its own error codes.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.auth  # type: ignore[import-untyped,unused-ignore]
import botocore.awsrequest  # type: ignore[import-untyped,unused-ignore]
import botocore.credentials  # type: ignore[import-untyped,unused-ignore]

from .._constants import SIGV4_ALGORITHM

#: A signature is accepted for this long either side of the server's clock (SigV4's rule).
MAX_CLOCK_SKEW = 300.0
_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_UNVERIFIABLE_PAYLOADS = frozenset(
    {
        "UNSIGNED-PAYLOAD",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    }
)

# Failure kinds.
MISSING = "missing"  # no Authorization header
MALFORMED = "malformed"  # Authorization, X-Amz-Date or the scope cannot be parsed / are incomplete
UNKNOWN_KEY = "unknown_key"  # access key id is not ours
BAD_TOKEN = "bad_token"  # session token missing, unsigned or wrong
SKEWED = "skewed"  # X-Amz-Date more than 5 minutes from now
BAD_SCOPE = "bad_scope"  # scope date, region or service wrong
MISMATCH = "mismatch"  # the recomputed signature differs
CONTENT_SHA_MISSING = "content_sha_missing"  # S3: no x-amz-content-sha256
CONTENT_SHA_MISMATCH = "content_sha_mismatch"  # S3: x-amz-content-sha256 is not the body's hash


@dataclass(frozen=True)
class AuthFailure:
    kind: str
    message: str


class SignatureVerifier:
    """Checks requests against one set of credentials, for one region."""

    def __init__(
        self,
        credentials: botocore.credentials.Credentials,
        region: str,
        *,
        max_skew: float = MAX_CLOCK_SKEW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._region = region
        self._max_skew = max_skew
        self._clock = clock

    def verify(
        self,
        *,
        method: str,
        raw_path: str,
        headers: Mapping[str, str],
        body: bytes,
        service: str,
        get_all: Callable[[str], list[str]],
    ) -> AuthFailure | None:
        """``None`` when the request is correctly signed for ``service``; else why not.

        ``headers`` must look names up case-insensitively; ``get_all(name)`` returns every value of
        a header in the order received. ``raw_path`` includes the query string, undecoded.
        """
        checked = self._check_headers(headers, service)
        if isinstance(checked, AuthFailure):
            return checked
        names, signature, creds, amz_date = checked
        if service == "s3":
            content_sha = headers.get("x-amz-content-sha256")
            if content_sha is None:
                return AuthFailure(
                    CONTENT_SHA_MISSING,
                    "Missing required header for this request: x-amz-content-sha256",
                )
            if content_sha not in _UNVERIFIABLE_PAYLOADS and not hmac.compare_digest(
                content_sha.lower().encode(), hashlib.sha256(body).hexdigest().encode()
            ):
                return AuthFailure(
                    CONTENT_SHA_MISMATCH,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )

        expected = self._signature(method, raw_path, names, get_all, body, service, creds, amz_date)
        if expected is None or not hmac.compare_digest(expected.encode(), signature.encode()):
            return AuthFailure(
                MISMATCH,
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service "
                "documentation for details.",
            )
        return None

    def precheck(self, *, headers: Mapping[str, str], service: str) -> AuthFailure | None:
        """What can be checked before the body is read (everything but the signature itself):
        a request failing here is refused without buffering its body."""
        checked = self._check_headers(headers, service)
        return checked if isinstance(checked, AuthFailure) else None

    def _check_headers(
        self, headers: Mapping[str, str], service: str
    ) -> AuthFailure | tuple[list[str], str, Any, str]:
        authorization = headers.get("Authorization")
        if not authorization:
            return AuthFailure(MISSING, "Missing Authentication Token")
        parsed = _parse_authorization(authorization)
        if parsed is None:
            return AuthFailure(
                MALFORMED,
                "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                f"parameters and the {SIGV4_ALGORITHM} algorithm.",
            )
        scope, signed_headers, signature = parsed
        creds = self._credentials.get_frozen_credentials()

        parts = scope.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            return AuthFailure(
                MALFORMED, f"Credential should be scoped to a valid region, not '{scope}'."
            )
        access_key, scope_date, scope_region, scope_service, _ = parts
        if not hmac.compare_digest(access_key.encode(), creds.access_key.encode()):
            return AuthFailure(
                UNKNOWN_KEY, "The security token included in the request is invalid."
            )

        amz_date = headers.get("X-Amz-Date")
        if not amz_date:
            return AuthFailure(
                MALFORMED,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header.",
            )
        try:
            signed_at = datetime.datetime.strptime(amz_date, _TIMESTAMP_FORMAT).replace(
                tzinfo=datetime.timezone.utc
            )
        except ValueError:
            return AuthFailure(MALFORMED, f"Invalid X-Amz-Date '{amz_date}'.")
        skew_failure = self._check_skew(amz_date, signed_at.timestamp())
        if skew_failure is not None:
            return skew_failure

        if scope_date != amz_date[:8]:
            return AuthFailure(
                BAD_SCOPE,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                "from HTTP.",
            )
        if scope_region != self._region:
            return AuthFailure(
                BAD_SCOPE,
                f"Credential should be scoped to a valid region, not '{scope_region}'. "
                f"Expected '{self._region}'.",
            )
        if scope_service != service:
            return AuthFailure(
                BAD_SCOPE, f"Credential should be scoped to correct service: '{service}'."
            )

        names = [name for name in signed_headers.split(";") if name]
        if "host" not in names:
            return AuthFailure(
                MALFORMED, "'Host' must be a 'SignedHeader' in the AWS Authorization."
            )
        token_failure = _check_token(creds.token, headers.get("X-Amz-Security-Token"), names)
        if token_failure is not None:
            return token_failure

        return names, signature, creds, amz_date

    def _check_skew(self, amz_date: str, signed_at: float) -> AuthFailure | None:
        now = self._clock()
        if abs(now - signed_at) <= self._max_skew:
            return None
        now_text = time.strftime(_TIMESTAMP_FORMAT, time.gmtime(now))
        if signed_at < now:
            earliest = time.strftime(_TIMESTAMP_FORMAT, time.gmtime(now - self._max_skew))
            text = (
                f"Signature expired: {amz_date} is now earlier than {earliest} "
                f"({now_text} - 5 min.)"
            )
        else:
            latest = time.strftime(_TIMESTAMP_FORMAT, time.gmtime(now + self._max_skew))
            text = (
                f"Signature not yet current: {amz_date} is still later than {latest} "
                f"({now_text} + 5 min.)"
            )
        return AuthFailure(SKEWED, text)

    def _signature(
        self,
        method: str,
        raw_path: str,
        names: list[str],
        get_all: Callable[[str], list[str]],
        body: bytes,
        service: str,
        creds: Any,
        amz_date: str,
    ) -> str | None:
        host_values = get_all("host")
        if not host_values:
            return None
        request = botocore.awsrequest.AWSRequest(
            method=method.upper(), url=f"http://{host_values[0]}{raw_path}", data=body
        )
        for name in names:
            values = get_all(name)
            if not values:
                return None  # a signed header that was not sent can never match
            for value in values:
                # HTTPHeaders is an email.message.Message: assignment appends, so repeated
                # headers keep every value, which canonical_headers joins with ','.
                request.headers[name] = value
        request.context["timestamp"] = amz_date
        signer_class = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
        signer = signer_class(creds, service, self._region)
        canonical_request = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical_request)
        return str(signer.signature(string_to_sign, request))


def _parse_authorization(value: str) -> tuple[str, str, str] | None:
    """``(credential scope, signed headers, signature)`` of a SigV4 ``Authorization`` header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != SIGV4_ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            fields[key.strip()] = val.strip()
    try:
        return fields["Credential"], fields["SignedHeaders"], fields["Signature"]
    except KeyError:
        return None


def _check_token(expected: str | None, sent: str | None, signed: list[str]) -> AuthFailure | None:
    invalid = AuthFailure(BAD_TOKEN, "The security token included in the request is invalid.")
    if expected:
        if sent is None:
            return AuthFailure(BAD_TOKEN, "The security token included in the request is missing.")
        if "x-amz-security-token" not in signed:
            return invalid
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            return invalid
    elif sent is not None:
        return invalid
    return None
