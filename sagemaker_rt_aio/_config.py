"""Region and endpoint, resolved from arguments and botocore's configuration as boto3 resolves them.

Precedence for the endpoint: the ``endpoint_url`` argument; then, unless
``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` (or ``ignore_configured_endpoint_urls`` in the profile) is
set, ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, ``AWS_ENDPOINT_URL``, the profile's ``services``
section (``sagemaker_runtime = endpoint_url = ...``) and its ``endpoint_url``; then the region's
rule-set URL, with FIPS and dual-stack from the arguments, ``AWS_USE_FIPS_ENDPOINT`` /
``AWS_USE_DUALSTACK_ENDPOINT`` or the profile. Reading the config files happens here, once, when a
client is constructed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from yarl import URL

from ._botocore_session import LazySession, unconfigured_default
from ._endpoints import check_custom_url, service_url, split_fips_region
from ._errors import NoRegionError, ParamValidationError

if TYPE_CHECKING:  # botocore is imported when a session is first used (_botocore_session)
    import botocore.session


def resolve_region(region_name: str | None, session: botocore.session.Session) -> str:
    """The argument, then botocore's own answer: ``AWS_DEFAULT_REGION``, then the profile's
    ``region`` (botocore 1.43 does not read ``AWS_REGION``; asking botocore keeps us in step if a
    later version does)."""
    if region_name:
        return region_name
    configured = config_variable(session, "region")
    if configured:
        return str(configured)
    raise NoRegionError()


def resolve_endpoint(
    session: botocore.session.Session,
    *,
    region: str,
    endpoint_url: str | None,
    use_fips: bool | None,
    use_dual_stack: bool | None,
    allow_http: bool,
) -> tuple[str, URL]:
    """(signing region, base URL) for the client."""
    region, fips_region = split_fips_region(region)
    custom = endpoint_url or configured_endpoint_url(session, "sagemaker-runtime")
    if custom:
        # An explicit request for FIPS or dual-stack cannot be honoured by a custom URL; the same
        # flags set in the environment or profile are ignored for it, so that a test can point a
        # client at a local emulator without editing the developer's settings.
        if fips_region or use_fips or use_dual_stack:
            raise ParamValidationError(
                "endpoint_url", "FIPS and dual-stack endpoints cannot be used with a custom URL"
            )
        return region, check_custom_url(custom, field="endpoint_url", allow_http=allow_http)
    if use_fips is None:
        use_fips = bool(config_variable(session, "use_fips_endpoint"))
    if use_dual_stack is None:
        use_dual_stack = bool(config_variable(session, "use_dualstack_endpoint"))
    return region, URL(service_url(region, fips=fips_region or use_fips, dual_stack=use_dual_stack))


def check_profile(session: botocore.session.Session) -> None:
    """Refuse a missing profile at construction rather than on the first call."""
    import botocore.exceptions

    try:
        session.get_scoped_config()
    except botocore.exceptions.ProfileNotFound as exc:
        raise ParamValidationError("profile_name", str(exc)) from None


def configured_endpoint_url(session: botocore.session.Session, client_name: str) -> str | None:
    """The endpoint URL the environment or config file sets for ``client_name``, as botocore reads it."""
    if isinstance(session, LazySession) and session.unconfigured():
        return None  # no environment variable or config file could name one
    if config_variable(session, "ignore_configured_endpoint_urls"):
        return None
    import botocore.configprovider
    import botocore.exceptions

    try:
        provider = botocore.configprovider.ConfiguredEndpointProvider(
            full_config=session.full_config,
            scoped_config=session.get_scoped_config(),
            client_name=client_name,
            environ=os.environ,
        )
        url = provider.provide()
    except botocore.exceptions.ProfileNotFound as exc:
        raise ParamValidationError("profile_name", str(exc)) from None
    return str(url) if url else None


def is_configured(session: botocore.session.Session, name: str, env_var: str) -> bool:
    """Whether the user set ``name`` (session, environment or profile), not just its default."""
    if unconfigured_default(session, name)[0]:
        return False
    import botocore.exceptions

    try:
        return (
            name in session.instance_variables()
            or bool(os.environ.get(env_var))
            or name in session.get_scoped_config()
        )
    except botocore.exceptions.ProfileNotFound as exc:
        raise ParamValidationError("profile_name", str(exc)) from None


def config_variable(session: botocore.session.Session, name: str) -> object:
    """A botocore configuration variable (instance variable, environment, profile, default)."""
    known, default = unconfigured_default(session, name)
    if known:  # nothing configures it: botocore's default, without importing botocore
        return default
    import botocore.exceptions

    try:
        return session.get_config_variable(name)
    except botocore.exceptions.ProfileNotFound as exc:
        # botocore's own error would escape the library's error tree.
        raise ParamValidationError("profile_name", str(exc)) from None
