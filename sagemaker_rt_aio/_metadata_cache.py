"""``get_cached_response_metadata``'s store: the Java SDK's feature, without pinning memory.

Entries are keyed by a weak reference to the request object, so a request (and its body, up to
6 MiB) is freed as soon as its caller drops it; an entry also expires after ``ttl`` seconds, and
the oldest go first past ``maxsize``. Only the small ``ResponseMetadata`` is held strongly.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

from ._types import ResponseMetadata


class MetadataCache:
    def __init__(
        self, *, maxsize: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._maxsize = maxsize
        self._ttl = ttl
        self._clock = clock
        # insertion-ordered: the first entry is the oldest
        self._entries: weakref.WeakKeyDictionary[object, tuple[float, ResponseMetadata]] = (
            weakref.WeakKeyDictionary()
        )

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, request: object, metadata: ResponseMetadata) -> None:
        if self._maxsize <= 0:
            return
        entries = self._entries
        entries.pop(request, None)  # re-inserted at the end: now the newest
        while len(entries) >= self._maxsize:
            oldest = next(iter(entries.keys()), None)
            if oldest is None:
                break
            del entries[oldest]
        entries[request] = (self._clock() + self._ttl, metadata)

    def get(self, request: object) -> ResponseMetadata | None:
        try:
            entry = self._entries.get(request)
        except TypeError:  # not weak-referenceable or unhashable: never a request of ours
            return None
        if entry is None:
            return None
        expires, metadata = entry
        if self._clock() >= expires:
            self._entries.pop(request, None)
            return None
        return metadata
