"""The User-Agent header, built once per client the way botocore builds its app id and extras.

``sagemaker-rt-aio/<version> md/aiohttp#<version> lang/python#<version> [cfg/retry-mode#<mode>]
[app/<id>] [<user_agent_extra>]``. The app id comes from ``sdk_ua_app_id=``, else
``AWS_SDK_UA_APP_ID`` / ``sdk_ua_app_id`` in the profile; characters botocore would not send are
replaced by ``-`` as botocore replaces them. A User-Agent that a middleware sets on a request, or
that the caller's own session sends by default, is left as it is.
"""

from __future__ import annotations

import platform
import string
from collections.abc import Mapping

import aiohttp

from ._constants import USER_AGENT

# botocore/useragent.py _USERAGENT_ALLOWED_CHARACTERS ("#" allowed in app ids and values).
_ALLOWED = frozenset(string.ascii_letters + string.digits + "!$%&'*+-.^_`|~,#")


def sanitize(component: str) -> str:
    return "".join(c if c in _ALLOWED else "-" for c in component)


def user_agent(
    *, app_id: str | None = None, extra: str | None = None, retry_mode: str | None = None
) -> str:
    parts = [
        USER_AGENT,
        f"md/aiohttp#{sanitize(aiohttp.__version__)}",
        f"lang/python#{sanitize(platform.python_version())}",
    ]
    if retry_mode:
        parts.append(f"cfg/retry-mode#{sanitize(retry_mode)}")
    if app_id:
        parts.append(f"app/{sanitize(app_id)}")
    if extra:
        parts.append(extra)  # botocore appends user_agent_extra as given
    return " ".join(parts)


def unsigned_headers(
    defaults: Mapping[str, str], agent: str, session_headers: Mapping[str, str] | None
) -> dict[str, str]:
    """The unsigned headers a client adds to each request: ``defaults`` with its User-Agent,
    or without any when the caller's session sends its own (a request's header would win)."""
    headers = dict(defaults)
    if session_headers is not None and "User-Agent" in session_headers:
        headers.pop("User-Agent", None)
    else:
        headers["User-Agent"] = agent
    return headers


def add_unsigned(headers: dict[str, str], unsigned: Mapping[str, str]) -> None:
    """Add ``unsigned`` to a request's headers without replacing one a middleware set (in any
    letter case)."""
    if not unsigned:  # the client's own session sends them as its default headers
        return
    present = {name.lower() for name in headers}
    for name, value in unsigned.items():
        if name.lower() not in present:
            headers[name] = value
