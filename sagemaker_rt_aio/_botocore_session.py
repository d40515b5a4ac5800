"""botocore's session, made only when something needs it.

Importing botocore costs about 100 ms and building a session several more, yet a client given a
region, an ``endpoint_url`` and static keys never reads the shared config or runs the credential
chain. ``LazySession`` stands in for ``botocore.session.Session`` and creates the real one (importing
botocore then) on the first attribute anybody reads from it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import botocore.session


class LazySession:
    """Forwards every attribute to a ``botocore.session.Session(profile=...)`` made on first use."""

    __slots__ = ("_profile", "_session")

    def __init__(self, profile: str | None) -> None:
        self._profile = profile
        self._session: botocore.session.Session | None = None

    @property
    def created(self) -> bool:
        return self._session is not None

    def get(self) -> botocore.session.Session:
        if self._session is None:
            import botocore.session

            self._session = botocore.session.Session(profile=self._profile)
        return self._session

    def unconfigured(self) -> bool:
        """True when botocore would only answer its defaults: no session yet, no profile, a
        shared config file that is missing or empty, and no ``AWS_*``/``BOTOCORE_*`` environment
        variable but the credentials and file locations (which no config variable reads)."""
        if self._session is not None or self._profile is not None:
            return False
        if any(
            name.startswith(("AWS_", "BOTOCORE_")) and name not in _NOT_CONFIG
            and name not in _PLAIN_ENV.values()
            for name in os.environ
        ):
            return False
        path = os.environ.get("AWS_CONFIG_FILE") or os.path.join("~", ".aws", "config")
        try:
            return os.stat(os.path.expanduser(path)).st_size == 0
        except OSError:
            return True  # no config file

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __repr__(self) -> str:
        return f"<LazySession profile={self._profile!r} created={self.created}>"


# Environment variables that set no botocore config variable (credentials are read by the chain,
# later, and only when no keys were given).
_NOT_CONFIG = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_EC2_METADATA_DISABLED",
    }
)

# What botocore answers for the variables this package reads when nothing configures them.
UNCONFIGURED_DEFAULTS: dict[str, object] = {
    "region": None,
    "retry_mode": "legacy",
    "max_attempts": None,
    "ca_bundle": None,
    "tcp_keepalive": None,
    "s3": None,
    "use_dualstack_endpoint": None,
    "use_fips_endpoint": None,
    "user_agent_appid": None,
    "ignore_configured_endpoint_urls": None,
}


# Config variables that botocore reads from one environment variable as a plain string (no
# conversion), when no config file or profile sets them: answered from the environment directly.
_PLAIN_ENV = {"ca_bundle": "AWS_CA_BUNDLE", "region": "AWS_DEFAULT_REGION"}


def unconfigured_default(session: object, name: str) -> tuple[bool, object]:
    """(True, what botocore would answer) when ``session`` is a lazy one that nothing but plain
    environment variables configures, so that reading ``name`` needs no botocore; (False, None)
    otherwise."""
    if (
        type(session) is LazySession
        and name in UNCONFIGURED_DEFAULTS
        and session.unconfigured()
    ):
        variable = _PLAIN_ENV.get(name)
        if variable is not None and variable in os.environ:
            return True, os.environ[variable]
        return True, UNCONFIGURED_DEFAULTS[name]
    return False, None


def lazy_session(profile: str | None) -> botocore.session.Session:
    """A stand-in typed as the session it becomes."""
    return cast("botocore.session.Session", LazySession(profile))
