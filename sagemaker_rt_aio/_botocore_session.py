"""botocore's session, made only when something needs it.

Importing botocore costs about 100 ms and building a session several more, yet a client given a
region, an ``endpoint_url`` and static keys never reads the shared config or runs the credential
chain. ``LazySession`` stands in for ``botocore.session.Session`` and creates the real one (importing
botocore then) on the first attribute anybody reads from it.
"""

from __future__ import annotations

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

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __repr__(self) -> str:
        return f"<LazySession profile={self._profile!r} created={self.created}>"


def lazy_session(profile: str | None) -> botocore.session.Session:
    """A stand-in typed as the session it becomes."""
    return cast("botocore.session.Session", LazySession(profile))
