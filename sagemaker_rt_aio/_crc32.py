"""The event-stream codec's CRC-32: zlib-ng's where it is installed, else the standard library's.

Every event-stream message ends with a CRC-32 of itself, so a response stream computes one per
token. The zlib most Pythons link (1.2 or 1.3) computes it with tables: about 160 ns for a
205-byte token event on our benchmark machine, a fifth of what decoding the event costs.
zlib-ng (the ``speedups`` extra: ``pip install 'sagemaker-rt-aio[speedups]'``) uses the CPU's
carry-less multiply where it has one: about 60 ns (``benchmarks/bench_crc32.py``). Both compute
the same function (``tests/test_crc32.py`` holds them to each other); which one a process uses
is chosen once, when the codec is first imported (with the process's first stream).
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable

__all__ = ["SOURCE", "crc32", "pick"]

# What is tried before the standard library's, in order: (module, the name it is reported by).
ACCELERATED = (("zlib_ng.zlib_ng", "zlib-ng"),)


def pick(
    candidates: tuple[tuple[str, str], ...] = ACCELERATED,
) -> tuple[Callable[..., int], str]:
    """The first of ``candidates`` that imports, as (its ``crc32``, its name); else zlib's.

    Each ``crc32`` is called as zlib's is: ``crc32(data, value=0)``."""
    for module_name, name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # not installed (or built for another platform): the next one
            continue
        crc: Callable[..., int] = module.crc32
        return crc, name
    return zlib.crc32, "zlib"


crc32, SOURCE = pick()
