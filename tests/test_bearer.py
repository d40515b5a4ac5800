"""Bearer tokens: the SageMaker SDK's own vectors, botocore's SigV4QueryAuth as the oracle, the
cache, and the local runtime's verification."""

from __future__ import annotations

import base64
import datetime
import json
import logging
from pathlib import Path
from unittest import mock

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio import ParamValidationError, RetryPolicy, SageMakerRuntimeClient
from sagemaker_rt_aio._bearer import BearerTokens, make_bearer_token
from sagemaker_rt_aio._signing import FrozenCredentials
from sagemaker_rt_aio.local._bearer_verify import (
    EXPIRED,
    verify_bearer_token,
)
from sagemaker_rt_aio.local._sigv4_verify import (
    BAD_SCOPE,
    BAD_TOKEN,
    MALFORMED,
    MISMATCH,
    MISSING,
    UNKNOWN_KEY,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "bearer_tokens.json").read_text())
PREFIX = "sagemaker-api-key-"


def botocore_token(
    access: str, secret: str, token: str | None, region: str, expires: int, now: float
) -> str:
    """The token as sagemaker-core builds it, with botocore's clock frozen at ``now``."""
    request = AWSRequest(
        method="POST",
        url="https://sagemaker.amazonaws.com/",
        headers={"host": "sagemaker.amazonaws.com"},
        params={"Action": "CallWithBearerToken"},
    )
    fixed = datetime.datetime.fromtimestamp(int(now), datetime.timezone.utc).replace(tzinfo=None)
    auth = botocore.auth.SigV4QueryAuth(
        botocore.credentials.Credentials(access, secret, token), "sagemaker", region, expires
    )
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=fixed):
        auth.add_auth(request)
    url = request.url.replace("https://", "") + "&Version=1"
    return PREFIX + base64.b64encode(url.encode()).decode()


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["region"])
def test_same_token_as_the_sagemaker_sdk(vector: dict[str, object]) -> None:
    credentials = FrozenCredentials(
        str(vector["access_key"]),
        str(vector["secret_key"]),
        vector["token"],  # type: ignore[arg-type]
    )
    token = make_bearer_token(
        credentials,
        str(vector["region"]),
        expires_in=int(vector["expires_in"]),  # type: ignore[call-overload]
        now=float(vector["now"]),  # type: ignore[arg-type]
    )
    assert token == vector["bearer_token"]


_key = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=4, max_size=20)
_secret = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    access=_key,
    secret=_secret,
    token=st.one_of(st.none(), _secret),
    region=st.sampled_from(["us-east-1", "eu-central-1", "ap-southeast-2", "cn-north-1"]),
    expires=st.integers(1, 43200),
    now=st.integers(1_000_000_000, 2_500_000_000),
)
def test_same_token_as_botocore_sigv4_query_auth(
    access: str, secret: str, token: str | None, region: str, expires: int, now: int
) -> None:
    ours = make_bearer_token(
        FrozenCredentials(access, secret, token), region, expires_in=expires, now=now
    )
    assert ours == botocore_token(access, secret, token, region, expires, now)


async def test_client_token_has_the_format_and_region() -> None:
    async with SageMakerRuntimeClient(
        region_name="eu-west-3", aws_access_key_id="AKIDX", aws_secret_access_key="sec"
    ) as client:
        token = await client.generate_bearer_token(expires_in=600)
    url = base64.b64decode(token[len(PREFIX) :]).decode()
    assert token.startswith(PREFIX)
    assert url.startswith("sagemaker.amazonaws.com/?Action=CallWithBearerToken&")
    assert "%2Feu-west-3%2Fsagemaker%2Faws4_request" in url
    assert "X-Amz-Expires=600&" in url and url.endswith("&Version=1")
    assert "X-Amz-Security-Token" not in url


async def test_a_view_and_its_client_share_one_token_cache() -> None:
    # The cache is made on first use (not with the client): whichever asks first, both use it.
    async with SageMakerRuntimeClient(
        region_name="us-east-1", aws_access_key_id="AKIDX", aws_secret_access_key="sec"
    ) as client:
        view = client.with_options(retry_policy=RetryPolicy(max_attempts=1))
        assert client._bearer_tokens is None
        first = await view.generate_bearer_token(expires_in=600)
        assert client._bearer_tokens is not None
        assert view._bearer() is client._bearer() is client.with_options()._bearer()
        assert await client.generate_bearer_token(expires_in=600) == first


@pytest.mark.parametrize("bad", [0, -1, 43201, 1.5, "60", True, None])
async def test_expires_in_is_validated_before_anything(bad: object) -> None:
    async with SageMakerRuntimeClient(
        region_name="us-east-1", aws_access_key_id="AKIDX", aws_secret_access_key="sec"
    ) as client:
        with pytest.raises(ParamValidationError) as caught:
            await client.generate_bearer_token(expires_in=bad)  # type: ignore[arg-type]
    assert "expires_in" in str(caught.value)


async def test_cache_reuses_then_renews_and_follows_credential_rotation() -> None:
    now = [1_800_000_000.0]
    current = [FrozenCredentials("AKID1", "s1")]

    async def get_credentials(deadline: float | None = None) -> FrozenCredentials:
        return current[0]

    tokens = BearerTokens("us-east-1", get_credentials, clock=lambda: now[0])
    first = await tokens.get(1000)
    now[0] += 99  # within the first 10% of its life: the same token
    assert await tokens.get(1000) == first
    assert await tokens.get(2000) != first  # another lifetime is another token
    now[0] += 2  # past 10%: a fresh one, with the fresh date
    renewed = await tokens.get(1000)
    assert renewed != first
    assert "X-Amz-Date=20270115T080141Z" in base64.b64decode(renewed[len(PREFIX) :]).decode()
    current[0] = FrozenCredentials("AKID2", "s2")  # rotated: never a token of the old ones
    rotated = await tokens.get(1000)
    assert "AKID2" in base64.b64decode(rotated[len(PREFIX) :]).decode()
    assert "AKID" not in repr(tokens) and "sagemaker-api-key" not in repr(tokens)


async def test_token_never_in_reprs_or_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sagemaker_rt_aio")
    async with SageMakerRuntimeClient(
        region_name="us-east-1", aws_access_key_id="AKIDX", aws_secret_access_key="sec"
    ) as client:
        token = await client.generate_bearer_token()
        assert token[len(PREFIX) :] not in repr(client)
        assert token[len(PREFIX) :] not in repr(vars(client))
    assert token[len(PREFIX) :] not in caplog.text


# -- the local runtime's verification ---------------------------------------------------------

CREDS = botocore.credentials.Credentials("AKIDLOCAL", "local-secret", "session/token+=")
NOW = 1_800_000_000.0


def token_for(
    access: str = "AKIDLOCAL",
    secret: str = "local-secret",
    session: str | None = "session/token+=",
    region: str = "us-east-1",
    expires: int = 900,
    now: float = NOW,
) -> str:
    return make_bearer_token(
        FrozenCredentials(access, secret, session), region, expires_in=expires, now=now
    )


def verify(token: str | None, now: float = NOW + 10) -> str | None:
    failure = verify_bearer_token(token, CREDS, "us-east-1", clock=lambda: now)
    return None if failure is None else failure.kind


def test_a_good_token_passes_until_it_expires() -> None:
    assert verify(token_for()) is None
    assert verify(token_for(), now=NOW + 900) is None
    assert verify(token_for(), now=NOW + 901) == EXPIRED
    # And the SDK's own token (botocore-made) passes too.
    assert verify(botocore_token("AKIDLOCAL", "local-secret", "session/token+=",
                                 "us-east-1", 60, NOW)) is None  # fmt: skip


def _tamper(token: str, old: str, new: str) -> str:
    url = base64.b64decode(token[len(PREFIX) :]).decode().replace(old, new)
    return PREFIX + base64.b64encode(url.encode()).decode()


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        (None, MISSING),
        ("", MISSING),
        ("not-a-sagemaker-token", MALFORMED),
        (PREFIX + "%%%not base64", MALFORMED),
        (PREFIX + base64.b64encode(b"example.com/?a=b&Version=1").decode(), MALFORMED),
        (token_for()[:-8], MALFORMED),
        (_tamper(token_for(), "CallWithBearerToken", "InvokeEndpoint"), MALFORMED),
        (_tamper(token_for(), "X-Amz-Expires=900", "X-Amz-Expires=99999"), MALFORMED),
        (token_for(secret="wrong-secret"), MISMATCH),
        (token_for(access="AKIDOTHER"), UNKNOWN_KEY),
        (token_for(session=None), BAD_TOKEN),
        (token_for(session="another"), BAD_TOKEN),
        (token_for(region="eu-west-1"), BAD_SCOPE),
        (_tamper(token_for(), "X-Amz-Expires=900", "X-Amz-Expires=901"), MISMATCH),
        (token_for(now=NOW - 2000), EXPIRED),
    ],
)
def test_bad_tokens_are_refused(token: str | None, kind: str) -> None:
    assert verify(token) == kind
