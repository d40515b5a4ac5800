"""Endpoint resolution: which URL a region's calls go to, and which region they are signed for.

A transcription of the service's ``endpoint-rule-set-1.json`` and botocore's ``partitions.json``
(botocore's endpoint rule set), as pure functions.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from yarl import URL

from ._errors import ParamValidationError


class Partition(NamedTuple):  # a NamedTuple: a frozen dataclass costs ~0.3 ms to create on import
    name: str
    # Compiled (and cached by ``re``) when a region is first looked up, not on import: a client
    # with an ``endpoint_url`` and nothing configured looks none up until it needs S3 or HTTP/2.
    region_regex: str
    dns_suffix: str
    dual_stack_dns_suffix: str


# Order matters: the first match wins, and "aws" is the fallback for unknown regions.
PARTITIONS = (
    Partition("aws-us-gov", r"^us\-gov\-\w+\-\d+$", "amazonaws.com", "api.aws"),
    Partition("aws-iso-b", r"^us\-isob\-\w+\-\d+$", "sc2s.sgov.gov", "api.aws.scloud"),
    Partition(
        "aws-iso-f", r"^us\-isof\-\w+\-\d+$", "csp.hci.ic.gov", "api.aws.hci.ic.gov"
    ),
    Partition("aws-iso", r"^us\-iso\-\w+\-\d+$", "c2s.ic.gov", "api.aws.ic.gov"),
    Partition(
        "aws-iso-e", r"^eu\-isoe\-\w+\-\d+$", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"
    ),
    Partition(
        "aws-cn", r"^cn\-\w+\-\d+$", "amazonaws.com.cn", "api.amazonwebservices.com.cn"
    ),
    Partition(
        "aws-eusc",
        r"^eusc\-(de)\-\w+\-\d+$",
        "amazonaws.eu",
        "api.amazonwebservices.eu",
    ),
    Partition(
        "aws",
        r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$",
        "amazonaws.com",
        "api.aws",
    ),
)
_AWS = PARTITIONS[-1]

_REGION_RE = re.compile(r"^[a-z0-9-]{1,63}$")


def partition_of(region: str) -> Partition:
    for partition in PARTITIONS:
        if re.match(partition.region_regex, region):
            return partition
    return _AWS


def split_fips_region(region: str) -> tuple[str, bool]:
    """``us-east-1-fips`` and ``fips-us-gov-west-1`` are the plain region with FIPS on (6.5)."""
    if region.startswith("fips-"):
        return region[5:], True
    if region.endswith("-fips"):
        return region[:-5], True
    return region, False


def check_region(region: str) -> None:
    if not _REGION_RE.match(region):
        raise ParamValidationError("region_name", f"{region!r} is not a valid region name")


def service_url(
    region: str, *, prefix: str = "runtime.sagemaker", fips: bool = False, dual_stack: bool = False
) -> str:
    """The rule set's URL for a region (botocore's endpoint rule set)."""
    check_region(region)
    partition = partition_of(region)
    service, _, rest = prefix.partition(".")  # "runtime", "sagemaker"
    if fips and dual_stack:
        return f"https://{prefix}-fips.{region}.{partition.dual_stack_dns_suffix}"
    if fips:
        if partition.name == "aws":
            return f"https://{service}-fips.{rest}.{region}.{partition.dns_suffix}"
        if partition.name == "aws-us-gov":
            return f"https://{prefix}.{region}.{partition.dns_suffix}"
        return f"https://{prefix}-fips.{region}.{partition.dns_suffix}"
    if dual_stack:
        return f"https://{prefix}.{region}.{partition.dual_stack_dns_suffix}"
    return f"https://{prefix}.{region}.{partition.dns_suffix}"


def s3_url(region: str) -> str:
    """The regional S3 endpoint (virtual-hosted requests put the bucket in front of this host)."""
    partition = partition_of(region)
    return f"https://s3.{region}.{partition.dns_suffix}"


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_custom_url(url: str, *, field: str, allow_http: bool) -> URL:
    """Parse a user-given endpoint URL. Plain http is for loopback unless explicitly allowed."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ParamValidationError(field, f"must be an http(s) URL with a host, got {url!r}")
    if parsed.query_string or parsed.fragment:
        raise ParamValidationError(field, "must not have a query string or fragment")
    if parsed.scheme == "http" and not allow_http and not is_loopback(parsed.host):
        raise ParamValidationError(
            field,
            "plain http:// is only used for loopback hosts, since payloads and signatures would "
            "travel in clear; pass allow_http=True to use it anyway",
        )
    return parsed


def host_header(url: URL) -> str:
    """The Host header aiohttp sends for ``url``, which is also what SigV4 signs."""
    host = (url.raw_host or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = url.explicit_port
    if port is not None and port != {"http": 80, "https": 443}.get(url.scheme):
        host = f"{host}:{port}"
    return host
