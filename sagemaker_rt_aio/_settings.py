"""Client settings that boto3 users configure in the environment or ``~/.aws/config``: retries,
network (proxies, CA bundle, keep-alive), User-Agent app id, and the S3 endpoint.

Each value is read from botocore's config store (``session.get_config_variable``), so that
environment variables and profile keys mean here what they mean to boto3; an explicit argument
always wins. All of it happens once, when a client is constructed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from ._botocore_session import LazySession
from ._config import config_variable, configured_endpoint_url, is_configured
from ._endpoints import check_custom_url, split_fips_region
from ._errors import ParamValidationError
from ._network import ClientCert, Network, StrPath, build_ssl_context, check_keepalive_supported
from ._protocol import UNSIGNED_DEFAULT_HEADERS
from ._retry import RETRY_MODES, RetryPolicy
from ._useragent import unsigned_headers, user_agent

if TYPE_CHECKING:  # botocore is imported when a session is first used (_botocore_session)
    import botocore.session

    from ._ratelimit import ClientRateLimiter
    from ._s3_endpoint import S3Endpoint

# botocore's total attempts per mode when max_attempts is not configured (legacy: _retry.json).
DEFAULT_ATTEMPTS = {"legacy": 5, "standard": 3, "adaptive": 3}


def resolve_retry_policy(
    session: botocore.session.Session,
    *,
    retry_mode: str | None = None,
    max_attempts: int | None = None,
) -> RetryPolicy:
    """The policy for a client given no ``retry_policy``: ``retry_mode``/``AWS_RETRY_MODE``/
    ``retry_mode`` and ``max_attempts``/``AWS_MAX_ATTEMPTS``/``max_attempts`` (total attempts, the
    first included, as in botocore). With none of them set, the library's default policy."""
    mode_set = retry_mode is not None or is_configured(session, "retry_mode", "AWS_RETRY_MODE")
    if max_attempts is None:
        try:
            configured = config_variable(session, "max_attempts")
        except ValueError:  # botocore converts with int(): "three" fails there
            raise ParamValidationError(
                "max_attempts", "AWS_MAX_ATTEMPTS / max_attempts must be an integer"
            ) from None
        max_attempts = int(configured) if configured is not None else None  # type: ignore[call-overload]
    if not mode_set and max_attempts is None:
        return RetryPolicy()
    mode = retry_mode or str(config_variable(session, "retry_mode") or "legacy")
    if mode not in RETRY_MODES:
        raise ParamValidationError("retry_mode", f"must be one of {', '.join(RETRY_MODES)}")
    if max_attempts is None:
        max_attempts = DEFAULT_ATTEMPTS[mode]
    if isinstance(max_attempts, bool) or max_attempts < 1:
        raise ParamValidationError("max_attempts", "counts the first attempt: at least 1")
    return RetryPolicy(max_attempts=max_attempts, mode=mode)


def resolve_network(
    session: botocore.session.Session,
    *,
    verify: bool | StrPath | None,
    ca_bundle: StrPath | None,
    proxies: Mapping[str, str] | None,
    client_cert: ClientCert | None,
    tcp_keepalive: bool | None,
) -> Network:
    """The network settings: arguments first, then ``AWS_CA_BUNDLE``/``ca_bundle`` and
    ``BOTOCORE_TCP_KEEPALIVE``/``tcp_keepalive``; proxies from the environment when not given."""
    if verify is not None and not isinstance(verify, (bool, str, os.PathLike)):
        raise ParamValidationError("verify", "must be True, False or the path of a CA bundle")
    if proxies is not None and not isinstance(proxies, Mapping):
        raise ParamValidationError("proxies", 'must be a mapping like {"https": "http://p:3128"}')
    if ca_bundle is None and verify is None:
        # botocore reads ca_bundle only when verify is not given (botocore/session.py).
        configured = config_variable(session, "ca_bundle")
        ca_bundle = str(configured) if configured else None
    if tcp_keepalive is None:
        tcp_keepalive = bool(config_variable(session, "tcp_keepalive"))
    if tcp_keepalive:
        check_keepalive_supported()
    return Network(
        proxies=proxies,
        ssl_setting=build_ssl_context(verify=verify, ca_bundle=ca_bundle, client_cert=client_cert),
        tcp_keepalive=tcp_keepalive,
    )


def resolve_app_id(session: botocore.session.Session, sdk_ua_app_id: str | None) -> str | None:
    """``sdk_ua_app_id=``, else ``AWS_SDK_UA_APP_ID`` / ``sdk_ua_app_id`` in the profile."""
    if sdk_ua_app_id is not None:
        return sdk_ua_app_id
    configured = config_variable(session, "user_agent_appid")
    return str(configured) if configured else None


def resolve_s3_endpoint(
    session: botocore.session.Session,
    *,
    region: str,
    endpoint_url: str | None,
    use_fips: bool | None,
    use_dual_stack: bool | None,
    allow_http: bool,
) -> S3Endpoint:
    """The waiter's S3 endpoint, from the same inputs boto3's S3 client would use."""
    from ._s3_endpoint import ADDRESSING_STYLES, S3Endpoint, aws_s3_url

    s3_config: Mapping[str, Any] = config_variable(session, "s3") or {}  # type: ignore[assignment]
    style = str(s3_config.get("addressing_style") or "auto")
    if style not in ADDRESSING_STYLES:
        style = "auto"  # botocore ignores an unknown style the same way
    custom = endpoint_url or configured_endpoint_url(session, "s3")
    if custom:
        field = "s3_endpoint_url" if endpoint_url else "AWS_ENDPOINT_URL_S3"
        url = check_custom_url(custom, field=field, allow_http=allow_http)
        return S3Endpoint(url, custom=True, addressing_style=style)
    region, fips_region = split_fips_region(region)
    if use_fips is None:
        use_fips = bool(config_variable(session, "use_fips_endpoint"))
    if use_dual_stack is None:
        use_dual_stack = bool(
            config_variable(session, "use_dualstack_endpoint")
            or s3_config.get("use_dualstack_endpoint")
        )
    regional = str(s3_config.get("us_east_1_regional_endpoint") or "").lower() == "regional"
    if not regional:
        env = os.environ.get("AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "")
        regional = env.lower() == "regional"
    url = aws_s3_url(
        region,
        fips=fips_region or use_fips,
        dual_stack=use_dual_stack,
        us_east_1_regional=regional,
    )
    return S3Endpoint(url, addressing_style=style)


def _regional_s3_endpoint(region: str, use_fips: bool, use_dual_stack: bool) -> S3Endpoint:
    """What ``resolve_s3_endpoint`` answers when nothing is configured (no ``s3_endpoint_url``,
    no environment variable, no config file)."""
    from ._s3_endpoint import S3Endpoint, aws_s3_url

    region, fips_region = split_fips_region(region)
    return S3Endpoint(aws_s3_url(region, fips=fips_region or use_fips, dual_stack=use_dual_stack))


class ClientSettings(NamedTuple):  # a NamedTuple: a frozen dataclass costs ~0.3 ms on import
    """What a client takes from this module, resolved once at construction."""

    network: Network
    s3_endpoint: Callable[[], S3Endpoint]  # for the async-result helpers, on their first use
    retry_policy: RetryPolicy
    rate_limiter: ClientRateLimiter | None  # in adaptive mode
    unsigned_headers: Mapping[str, str]  # User-Agent and Accept-Encoding, added after signing


def _lazy_s3_endpoint(
    session: botocore.session.Session,
    *,
    region: str,
    endpoint_url: str | None,
    use_fips: bool | None,
    use_dual_stack: bool | None,
    allow_http: bool,
) -> Callable[[], S3Endpoint]:
    """The S3 endpoint, resolved now if anything configures it (so that a bad URL is refused at
    construction), else made from the arguments alone on first use: most clients never wait for
    an async result, and ``_s3_endpoint`` is then never imported."""
    if endpoint_url is None and type(session) is LazySession and session.unconfigured():
        return functools.partial(
            _regional_s3_endpoint, region, bool(use_fips), bool(use_dual_stack)
        )
    resolved = resolve_s3_endpoint(
        session,
        region=region,
        endpoint_url=endpoint_url,
        use_fips=use_fips,
        use_dual_stack=use_dual_stack,
        allow_http=allow_http,
    )
    return lambda: resolved


def resolve_client_settings(
    session: botocore.session.Session,
    *,
    region: str,
    allow_http: bool,
    use_fips: bool | None,
    use_dual_stack: bool | None,
    s3_endpoint_url: str | None,
    verify: bool | StrPath | None,
    ca_bundle: StrPath | None,
    proxies: Mapping[str, str] | None,
    client_cert: ClientCert | None,
    tcp_keepalive: bool | None,
    retry_policy: RetryPolicy | None,
    retry_mode: str | None,
    max_attempts: int | None,
    sdk_ua_app_id: str | None,
    user_agent_extra: str | None,
    session_headers: Mapping[str, str] | None,
) -> ClientSettings:
    """Every setting of this module for one client; ``region`` is the region as configured
    (a FIPS pseudo-region included), ``session_headers`` the default headers of the caller's
    aiohttp session, if any."""
    if retry_policy is None:
        retry_policy = resolve_retry_policy(
            session, retry_mode=retry_mode, max_attempts=max_attempts
        )
    rate_limiter = None
    if retry_policy.mode == "adaptive":
        from ._ratelimit import ClientRateLimiter  # only adaptive mode needs it: imported then

        rate_limiter = ClientRateLimiter()
    agent = user_agent(
        app_id=resolve_app_id(session, sdk_ua_app_id),
        extra=user_agent_extra,
        retry_mode=retry_policy.mode,
    )
    return ClientSettings(
        network=resolve_network(
            session,
            verify=verify,
            ca_bundle=ca_bundle,
            proxies=proxies,
            client_cert=client_cert,
            tcp_keepalive=tcp_keepalive,
        ),
        s3_endpoint=_lazy_s3_endpoint(
            session,
            region=region,
            endpoint_url=s3_endpoint_url,
            use_fips=use_fips,
            use_dual_stack=use_dual_stack,
            allow_http=allow_http,
        ),
        retry_policy=retry_policy,
        rate_limiter=rate_limiter,
        unsigned_headers=unsigned_headers(UNSIGNED_DEFAULT_HEADERS, agent, session_headers),
    )
