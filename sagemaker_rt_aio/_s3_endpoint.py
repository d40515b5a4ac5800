"""Where the async-result waiter's S3 requests go, decided as boto3's S3 client decides it.

Inputs (read once per client by ``_config.resolve_s3_endpoint``): the client's ``s3_endpoint_url``,
else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` / the profile's ``services`` section (``s3 =
endpoint_url = ...``) / its ``endpoint_url``; FIPS (``use_fips_endpoint``) and dual-stack
(``use_dualstack_endpoint``, also in the profile's ``s3`` section); ``s3.addressing_style``
(``auto``, ``virtual``, ``path``) and ``s3.us_east_1_regional_endpoint``.

What boto3 (botocore 1.43) does with them, checked against it in the tests:

- AWS endpoints: ``s3.{region}``, ``s3-fips.{region}``, ``s3.dualstack.{region}``,
  ``s3-fips.dualstack.{region}`` under the partition's DNS suffix; in ``us-east-1`` the global
  ``s3.amazonaws.com`` unless ``us_east_1_regional_endpoint = regional``.
- Virtual-hosted style (``bucket.s3...``) for DNS-compatible bucket names without dots, path style
  otherwise and with ``addressing_style = path``.
- A custom endpoint (an emulator, a VPC endpoint) is used as given, path style, unless
  ``addressing_style = virtual`` asks for ``bucket.{host}`` (not for an IP address); FIPS and
  dual-stack do not change it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import quote

from yarl import URL

from ._endpoints import partition_of

ADDRESSING_STYLES = ("auto", "virtual", "path")

# botocore's isVirtualHostableS3Bucket without dots: 3-63 lower-case letters, digits, hyphens.
# Compiled (and cached by ``re``) on the first S3 request, not on import: most clients make none.
_VIRTUAL_BUCKET = r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"


class S3Endpoint(NamedTuple):  # a NamedTuple: a frozen dataclass costs ~0.3 ms on import
    """The resolved S3 endpoint of one client."""

    url: URL  # the base URL: regional or custom
    custom: bool = False
    addressing_style: str = "auto"

    def object_url(self, bucket: str, key: str) -> URL:
        """The URL of an object, percent-encoded as it goes on the wire."""
        path_key = quote(key, safe="/~")
        base = self.url
        host = base.raw_host or ""
        if self._virtual(bucket, host):
            return URL.build(
                scheme=base.scheme,
                host=f"{bucket}.{host}",
                port=base.explicit_port,
                path=f"{base.raw_path.rstrip('/')}/{path_key}",
                encoded=True,
            )
        return base.with_path(f"{base.raw_path.rstrip('/')}/{bucket}/{path_key}", encoded=True)

    def _virtual(self, bucket: str, host: str) -> bool:
        if self.addressing_style == "path" or not re.fullmatch(_VIRTUAL_BUCKET, bucket):
            return False
        if self.custom:
            return self.addressing_style == "virtual" and not _is_ip(host)
        return True


def aws_s3_url(
    region: str, *, fips: bool = False, dual_stack: bool = False, us_east_1_regional: bool = False
) -> URL:
    """The regional S3 endpoint of the S3 rule set for ``region``."""
    suffix = partition_of(region).dns_suffix
    name = "s3-fips" if fips else "s3"
    if dual_stack:
        return URL(f"https://{name}.dualstack.{region}.{suffix}")
    if region == "us-east-1" and not fips and not us_east_1_regional:
        return URL(f"https://s3.{suffix}")
    return URL(f"https://{name}.{region}.{suffix}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
