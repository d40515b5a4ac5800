"""Bearer tokens for the OpenAI-compatible route, made as the SageMaker Python SDK makes them.

A token is ``sagemaker-api-key-`` + base64 of a SigV4 query-presigned URL for
``POST https://sagemaker.amazonaws.com/?Action=CallWithBearerToken`` (service ``sagemaker``, the
client's region), without its scheme, with ``&Version=1`` appended. The service checks that
presigned request, so the token is as good as the credentials behind it until it expires.

Tokens are secrets: nothing here logs them or shows them in a repr.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from . import _signing
from ._constants import (
    BEARER_TOKEN_ACTION,
    BEARER_TOKEN_HOST,
    BEARER_TOKEN_MAX_EXPIRES,
    BEARER_TOKEN_PREFIX,
    BEARER_TOKEN_REUSE_SHARE,
    BEARER_TOKEN_VERSION,
    EMPTY_SHA256,
    SIGNING_NAME,
    SIGV4_ALGORITHM,
)
from ._errors import ParamValidationError
from ._signing import (
    FrozenCredentials,
    amz_date,
    canonical_uri,
    hmac_signature,
    sha256_hex,
    signing_hmac,
)


# SigV4 query presigning lives here, beside its only user: the bearer token is a presigned URL
# (and this module loads with the first token, not with the package).
def _query_encode(value: str) -> str:
    # botocore's percent_encode: RFC 3986 unreserved characters stay, everything else is encoded.
    return quote(value, safe="-_.~")


def presign_url(
    *,
    method: str,
    host: str,
    path: str,
    params: dict[str, str],
    credentials: FrozenCredentials,
    region: str,
    service: str,
    expires: int,
    timestamp: str | None = None,
) -> str:
    """A SigV4 query-presigned ``https://`` URL, as botocore's ``SigV4QueryAuth`` makes it.

    Only ``host`` is signed and the payload is the empty body's hash. The URL's query is the
    operation ``params`` first, then the auth parameters in botocore's order, then the signature;
    the canonical query string sorts them. Uses the same cached signing key as :func:`sign`.
    """
    stamp = timestamp or amz_date()
    date = stamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    auth = {
        "X-Amz-Algorithm": SIGV4_ALGORITHM,
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    if credentials.token is not None:
        auth["X-Amz-Security-Token"] = credentials.token
    pairs = [(_query_encode(k), _query_encode(v)) for k, v in params.items()]
    pairs += [(_query_encode(k), _query_encode(v)) for k, v in auth.items()]
    query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_request = "\n".join(
        (
            method,
            canonical_uri(path),
            "&".join(f"{k}={v}" for k, v in sorted(pairs)),
            f"host:{host}\n",
            "host",
            # botocore's SigV4QueryAuth hashes the (empty) body rather than UNSIGNED-PAYLOAD.
            EMPTY_SHA256,
        )
    )
    string_to_sign = (
        f"{SIGV4_ALGORITHM}\n{stamp}\n{scope}\n" + sha256_hex(canonical_request.encode())
    )
    signature = hmac_signature(
        signing_hmac(credentials.secret_key, date, region, service), string_to_sign.encode()
    )
    return f"https://{host}{path}?{query}&X-Amz-Signature={signature}"


def make_bearer_token(
    credentials: FrozenCredentials, region: str, *, expires_in: int, now: float | None = None
) -> str:
    """The token for these credentials (one snapshot: key, secret and session token agree)."""
    url = presign_url(
        method="POST",
        host=BEARER_TOKEN_HOST,
        path="/",
        params={"Action": BEARER_TOKEN_ACTION},
        credentials=credentials,
        region=region,
        service=SIGNING_NAME,
        expires=expires_in,
        timestamp=amz_date(now),
    )
    presigned = url[len("https://") :] + BEARER_TOKEN_VERSION
    return BEARER_TOKEN_PREFIX + base64.b64encode(presigned.encode()).decode()


def check_expires_in(expires_in: object) -> int:
    if not isinstance(expires_in, int) or isinstance(expires_in, bool):
        raise ParamValidationError("expires_in", f"must be an int, got {type(expires_in).__name__}")
    if not 1 <= expires_in <= BEARER_TOKEN_MAX_EXPIRES:
        raise ParamValidationError(
            "expires_in", f"must be between 1 and {BEARER_TOKEN_MAX_EXPIRES} seconds"
        )
    return expires_in


class BearerTokens:
    """Mints tokens and hands a cached one out again while it is fresh enough.

    A cached token is reused while it keeps at least ``BEARER_TOKEN_REUSE_SHARE`` of the lifetime
    asked for, and only if the credentials are still the same snapshot: rotated or refreshed
    credentials mint a new token at once.
    """

    def __init__(
        self,
        region: str,
        get_credentials: Callable[[float | None], Awaitable[FrozenCredentials]],
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._region = region
        self._get_credentials = get_credentials
        # By default the signer's wall clock (swappable in tests), read at each call.
        self._clock = clock or (lambda: _signing._wall_clock())
        # expires_in -> (credentials snapshot, minted at, token)
        self._cache: dict[int, tuple[FrozenCredentials, float, str]] = {}

    def __repr__(self) -> str:
        return f"<BearerTokens region={self._region!r} cached={len(self._cache)}>"

    async def get(
        self, expires_in: int = BEARER_TOKEN_MAX_EXPIRES, *, deadline: float | None = None
    ) -> str:
        """A token valid ``expires_in`` seconds; credentials are awaited no later than
        ``deadline`` (``time.monotonic()``, a call's deadline)."""
        credentials = await self._get_credentials(deadline)
        now = self._clock()
        cached = self._cache.get(expires_in)
        if cached is not None:
            snapshot, minted, token = cached
            if snapshot is credentials and now - minted <= expires_in * (
                1 - BEARER_TOKEN_REUSE_SHARE
            ):
                return token
        token = make_bearer_token(credentials, self._region, expires_in=expires_in, now=now)
        # X-Amz-Date has whole seconds: the token's life counts from the second it names.
        self._cache[expires_in] = (credentials, float(int(now)), token)
        return token
