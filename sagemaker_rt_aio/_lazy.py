"""Module attributes loaded on first access (PEP 562), for names whose modules most clients never
need: importing them all would make ``import sagemaker_rt_aio`` dearer for everyone."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(namespace: dict[str, Any], lazy: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``lazy[name]`` (a module relative to the package of
    ``namespace``, the module's ``globals()``) on first access to ``name``, and keeps the value in
    the module, so that later lookups skip it."""

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(module, namespace["__package__"]), name)
        namespace[name] = value
        return value

    return __getattr__
