"""The client's constructor arguments: type checks (a typed error naming the argument, not a crash
later) and the effective timeout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import botocore.credentials
import botocore.session

from ._constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCK_READ_TIMEOUT, default_timeout
from ._errors import ParamValidationError
from ._retry import RetryPolicy


def effective_timeout(timeout: aiohttp.ClientTimeout | None) -> aiohttp.ClientTimeout:
    """``timeout`` with the fields left ``None`` set to their defaults (``sock_read`` 70 s,
    ``sock_connect`` 10 s): ``ClientTimeout(total=30)`` adds a deadline without dropping the read
    timeout that bounds a trickling server."""
    if timeout is None:
        return default_timeout()
    return aiohttp.ClientTimeout(
        total=timeout.total,
        connect=timeout.connect,
        sock_read=timeout.sock_read if timeout.sock_read is not None else DEFAULT_SOCK_READ_TIMEOUT,
        sock_connect=(
            timeout.sock_connect if timeout.sock_connect is not None else DEFAULT_CONNECT_TIMEOUT
        ),
        ceil_threshold=timeout.ceil_threshold,
    )


def _check(name: str, value: Any, types: tuple[type, ...], what: str) -> None:
    if value is None:
        return
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ParamValidationError(name, f"must be {what}, got {type(value).__name__}")


def _positive_number(name: str, value: Any, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamValidationError(name, f"must be a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero) or value != value:
        raise ParamValidationError(name, "must be a positive number")


def _count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamValidationError(name, f"must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ParamValidationError(name, f"must be at least {minimum}")


def check_client_arguments(
    *,
    region_name: Any,
    endpoint_url: Any,
    profile_name: Any,
    aws_access_key_id: Any,
    aws_secret_access_key: Any,
    aws_session_token: Any,
    credentials: Any,
    botocore_session: Any,
    http_session: Any,
    timeout: Any,
    retry_policy: Any,
    max_connections: Any,
    middlewares: Any,
    use_fips_endpoint: Any,
    use_dualstack_endpoint: Any,
    allow_http: Any,
    max_body_bytes: Any,
    metadata_cache_size: Any,
    metadata_cache_ttl: Any,
    s3_endpoint_url: Any,
    max_response_bytes: Any,
) -> None:
    """Raise ``ParamValidationError`` naming the first argument of the wrong type or range."""
    for name, value in (
        ("region_name", region_name),
        ("endpoint_url", endpoint_url),
        ("profile_name", profile_name),
        ("aws_access_key_id", aws_access_key_id),
        ("aws_secret_access_key", aws_secret_access_key),
        ("aws_session_token", aws_session_token),
        ("s3_endpoint_url", s3_endpoint_url),
    ):
        _check(name, value, (str,), "a str")
    _check("credentials", credentials, (botocore.credentials.Credentials,), "botocore Credentials")
    _check("botocore_session", botocore_session, (botocore.session.Session,), "a botocore Session")
    _check("http_session", http_session, (aiohttp.ClientSession,), "an aiohttp.ClientSession")
    _check("timeout", timeout, (aiohttp.ClientTimeout,), "an aiohttp.ClientTimeout")
    _check("retry_policy", retry_policy, (RetryPolicy,), "a RetryPolicy")
    for name, value in (
        ("use_fips_endpoint", use_fips_endpoint),
        ("use_dualstack_endpoint", use_dualstack_endpoint),
        ("allow_http", allow_http),
    ):
        _check(name, value, (bool,), "a bool")
    _count("max_connections", max_connections, 1)
    _count("max_body_bytes", max_body_bytes, 1)
    if max_response_bytes is not None:  # None: no bound (an answer is trusted to be small)
        _count("max_response_bytes", max_response_bytes, 1)
    _count("metadata_cache_size", metadata_cache_size, 0)
    _positive_number("metadata_cache_ttl", metadata_cache_ttl)
    if isinstance(timeout, aiohttp.ClientTimeout):
        for field in ("total", "connect", "sock_read", "sock_connect"):
            value = getattr(timeout, field)
            if value is not None:
                _positive_number(f"timeout.{field}", value)
    if isinstance(middlewares, (str, bytes)) or not isinstance(middlewares, Sequence):
        raise ParamValidationError(
            "middlewares", f"must be a sequence of callables, got {type(middlewares).__name__}"
        )
    for middleware in middlewares:
        if not callable(middleware):
            raise ParamValidationError("middlewares", "every middleware must be callable")
