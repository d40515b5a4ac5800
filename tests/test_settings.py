"""Settings boto3 users put in the environment or ``~/.aws/config``, compared with boto3 itself.

Each case sets the same variables and config file for both clients (fresh botocore sessions, a
config file in a temporary directory) and expects what boto3 (botocore 1.43) does: region
precedence, retry mode and attempts, the User-Agent app id, and the S3 endpoint the
async-result waiter uses.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3.session
import botocore.config
import botocore.exceptions
import botocore.loaders
import botocore.session
import pytest

from sagemaker_rt_aio import (
    HttpRequest,
    HttpResponse,
    NoRegionError,
    ParamValidationError,
    RetryPolicy,
    SageMakerRuntimeClient,
)
from sagemaker_rt_aio._settings import resolve_s3_endpoint
from sagemaker_rt_aio.local import Invocation, LocalRuntime

pytestmark = pytest.mark.timeout(60)

KEYS = {"aws_access_key_id": "AKIDSETTINGS", "aws_secret_access_key": "settings-secret"}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty config file in a temporary directory; tests write what they need into it."""
    path = tmp_path / "config"
    path.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    yield path


# Service models are loaded once for all the sessions below (the S3 model alone takes a good
# part of a second to parse); each session still reads today's environment and config file.
_LOADER = botocore.loaders.create_loader()


def boto3_client(service: str = "sagemaker-runtime", **kwargs: Any) -> Any:
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core).client(service, **KEYS, **kwargs)


# ------------------------------------------------------------------------------------- regions

REGION_CASES = [
    # (environment, config file, region_name argument)
    ({"AWS_REGION": "eu-central-1"}, "", None),
    ({"AWS_DEFAULT_REGION": "ap-northeast-1"}, "", None),
    ({"AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "ap-northeast-1"}, "", None),
    ({"AWS_REGION": "eu-central-1"}, "[default]\nregion = eu-west-3\n", None),
    ({"AWS_DEFAULT_REGION": "us-west-1"}, "[default]\nregion = eu-west-3\n", None),
    ({}, "[default]\nregion = eu-west-3\n", None),
    (
        {"AWS_PROFILE": "dev"},
        "[default]\nregion = eu-west-3\n[profile dev]\nregion = sa-east-1\n",
        None,
    ),
    ({"AWS_DEFAULT_REGION": "us-west-1"}, "[default]\nregion = eu-west-3\n", "ca-central-1"),
    ({}, "", None),
]


@pytest.mark.parametrize(("env", "file", "argument"), REGION_CASES)
def test_region_precedence_is_botocores(
    env: dict[str, str],
    file: str,
    argument: str | None,
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config.write_text(file)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        expected: str | None = boto3_client(region_name=argument).meta.region_name
    except botocore.exceptions.NoRegionError:
        expected = None
    if expected is None:
        with pytest.raises(NoRegionError):
            SageMakerRuntimeClient(argument, **KEYS)
    else:
        assert SageMakerRuntimeClient(argument, **KEYS).region_name == expected


# ------------------------------------------------------------------------------------- retries

RETRY_CASES = [
    ({}, ""),
    ({"AWS_MAX_ATTEMPTS": "7"}, ""),
    ({"AWS_RETRY_MODE": "standard"}, ""),
    ({"AWS_RETRY_MODE": "legacy"}, ""),
    ({"AWS_RETRY_MODE": "adaptive"}, ""),
    ({"AWS_RETRY_MODE": "adaptive", "AWS_MAX_ATTEMPTS": "2"}, ""),
    ({}, "[default]\nmax_attempts = 4\nretry_mode = standard\n"),
    ({}, "[default]\nretry_mode = adaptive\n"),
    ({"AWS_MAX_ATTEMPTS": "6"}, "[default]\nmax_attempts = 4\n"),
    ({"AWS_RETRY_MODE": "standard"}, "[default]\nretry_mode = adaptive\n"),
]


@pytest.mark.parametrize(("env", "file"), RETRY_CASES)
def test_retry_settings_like_boto3(
    env: dict[str, str], file: str, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text(file)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    retries = boto3_client(region_name="us-east-1").meta.config.retries
    policy = SageMakerRuntimeClient("us-east-1", **KEYS).retry_policy
    if not env and not file:
        assert policy == RetryPolicy()  # nothing configured: the library's own default
        return
    assert policy.mode == retries["mode"]
    defaults = {"legacy": 5, "standard": 3, "adaptive": 3}
    assert policy.max_attempts == retries.get("total_max_attempts", defaults[retries["mode"]])


def test_explicit_retry_settings_win(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text("[default]\nmax_attempts = 4\nretry_mode = legacy\n")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "9")
    explicit = RetryPolicy(max_attempts=2)
    assert SageMakerRuntimeClient("us-east-1", retry_policy=explicit, **KEYS).retry_policy is (
        explicit
    )
    policy = SageMakerRuntimeClient(
        "us-east-1", retry_mode="adaptive", max_attempts=1, **KEYS
    ).retry_policy
    assert (policy.mode, policy.max_attempts) == ("adaptive", 1)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"AWS_RETRY_MODE": "sometimes"}, "retry_mode"),
        ({"AWS_MAX_ATTEMPTS": "three"}, "max_attempts"),
    ],
)
def test_invalid_retry_settings_are_refused_like_boto3(
    env: dict[str, str], field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(Exception):  # noqa: B017 - boto3 raises several botocore types
        boto3_client(region_name="us-east-1")
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1", **KEYS)
    assert info.value.field == field


# ---------------------------------------------------------------------------------- User-Agent


def boto3_user_agent(**config: Any) -> str:
    client = boto3_client(
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=botocore.config.Config(**config),
    )
    seen: list[str] = []

    class Stop(Exception):
        pass

    def capture(request: Any, **_: Any) -> None:
        seen.append(request.headers["User-Agent"].decode())
        raise Stop

    client.meta.events.register("before-send", capture)
    with pytest.raises(Stop):
        client.invoke_endpoint(EndpointName="e", Body=b"x")
    client.close()
    return seen[0]


def app_id(agent: str) -> str | None:
    match = re.search(r"(?:^| )app/(\S+)", agent)
    return match.group(1) if match else None


@pytest.mark.parametrize("source", ["env", "config"])
async def test_app_id_like_boto3(
    source: str, config: Path, monkeypatch: pytest.MonkeyPatch, scripted_server: Any
) -> None:
    if source == "env":
        monkeypatch.setenv("AWS_SDK_UA_APP_ID", "billing team/v2")
    else:
        await asyncio.to_thread(config.write_text, "[default]\nsdk_ua_app_id = billing team/v2\n")
    async with SageMakerRuntimeClient(
        "us-east-1", endpoint_url=scripted_server.url, **KEYS
    ) as client:
        await client.invoke_endpoint(endpoint_name="e", body=b"x")
    ours = scripted_server.received[-1].headers["User-Agent"]
    assert app_id(ours) == app_id(boto3_user_agent()) == "billing-team-v2"
    assert ours.startswith("sagemaker-rt-aio/")


async def test_user_agent_extra_and_explicit_app_id(
    monkeypatch: pytest.MonkeyPatch, scripted_server: Any
) -> None:
    monkeypatch.setenv("AWS_SDK_UA_APP_ID", "from-env")
    async with SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=scripted_server.url,
        sdk_ua_app_id="mine",
        user_agent_extra="batch-job/1.2",
        **KEYS,
    ) as client:
        await client.invoke_endpoint(endpoint_name="e", body=b"x")
    agent = scripted_server.received[-1].headers["User-Agent"]
    assert app_id(agent) == "mine"
    assert agent.endswith(" batch-job/1.2")
    theirs = boto3_user_agent(user_agent_appid="mine", user_agent_extra="batch-job/1.2")
    assert app_id(theirs) == "mine" and theirs.endswith(" batch-job/1.2")


async def test_user_agent_of_a_middleware_or_session_is_kept(scripted_server: Any) -> None:
    async def brand(request: HttpRequest, call_next: Any) -> HttpResponse:
        request.headers["user-agent"] = "my-gateway/3"
        response: HttpResponse = await call_next(request)
        return response

    async with SageMakerRuntimeClient(
        "us-east-1", endpoint_url=scripted_server.url, middlewares=[brand], **KEYS
    ) as client:
        await client.invoke_endpoint(endpoint_name="e", body=b"x")
    assert scripted_server.received[-1].headers.getall("User-Agent") == ["my-gateway/3"]

    session = aiohttp.ClientSession(headers={"User-Agent": "session-default/1"})
    async with (
        session,
        SageMakerRuntimeClient(
            "us-east-1", endpoint_url=scripted_server.url, http_session=session, **KEYS
        ) as client,
    ):
        await client.invoke_endpoint(endpoint_name="e", body=b"x")
    assert scripted_server.received[-1].headers.getall("User-Agent") == ["session-default/1"]


async def test_unsigned_headers_go_once_on_every_path(scripted_server: Any) -> None:
    """The client's own session sends User-Agent and Accept-Encoding as its default headers;
    a session of yours gets them per request. Either way, once each, with or without a
    middleware, and never signed."""

    async def passing(request: HttpRequest, call_next: Any) -> HttpResponse:
        response: HttpResponse = await call_next(request)
        return response

    def sent() -> Any:
        headers = scripted_server.received[-1].headers
        agents = headers.getall("User-Agent")
        assert len(agents) == 1 and agents[0].startswith("sagemaker-rt-aio/")
        assert headers.getall("Accept-Encoding") == ["identity"]
        signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
        assert "user-agent" not in signed and "accept-encoding" not in signed
        return agents[0]

    agents = []
    for middlewares in ([], [passing]):
        async with SageMakerRuntimeClient(
            "us-east-1", endpoint_url=scripted_server.url, middlewares=middlewares, **KEYS
        ) as client:
            await client.invoke_endpoint(endpoint_name="e", body=b"x")
            agents.append(sent())
            # A deadline takes a stream off the flat path (the middleware's path, without one).
            bounded = client.with_options(timeout=aiohttp.ClientTimeout(total=5))
            async with bounded.invoke_endpoint_with_response_stream(endpoint_name="e", body=b"x"):
                agents.append(sent())
        async with (
            aiohttp.ClientSession() as session,
            SageMakerRuntimeClient(
                "us-east-1",
                endpoint_url=scripted_server.url,
                middlewares=middlewares,
                http_session=session,
                **KEYS,
            ) as client,
        ):
            await client.invoke_endpoint(endpoint_name="e", body=b"x")
            agents.append(sent())
    assert len(set(agents)) == 1


# --------------------------------------------------------------------------------- S3 endpoint


class _Stop(Exception):
    pass


def boto3_s3_url(bucket: str, key: str, **client_kwargs: Any) -> str:
    client = boto3_client("s3", **client_kwargs)

    def capture(request: Any, **_: Any) -> None:
        raise _Stop(request.url)

    client.meta.events.register("before-send", capture)
    try:
        client.head_object(Bucket=bucket, Key=key)
    except _Stop as stop:
        return str(stop)
    finally:
        client.close()
    raise AssertionError("boto3 sent nothing")


S3_CASES = [
    # (region, environment, config file)
    ("us-east-1", {}, ""),
    ("eu-west-1", {}, ""),
    ("us-east-1", {}, "[default]\ns3 =\n  us_east_1_regional_endpoint = regional\n"),
    ("eu-west-1", {"AWS_USE_FIPS_ENDPOINT": "true"}, ""),
    ("us-gov-west-1", {"AWS_USE_FIPS_ENDPOINT": "true"}, ""),
    ("eu-west-1", {"AWS_USE_DUALSTACK_ENDPOINT": "true"}, ""),
    ("cn-north-1", {"AWS_USE_DUALSTACK_ENDPOINT": "true"}, ""),
    ("eu-west-1", {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"}, ""),
    ("eu-west-1", {}, "[default]\nuse_fips_endpoint = true\n"),
    ("eu-west-1", {}, "[default]\ns3 =\n  use_dualstack_endpoint = true\n"),
    ("eu-west-1", {}, "[default]\ns3 =\n  addressing_style = path\n"),
    ("eu-west-1", {}, "[default]\ns3 =\n  addressing_style = virtual\n"),
    ("eu-west-1", {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"}, ""),
    (
        "eu-west-1",
        {"AWS_ENDPOINT_URL_S3": "https://bucket.vpce-1a2b.s3.eu-west-1.vpce.amazonaws.com"},
        "",
    ),
    (
        "eu-west-1",
        {"AWS_ENDPOINT_URL_S3": "https://vpce-1a2b.s3.eu-west-1.vpce.amazonaws.com"},
        "[default]\ns3 =\n  addressing_style = virtual\n",
    ),
    ("eu-west-1", {"AWS_ENDPOINT_URL": "http://localhost:4566/base"}, ""),
    (
        "eu-west-1",
        {},
        "[default]\nservices = local\n[services local]\ns3 =\n  endpoint_url = http://127.0.0.1:9100\n",
    ),
    (
        "eu-west-1",
        {
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        },
        "",
    ),
    (
        "eu-west-1",
        {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000", "AWS_USE_FIPS_ENDPOINT": "true"},
        "",
    ),
]


@pytest.mark.parametrize(("region", "env", "file"), S3_CASES)
@pytest.mark.parametrize("bucket", ["results-bucket", "dotted.bucket.name"])
def test_s3_endpoint_like_boto3(
    region: str,
    env: dict[str, str],
    file: str,
    bucket: str,
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config.write_text(file)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    key = "async/out put/1.json"
    expected = boto3_s3_url(bucket, key, region_name=region)
    endpoint = resolve_s3_endpoint(
        botocore.session.Session(),
        region=region,
        endpoint_url=None,
        use_fips=None,
        use_dual_stack=None,
        allow_http=False,
    )
    assert str(endpoint.object_url(bucket, key)) == expected


def test_s3_endpoint_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    endpoint = resolve_s3_endpoint(
        botocore.session.Session(),
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:7000",
        use_fips=None,
        use_dual_stack=None,
        allow_http=False,
    )
    assert str(endpoint.object_url("b-1", "k")) == "http://127.0.0.1:7000/b-1/k"


async def echo(invocation: Invocation) -> bytes:
    return b"echo:" + invocation.body


async def test_waiter_follows_aws_endpoint_url_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case: AWS_ENDPOINT_URL_S3 points at an emulator; the waiter polls it, not S3."""
    async with LocalRuntime() as runtime:
        runtime.add_endpoint("echo", echo)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", runtime.url)
        async with SageMakerRuntimeClient("us-east-1", endpoint_url=runtime.url, **KEYS) as c:
            output = await c.invoke_endpoint_async_and_wait(
                endpoint_name="echo", body=b"q", content_type="text/plain", timeout=10,
                poll_interval=0.01,
            )  # fmt: skip
    assert output == b"echo:q"


def test_every_constructor_parameter_is_documented() -> None:
    """help(SageMakerRuntimeClient) shows the class docstring: each parameter must be in it."""
    import inspect

    doc = SageMakerRuntimeClient.__doc__ or ""
    names = [n for n in inspect.signature(SageMakerRuntimeClient).parameters if n != "self"]
    missing = [name for name in names if f"``{name}``" not in doc]
    assert not missing, f"undocumented constructor parameters: {missing}"


@pytest.mark.parametrize("region", ["us-east-1", "us-east-1-fips", "eu-west-1", "cn-north-1"])
@pytest.mark.parametrize("use_fips", [None, True, False])
@pytest.mark.parametrize("use_dual_stack", [None, True])
def test_s3_endpoint_made_on_first_use_is_the_one_resolved_from_an_unconfigured_session(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    region: str,
    use_fips: bool | None,
    use_dual_stack: bool | None,
) -> None:
    # With nothing configured, the client makes its S3 endpoint from its arguments when the
    # async-result helpers first need it (not importing _s3_endpoint before): the same endpoint.
    from sagemaker_rt_aio._botocore_session import LazySession
    from sagemaker_rt_aio._settings import _lazy_s3_endpoint

    for name in list(os.environ):
        if name.startswith(("AWS_", "BOTOCORE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing"))
    session: Any = LazySession(None)
    assert session.unconfigured()
    arguments: dict[str, Any] = dict(
        region=region, use_fips=use_fips, use_dual_stack=use_dual_stack, allow_http=False
    )
    lazy = _lazy_s3_endpoint(session, endpoint_url=None, **arguments)
    assert isinstance(lazy, functools.partial)  # not resolved yet
    assert lazy() == resolve_s3_endpoint(session, endpoint_url=None, **arguments)
    assert not session.created
