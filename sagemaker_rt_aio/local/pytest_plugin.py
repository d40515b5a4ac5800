"""pytest plugin: the ``sagemaker_local_runtime`` fixture (needs pytest-asyncio).

Registered as a ``pytest11`` entry point, or load it with
``pytest_plugins = ["sagemaker_rt_aio.local.pytest_plugin"]`` / ``-p sagemaker_rt_aio.local.pytest_plugin``.

``sagemaker_local_runtime`` yields a started :class:`~sagemaker_rt_aio.local.LocalRuntime` and stops
it after the test. Override the ``sagemaker_local_runtime_options`` fixture (a dict of
``LocalRuntime`` keyword arguments) to configure it, e.g. with credentials::

    @pytest.fixture
    def sagemaker_local_runtime_options():
        return {"credentials": botocore.credentials.Credentials("AKID", "SECRET")}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import pytest

from ._runtime import LocalRuntime

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - loading the plugin must never break a pytest run
    pytest_asyncio = None  # type: ignore[assignment,unused-ignore]

F = TypeVar("F", bound=Callable[..., Any])


def _async_fixture(function: F) -> F:
    # Without pytest-asyncio, pytest itself reports that the async fixture needs a plugin.
    decorator: Any = pytest.fixture if pytest_asyncio is None else pytest_asyncio.fixture
    return cast(F, decorator(function))


@_async_fixture
async def sagemaker_local_runtime(
    sagemaker_local_runtime_options: dict[str, Any],
) -> AsyncIterator[LocalRuntime]:
    """A started ``LocalRuntime`` on 127.0.0.1 (a free port), stopped after the test."""
    async with LocalRuntime(**sagemaker_local_runtime_options) as runtime:
        yield runtime


@pytest.fixture
def sagemaker_local_runtime_options() -> dict[str, Any]:
    """Keyword arguments for the ``sagemaker_local_runtime`` fixture's ``LocalRuntime``."""
    return {}
