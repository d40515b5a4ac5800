"""Verification of ``sagemaker-api-key-`` bearer tokens, as the service does it.

A token is base64 of a presigned ``POST sagemaker.amazonaws.com/?Action=CallWithBearerToken``
URL (+ ``&Version=1``). It is good when that presigned request is: our access key, the session
token if the credentials have one, the runtime's region and service ``sagemaker`` in its scope,
not expired (``X-Amz-Date`` + ``X-Amz-Expires``), and a signature that botocore's own
``SigV4QueryAuth`` recomputes to the same value (not the client's code: an independent check).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
from collections.abc import Callable
from urllib.parse import unquote

import botocore.auth  # type: ignore[import-untyped,unused-ignore]
import botocore.awsrequest  # type: ignore[import-untyped,unused-ignore]
import botocore.credentials  # type: ignore[import-untyped,unused-ignore]

from .._constants import (
    BEARER_TOKEN_ACTION,
    BEARER_TOKEN_HOST,
    BEARER_TOKEN_MAX_EXPIRES,
    BEARER_TOKEN_PREFIX,
    BEARER_TOKEN_VERSION,
    SIGNING_NAME,
    SIGV4_ALGORITHM,
)
from ._sigv4_verify import (
    BAD_SCOPE,
    BAD_TOKEN,
    MALFORMED,
    MAX_CLOCK_SKEW,
    MISMATCH,
    MISSING,
    SKEWED,
    UNKNOWN_KEY,
    AuthFailure,
)

EXPIRED = "expired"  # a bearer token past X-Amz-Date + X-Amz-Expires

_INVALID = "The security token included in the request is invalid."
_REQUIRED = (
    "Action",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


def bearer_token_of(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if authorization is None or authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip()


def verify_bearer_token(
    token: str | None,
    credentials: botocore.credentials.Credentials,
    region: str,
    *,
    clock: Callable[[], float],
) -> AuthFailure | None:
    """None if ``token`` is a valid, unexpired token for these credentials; else why not."""
    if not token:
        return AuthFailure(MISSING, "Missing Authentication Token")
    if not token.startswith(BEARER_TOKEN_PREFIX):
        return AuthFailure(MALFORMED, "Invalid API key format: must start with the prefix.")
    try:
        url = base64.b64decode(token[len(BEARER_TOKEN_PREFIX) :], validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return AuthFailure(MALFORMED, _INVALID)
    start = f"{BEARER_TOKEN_HOST}/?"
    if not url.startswith(start) or not url.endswith(BEARER_TOKEN_VERSION):
        return AuthFailure(MALFORMED, _INVALID)
    query = url[len(start) : -len(BEARER_TOKEN_VERSION)]
    pairs = [pair.partition("=") for pair in query.split("&")]
    params = {unquote(key): unquote(value) for key, _, value in pairs}
    if any(name not in params for name in _REQUIRED) or len(params) != len(pairs):
        return AuthFailure(MALFORMED, _INVALID)
    if (
        params["Action"] != BEARER_TOKEN_ACTION
        or params["X-Amz-Algorithm"] != SIGV4_ALGORITHM
        or params["X-Amz-SignedHeaders"] != "host"
    ):
        return AuthFailure(MALFORMED, _INVALID)
    creds = credentials.get_frozen_credentials()

    scope = params["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return AuthFailure(MALFORMED, _INVALID)
    access_key, scope_date, scope_region, scope_service, _ = scope
    if not hmac.compare_digest(access_key.encode(), creds.access_key.encode()):
        return AuthFailure(UNKNOWN_KEY, _INVALID)
    stamp = params["X-Amz-Date"]
    try:
        signed_at = (
            datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
            .replace(tzinfo=datetime.timezone.utc)
            .timestamp()
        )
        expires = int(params["X-Amz-Expires"])
    except ValueError:
        return AuthFailure(MALFORMED, _INVALID)
    if not 1 <= expires <= BEARER_TOKEN_MAX_EXPIRES:
        return AuthFailure(MALFORMED, _INVALID)
    if scope_date != stamp[:8] or scope_region != region or scope_service != SIGNING_NAME:
        return AuthFailure(BAD_SCOPE, f"Credential should be scoped to a valid region. ({region})")
    expected_token = creds.token or None
    sent_token = params.get("X-Amz-Security-Token") or None
    if expected_token is None:
        if sent_token is not None:
            return AuthFailure(BAD_TOKEN, _INVALID)
    elif sent_token is None or not hmac.compare_digest(
        expected_token.encode(), sent_token.encode()
    ):
        return AuthFailure(BAD_TOKEN, _INVALID)

    now = clock()
    if now > signed_at + expires:
        return AuthFailure(EXPIRED, "The security token included in the request is expired")
    if signed_at > now + MAX_CLOCK_SKEW:
        return AuthFailure(SKEWED, "Signature not yet current.")

    # botocore recomputes the signature of the presigned request (everything but the signature).
    unsigned = query.rsplit("&X-Amz-Signature=", 1)[0]
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=f"https://{start}{unsigned}", headers={"host": BEARER_TOKEN_HOST}
    )
    request.context["timestamp"] = stamp
    signer = botocore.auth.SigV4QueryAuth(creds, SIGNING_NAME, region, expires=expires)
    canonical = signer.canonical_request(request)
    expected = str(signer.signature(signer.string_to_sign(request, canonical), request))
    if not hmac.compare_digest(expected.encode(), params["X-Amz-Signature"].encode()):
        return AuthFailure(
            MISMATCH,
            "The request signature we calculated does not match the signature you provided.",
        )
    return None


# Refusals as the service answers them: status and error code per failure kind.
BEARER_AUTH_ERRORS: dict[str, tuple[int, str]] = {
    MISSING: (403, "MissingAuthenticationTokenException"),
    MALFORMED: (403, "UnrecognizedClientException"),
    UNKNOWN_KEY: (403, "UnrecognizedClientException"),
    BAD_TOKEN: (403, "UnrecognizedClientException"),
    EXPIRED: (403, "ExpiredTokenException"),
    SKEWED: (403, "InvalidSignatureException"),
    BAD_SCOPE: (403, "InvalidSignatureException"),
    MISMATCH: (403, "InvalidSignatureException"),
}
