"""Endpoint and region resolution: the rule set's URLs (reference 6.3) for every partition, pseudo
regions, custom endpoints from arguments and environment, the http guard, and region sources; the
URLs and signing regions are checked against botocore's own requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from conftest import Received, ScriptedServer

from sagemaker_rt_aio import (
    ENDPOINT_PREFIX,
    NoRegionError,
    ParamValidationError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
)
from sagemaker_rt_aio._endpoints import partition_of, service_url, split_fips_region

KEYS: dict[str, Any] = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}

# (region, default, FIPS, dual-stack, FIPS + dual-stack): hosts from the reference's table 6.3, and
# for eu-isoe / us-isof dual-stack, what the rule set gives (botocore itself cannot build those).
TABLE: list[tuple[str, str, str, str, str]] = [
    (
        "us-east-1",
        "runtime.sagemaker.us-east-1.amazonaws.com",
        "runtime-fips.sagemaker.us-east-1.amazonaws.com",
        "runtime.sagemaker.us-east-1.api.aws",
        "runtime.sagemaker-fips.us-east-1.api.aws",
    ),
    (
        "eu-west-1",
        "runtime.sagemaker.eu-west-1.amazonaws.com",
        "runtime-fips.sagemaker.eu-west-1.amazonaws.com",
        "runtime.sagemaker.eu-west-1.api.aws",
        "runtime.sagemaker-fips.eu-west-1.api.aws",
    ),
    (
        "cn-north-1",
        "runtime.sagemaker.cn-north-1.amazonaws.com.cn",
        "runtime.sagemaker-fips.cn-north-1.amazonaws.com.cn",
        "runtime.sagemaker.cn-north-1.api.amazonwebservices.com.cn",
        "runtime.sagemaker-fips.cn-north-1.api.amazonwebservices.com.cn",
    ),
    (
        "us-gov-west-1",
        "runtime.sagemaker.us-gov-west-1.amazonaws.com",
        "runtime.sagemaker.us-gov-west-1.amazonaws.com",
        "runtime.sagemaker.us-gov-west-1.api.aws",
        "runtime.sagemaker-fips.us-gov-west-1.api.aws",
    ),
    (
        "us-iso-east-1",
        "runtime.sagemaker.us-iso-east-1.c2s.ic.gov",
        "runtime.sagemaker-fips.us-iso-east-1.c2s.ic.gov",
        "runtime.sagemaker.us-iso-east-1.api.aws.ic.gov",
        "runtime.sagemaker-fips.us-iso-east-1.api.aws.ic.gov",
    ),
    (
        "us-isob-east-1",
        "runtime.sagemaker.us-isob-east-1.sc2s.sgov.gov",
        "runtime.sagemaker-fips.us-isob-east-1.sc2s.sgov.gov",
        "runtime.sagemaker.us-isob-east-1.api.aws.scloud",
        "runtime.sagemaker-fips.us-isob-east-1.api.aws.scloud",
    ),
    (
        "eusc-de-east-1",
        "runtime.sagemaker.eusc-de-east-1.amazonaws.eu",
        "runtime.sagemaker-fips.eusc-de-east-1.amazonaws.eu",
        "runtime.sagemaker.eusc-de-east-1.api.amazonwebservices.eu",
        "runtime.sagemaker-fips.eusc-de-east-1.api.amazonwebservices.eu",
    ),
    (
        "eu-isoe-west-1",
        "runtime.sagemaker.eu-isoe-west-1.cloud.adc-e.uk",
        "runtime.sagemaker-fips.eu-isoe-west-1.cloud.adc-e.uk",
        "runtime.sagemaker.eu-isoe-west-1.api.cloud-aws.adc-e.uk",
        "runtime.sagemaker-fips.eu-isoe-west-1.api.cloud-aws.adc-e.uk",
    ),
    (
        "us-isof-south-1",
        "runtime.sagemaker.us-isof-south-1.csp.hci.ic.gov",
        "runtime.sagemaker-fips.us-isof-south-1.csp.hci.ic.gov",
        "runtime.sagemaker.us-isof-south-1.api.aws.hci.ic.gov",
        "runtime.sagemaker-fips.us-isof-south-1.api.aws.hci.ic.gov",
    ),
    (
        # Unknown regions fall back to the aws partition.
        "foo",
        "runtime.sagemaker.foo.amazonaws.com",
        "runtime-fips.sagemaker.foo.amazonaws.com",
        "runtime.sagemaker.foo.api.aws",
        "runtime.sagemaker-fips.foo.api.aws",
    ),
]
VARIANTS = [(False, False), (True, False), (False, True), (True, True)]
CASES = [
    (row[0], fips, dual, row[1 + i]) for row in TABLE for i, (fips, dual) in enumerate(VARIANTS)
]
CASE_IDS = [f"{r}-{'fips' if f else ''}{'dual' if d else ''}" for r, f, d, _ in CASES]
# Reference 6.3: botocore fails at client creation for dual-stack in these partitions.
BOTOCORE_CANNOT = {"eu-isoe-west-1", "us-isof-south-1"}


@pytest.mark.parametrize(("region", "fips", "dual", "host"), CASES, ids=CASE_IDS)
def test_service_url_table(region: str, fips: bool, dual: bool, host: str) -> None:
    assert service_url(region, fips=fips, dual_stack=dual) == f"https://{host}"


@pytest.mark.parametrize(("region", "fips", "dual", "host"), CASES, ids=CASE_IDS)
def test_client_endpoint_url_table(region: str, fips: bool, dual: bool, host: str) -> None:
    client = SageMakerRuntimeClient(
        region, use_fips_endpoint=fips, use_dualstack_endpoint=dual, **KEYS
    )
    assert client.endpoint_url == f"https://{host}"
    assert client.region_name == region


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("il-central-1", "aws"),
        ("mx-central-1", "aws"),
        ("us-gov-east-1", "aws-us-gov"),
        ("us-iso-west-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("us-isof-east-1", "aws-iso-f"),
        ("eu-isoe-west-1", "aws-iso-e"),
        ("cn-northwest-1", "aws-cn"),
        ("eusc-de-east-1", "aws-eusc"),
        ("eusc-fr-east-1", "aws"),  # the eusc regex only knows "de"
        ("mars-north-1", "aws"),
    ],
)
def test_partition_of(region: str, partition: str) -> None:
    assert partition_of(region).name == partition


def test_endpoint_prefix() -> None:
    assert ENDPOINT_PREFIX == "runtime.sagemaker"


@pytest.mark.parametrize(
    "region", ["US-EAST-1", "us east 1", "us-east-1/../x", "a" * 64, "us_east_1"]
)
def test_invalid_region_names(region: str) -> None:
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient(region, **KEYS)
    assert info.value.field == "region_name"


# -- botocore, the reference implementation ---------------------------------------------------------


class _Stop(Exception):
    pass


def botocore_request(region: str, fips: bool, dual: bool) -> tuple[str, str, str]:
    """(request URL without the operation path, signing region, meta.endpoint_url) of a botocore
    InvokeEndpoint, stopped before it is sent."""
    client = boto3.client(
        "sagemaker-runtime",
        region_name=region,
        config=Config(
            use_fips_endpoint=fips, use_dualstack_endpoint=dual, retries={"max_attempts": 1}
        ),
        **KEYS,
    )
    seen: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> None:
        auth = request.headers["Authorization"]
        seen["url"] = request.url
        seen["auth"] = auth.decode() if isinstance(auth, bytes) else auth
        raise _Stop

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Stop):
        client.invoke_endpoint(EndpointName="ep", Body=b"x")
    url = seen["url"].removesuffix("/endpoints/ep/invocations")
    scope_region = seen["auth"].split("Credential=")[1].split("/")[2]
    return url, scope_region, client.meta.endpoint_url


BOTOCORE_REGIONS = [row[0] for row in TABLE] + [
    "us-east-1-fips",
    "fips-us-gov-west-1",
    "us-gov-west-1-fips",
    "ap-southeast-2",
]


# botocore cannot build a dual-stack client for some partitions (reference 6.3); those URLs are
# checked against the reference table above instead.
BOTOCORE_CASES = [
    pytest.param(region, fips, dual, id=f"{region}-{name}")
    for region in BOTOCORE_REGIONS
    for (fips, dual), name in zip(VARIANTS, ["default", "fips", "dual", "fips-dual"], strict=True)
    if not (dual and split_fips_region(region)[0] in BOTOCORE_CANNOT)
]


@pytest.mark.parametrize(("region", "fips", "dual"), BOTOCORE_CASES)
def test_same_url_and_signing_region_as_botocore(region: str, fips: bool, dual: bool) -> None:
    url, signing_region, meta_url = botocore_request(region, fips, dual)
    client = SageMakerRuntimeClient(
        region, use_fips_endpoint=fips, use_dualstack_endpoint=dual, **KEYS
    )
    # The URL botocore actually sends to (its rule set), and the region it signs for.
    assert client.endpoint_url == url
    assert client.region_name == signing_region
    # meta.endpoint_url comes from botocore's legacy endpoints.json bridge; it agrees everywhere
    # except the iso partitions' dual-stack host, which that bridge gets wrong (api.aws).
    if not (dual and partition_of(client.region_name).name in {"aws-iso", "aws-iso-b"}):
        assert client.endpoint_url == meta_url


# -- FIPS pseudo-regions (reference 6.5) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("pseudo", "region", "url"),
    [
        ("us-east-1-fips", "us-east-1", "https://runtime-fips.sagemaker.us-east-1.amazonaws.com"),
        ("us-west-2-fips", "us-west-2", "https://runtime-fips.sagemaker.us-west-2.amazonaws.com"),
        (
            "fips-us-gov-west-1",
            "us-gov-west-1",
            "https://runtime.sagemaker.us-gov-west-1.amazonaws.com",
        ),
        (
            "us-gov-west-1-fips",
            "us-gov-west-1",
            "https://runtime.sagemaker.us-gov-west-1.amazonaws.com",
        ),
    ],
)
def test_pseudo_regions(pseudo: str, region: str, url: str) -> None:
    client = SageMakerRuntimeClient(pseudo, **KEYS)
    assert client.endpoint_url == url
    assert client.region_name == region


def test_pseudo_region_with_dual_stack() -> None:
    client = SageMakerRuntimeClient("us-east-1-fips", use_dualstack_endpoint=True, **KEYS)
    assert client.endpoint_url == "https://runtime.sagemaker-fips.us-east-1.api.aws"
    assert client.region_name == "us-east-1"


def test_pseudo_region_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "fips-us-gov-west-1")
    client = SageMakerRuntimeClient(**KEYS)
    assert client.region_name == "us-gov-west-1"
    assert client.endpoint_url == "https://runtime.sagemaker.us-gov-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("AWS_USE_FIPS_ENDPOINT", "https://runtime-fips.sagemaker.eu-west-1.amazonaws.com"),
        ("AWS_USE_DUALSTACK_ENDPOINT", "https://runtime.sagemaker.eu-west-1.api.aws"),
    ],
)
def test_fips_and_dual_stack_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str
) -> None:
    monkeypatch.setenv(variable, "true")
    assert SageMakerRuntimeClient("eu-west-1", **KEYS).endpoint_url == url
    monkeypatch.setenv(variable, "false")
    assert SageMakerRuntimeClient("eu-west-1", **KEYS).endpoint_url == (
        "https://runtime.sagemaker.eu-west-1.amazonaws.com"
    )


# -- custom endpoints -------------------------------------------------------------------------------


def test_custom_endpoint_keeps_the_region_for_signing() -> None:
    url = "https://vpce-123.runtime.sagemaker.us-east-1.vpce.amazonaws.com"
    client = SageMakerRuntimeClient("us-east-1", endpoint_url=url, **KEYS)
    assert client.endpoint_url == url
    assert client.region_name == "us-east-1"


def test_env_endpoint_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://global.example.com")
    assert SageMakerRuntimeClient("us-east-1", **KEYS).endpoint_url == "https://global.example.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "https://service.example.com")
    assert SageMakerRuntimeClient("us-east-1", **KEYS).endpoint_url == (
        "https://service.example.com"
    )
    client = SageMakerRuntimeClient("us-east-1", endpoint_url="https://arg.example.com", **KEYS)
    assert client.endpoint_url == "https://arg.example.com"


def verify_signature(received: Received, url: str, region: str, secret: str = "secret") -> None:
    """Recompute the request's SigV4 signature with botocore and compare."""
    authorization = received.headers["Authorization"]
    credential = authorization.split("Credential=")[1].split(",")[0]
    access_key, date, scope_region, service, _ = credential.split("/")
    assert (scope_region, service) == (region, "sagemaker")
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(
        method=received.method,
        url=url + received.raw_path,
        headers={name: received.headers[name] for name in signed},
        data=received.body,
    )
    request.context["timestamp"] = received.headers["X-Amz-Date"]
    token = received.headers.get("X-Amz-Security-Token")
    auth = SigV4Auth(Credentials(access_key, secret, token), "sagemaker", region)
    assert request.context["timestamp"].startswith(date)
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    assert authorization.endswith("Signature=" + auth.signature(string_to_sign, request))


@pytest.mark.parametrize("base", ["/base/", "/base", "/a/b/c/"])
async def test_endpoint_url_with_a_base_path(scripted_server: ScriptedServer, base: str) -> None:
    url = scripted_server.url + base
    async with SageMakerRuntimeClient(
        "us-east-1", endpoint_url=url, retry_policy=RetryPolicy.none(), **KEYS
    ) as client:
        assert client.endpoint_url == url
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        await client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")
    prefix = base.rstrip("/")
    assert [r.raw_path for r in scripted_server.received] == [
        f"{prefix}/endpoints/ep/invocations",
        f"{prefix}/endpoints/ep/async-invocations",
    ]
    for received in scripted_server.received:
        verify_signature(received, scripted_server.url, "us-east-1")
    # The check has teeth: another secret gives another signature.
    with pytest.raises(AssertionError):
        verify_signature(scripted_server.received[0], scripted_server.url, "us-east-1", "other")


async def test_env_endpoint_is_used_for_real_calls(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://unused.invalid")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", scripted_server.url + "/base")
    async with SageMakerRuntimeClient(
        "eu-west-1", retry_policy=RetryPolicy.none(), **KEYS
    ) as client:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    (received,) = scripted_server.received
    assert received.raw_path == "/base/endpoints/ep/invocations"
    verify_signature(received, scripted_server.url, "eu-west-1")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"use_fips_endpoint": True},
        {"use_dualstack_endpoint": True},
        {"use_fips_endpoint": True, "use_dualstack_endpoint": True},
    ],
)
def test_fips_or_dual_stack_with_a_custom_endpoint_is_an_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1", endpoint_url="https://example.com", **kwargs, **KEYS)
    assert info.value.field == "endpoint_url"


def test_fips_pseudo_region_with_a_custom_endpoint_is_an_error() -> None:
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1-fips", endpoint_url="https://example.com", **KEYS)
    assert info.value.field == "endpoint_url"


def test_fips_argument_with_an_env_endpoint_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "https://example.com")
    with pytest.raises(ParamValidationError):
        SageMakerRuntimeClient("us-east-1", use_fips_endpoint=True, **KEYS)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://example.com:8080/base",
        "http://10.0.0.1:8080",
        "http://192.168.1.1",
    ],
)
def test_plain_http_to_a_remote_host_needs_allow_http(url: str) -> None:
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1", endpoint_url=url, **KEYS)
    assert info.value.field == "endpoint_url"
    assert "allow_http" in str(info.value)
    client = SageMakerRuntimeClient("us-east-1", endpoint_url=url, allow_http=True, **KEYS)
    assert client.endpoint_url == url


def test_plain_http_from_the_environment_needs_allow_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://example.com")
    with pytest.raises(ParamValidationError):
        SageMakerRuntimeClient("us-east-1", **KEYS)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost",
        "http://localhost:8080",
        "http://127.0.0.1:1234/base/",
        "http://127.5.5.5",
        "http://[::1]",
        "http://[::1]:8080",
        "http://api.localhost:9000",
        "https://example.com",
        "https://example.com:8443/prefix/",
    ],
)
def test_loopback_http_and_https_are_allowed(url: str) -> None:
    client = SageMakerRuntimeClient("us-east-1", endpoint_url=url, **KEYS)
    assert client.endpoint_url == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com",
        "http://",
        "example.com",
        "https://h/?q=1",
        "https://h/#frag",
        "unix:///x",
    ],
)
def test_malformed_custom_endpoints(url: str) -> None:
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1", endpoint_url=url, **KEYS)
    assert info.value.field == "endpoint_url"


# -- regions ----------------------------------------------------------------------------------------


def test_no_region_anywhere() -> None:
    with pytest.raises(NoRegionError) as info:
        SageMakerRuntimeClient(**KEYS)
    assert isinstance(info.value, SageMakerRuntimeError)
    text = str(info.value)
    for hint in ("region_name", "AWS_REGION", "AWS_DEFAULT_REGION"):
        assert hint in text


def test_no_region_with_an_empty_region_argument() -> None:
    with pytest.raises(NoRegionError):
        SageMakerRuntimeClient("", **KEYS)


def test_aws_region_alone_is_not_a_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore 1.43 reads AWS_DEFAULT_REGION only (tests/test_settings.py compares with boto3).
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    with pytest.raises(NoRegionError):
        SageMakerRuntimeClient(**KEYS)


def test_region_from_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    assert SageMakerRuntimeClient(**KEYS).region_name == "ap-northeast-1"


def test_region_precedence(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")
    # The environment beats the profile, as in botocore.
    assert SageMakerRuntimeClient(profile_name="dev", **KEYS).region_name == "us-west-1"
    monkeypatch.setenv("AWS_REGION", "us-west-2")  # not read by botocore
    assert SageMakerRuntimeClient(profile_name="dev", **KEYS).region_name == "us-west-1"
    assert SageMakerRuntimeClient("sa-east-1", profile_name="dev", **KEYS).region_name == (
        "sa-east-1"
    )


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "config"
    path.write_text(
        "[default]\nregion = eu-west-3\n\n"
        "[profile dev]\nregion = ap-south-1\n\n"
        "[profile fips]\nregion = us-east-1-fips\n\n"
        "[profile noregion]\noutput = json\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    yield path


def test_region_from_a_named_profile(config_file: Path) -> None:
    client = SageMakerRuntimeClient(profile_name="dev", **KEYS)
    assert client.region_name == "ap-south-1"
    assert client.endpoint_url == "https://runtime.sagemaker.ap-south-1.amazonaws.com"


def test_region_from_the_default_profile(config_file: Path) -> None:
    assert SageMakerRuntimeClient(**KEYS).region_name == "eu-west-3"


def test_region_from_aws_profile(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert SageMakerRuntimeClient(**KEYS).region_name == "ap-south-1"


def test_pseudo_region_from_a_profile(config_file: Path) -> None:
    client = SageMakerRuntimeClient(profile_name="fips", **KEYS)
    assert client.region_name == "us-east-1"
    assert client.endpoint_url == "https://runtime-fips.sagemaker.us-east-1.amazonaws.com"


def test_profile_without_a_region(config_file: Path) -> None:
    with pytest.raises(NoRegionError):
        SageMakerRuntimeClient(profile_name="noregion", **KEYS)


def test_region_from_a_botocore_session(config_file: Path) -> None:
    session = botocore.session.Session(profile="dev")
    assert SageMakerRuntimeClient(botocore_session=session, **KEYS).region_name == "ap-south-1"
