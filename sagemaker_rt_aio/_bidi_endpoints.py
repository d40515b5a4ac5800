"""The HTTP/2 service's endpoint (InvokeEndpointWithBidirectionalStream), as a pure function.

Transcribed from the ``sagemakerruntimehttp2`` endpoint rule set (AWS's Rust SDK's generated
resolver and its tests, reference section 10): the partitions below serve it on port 8443 under
``runtime[-fips].sagemaker``; any other partition gets the generic rules, without a port and with
``runtime.sagemaker-fips`` for FIPS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yarl import URL

from ._config import config_variable
from ._endpoints import check_custom_url, partition_of, service_url, split_fips_region

if TYPE_CHECKING:  # botocore is imported when a session is first used (_botocore_session)
    import botocore.session

PORT_8443_PARTITIONS = frozenset(
    {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-eusc", "aws-iso-f"}
)


def bidirectional_service_url(region: str, *, fips: bool = False, dual_stack: bool = False) -> str:
    """``https://runtime.sagemaker.{region}.{dnsSuffix}:8443`` and its FIPS/dual-stack forms."""
    region, fips_region = split_fips_region(region)
    fips = fips or fips_region
    partition = partition_of(region)
    suffix = partition.dual_stack_dns_suffix if dual_stack else partition.dns_suffix
    if partition.name in PORT_8443_PARTITIONS:
        host = "runtime-fips.sagemaker" if fips else "runtime.sagemaker"
        return f"https://{host}.{region}.{suffix}:8443"
    host = "runtime.sagemaker-fips" if fips else "runtime.sagemaker"
    return f"https://{host}.{region}.{suffix}"


def resolve_bidirectional_url(
    session: botocore.session.Session,
    *,
    region: str,
    base_url: URL,
    bidirectional_endpoint_url: str | None,
    use_fips: bool | None,
    use_dual_stack: bool | None,
    allow_http: bool,
) -> URL:
    """The argument; else, for a client with a custom ``endpoint_url``, that same URL (a proxy or
    emulator may serve both); else the region's HTTP/2 endpoint."""
    if bidirectional_endpoint_url:
        return check_custom_url(
            bidirectional_endpoint_url, field="bidirectional_endpoint_url", allow_http=allow_http
        )
    plain, fips_region = split_fips_region(region)
    if use_fips is None:
        use_fips = bool(config_variable(session, "use_fips_endpoint"))
    if use_dual_stack is None:
        use_dual_stack = bool(config_variable(session, "use_dualstack_endpoint"))
    fips = fips_region or use_fips
    if base_url != URL(service_url(plain, fips=fips, dual_stack=use_dual_stack)):
        return base_url
    return URL(bidirectional_service_url(plain, fips=fips, dual_stack=use_dual_stack))

