"""Configuration resolved as boto3 resolves it: profile settings, configured endpoint URLs and the
flag that ignores them; credential failures inside the library's error tree; call-shape rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.credentials import RefreshableCredentials
from conftest import ScriptedServer

from sagemaker_rt_aio import (
    CredentialsError,
    InvokeEndpointRequest,
    ParamValidationError,
    RetryPolicy,
    SageMakerRuntimeClient,
)

KEYS = {"aws_access_key_id": "AKIDCONFIG", "aws_secret_access_key": "config-secret"}


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    return path


def boto3_url(region: str) -> str:
    # A fresh session: boto3.client() would reuse a default session built from an earlier config.
    client = boto3.session.Session().client("sagemaker-runtime", region_name=region, **KEYS)
    return str(client.meta.endpoint_url)


def test_profile_fips_setting_is_honoured_like_boto3(config_file: Path) -> None:
    config_file.write_text("[default]\nuse_fips_endpoint = true\n")
    client = SageMakerRuntimeClient("us-east-1", **KEYS)
    assert client.endpoint_url == "https://runtime-fips.sagemaker.us-east-1.amazonaws.com"
    assert client.endpoint_url == boto3_url("us-east-1")


def test_profile_dual_stack_setting_is_honoured(config_file: Path) -> None:
    config_file.write_text("[default]\nuse_dualstack_endpoint = true\n")
    client = SageMakerRuntimeClient("eu-west-1", **KEYS)
    assert client.endpoint_url == "https://runtime.sagemaker.eu-west-1.api.aws"


def test_services_section_endpoint_url_like_boto3(config_file: Path) -> None:
    config_file.write_text(
        "[default]\nservices = local\n"
        "[services local]\nsagemaker_runtime =\n  endpoint_url = http://127.0.0.1:9911/base\n"
    )
    client = SageMakerRuntimeClient("us-east-1", **KEYS)
    assert client.endpoint_url == "http://127.0.0.1:9911/base"
    assert boto3_url("us-east-1") == "http://127.0.0.1:9911/base"


def test_ignore_configured_endpoint_urls(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("[default]\n")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9912")
    assert SageMakerRuntimeClient("us-east-1", **KEYS).endpoint_url == "http://127.0.0.1:9912"
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    client = SageMakerRuntimeClient("us-east-1", **KEYS)
    assert client.endpoint_url == "https://runtime.sagemaker.us-east-1.amazonaws.com"
    assert client.endpoint_url == boto3_url("us-east-1")


def test_environment_fips_flag_does_not_block_an_explicit_test_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A developer's FIPS setting must not stop a test from pointing a client at an emulator...
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    client = SageMakerRuntimeClient("us-east-1", endpoint_url="http://127.0.0.1:9913", **KEYS)
    assert client.endpoint_url == "http://127.0.0.1:9913"
    # ...but asking for FIPS in the same call as a custom URL is a contradiction.
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient(
            "us-east-1", endpoint_url="http://127.0.0.1:9913", use_fips_endpoint=True, **KEYS
        )
    assert info.value.field == "endpoint_url"


async def test_failed_refresh_is_a_credentials_error(scripted_server: ScriptedServer) -> None:
    def refresh() -> dict[str, str]:
        raise RuntimeError("the identity provider is down")

    expired = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    credentials = RefreshableCredentials.create_from_metadata(
        {"access_key": "AKIDOLD", "secret_key": "old-secret", "token": "t", "expiry_time": expired},
        refresh_using=refresh,
        method="test",
    )
    async with SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=scripted_server.url,
        credentials=credentials,
        retry_policy=RetryPolicy.none(),
    ) as client:
        with pytest.raises(CredentialsError) as info:
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert info.value.__cause__ is not None
    assert "old-secret" not in str(info.value)
    assert scripted_server.received == []


async def test_request_object_and_keywords_are_not_mixed(scripted_server: ScriptedServer) -> None:
    request = InvokeEndpointRequest(endpoint_name="ep", body=b"x")
    async with SageMakerRuntimeClient("us-east-1", endpoint_url=scripted_server.url, **KEYS) as c:
        with pytest.raises(ParamValidationError) as info:
            await c.invoke_endpoint(request, endpoint_name="other")  # type: ignore[call-overload,unused-ignore]
        assert info.value.field == "request"
        with pytest.raises(ParamValidationError):
            c.invoke_endpoint_with_response_stream(request, body=b"y")  # type: ignore[arg-type]
    assert scripted_server.received == []


async def test_a_smaller_body_limit_also_bounds_async_inline_bodies(
    scripted_server: ScriptedServer,
) -> None:
    async with SageMakerRuntimeClient(
        "us-east-1", endpoint_url=scripted_server.url, max_body_bytes=1000, **KEYS
    ) as client:
        with pytest.raises(ParamValidationError) as info:
            await client.invoke_endpoint_async(endpoint_name="ep", body=b"x" * 1001)
        assert info.value.field == "body"
    assert scripted_server.received == []
