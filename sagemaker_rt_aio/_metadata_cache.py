"""``get_cached_response_metadata``'s store: the Java SDK's feature, without pinning memory.

Entries are keyed by a weak reference to the request object, so a request (and its body, up to
6 MiB) is freed as soon as its caller drops it; an entry also expires after ``ttl`` seconds, and
the oldest go first past ``maxsize``. Only the small ``ResponseMetadata`` is held strongly.

A plain dict keyed by ``weakref.ref`` rather than ``weakref.WeakKeyDictionary``: every call made
with a request object stores here, and the dictionary's Python methods (a lookup, a length and a
store per call, then its removal callback when the request goes) cost about twice what this
does (``put``: 0.5 µs against 1.0 µs, the request's freeing included). A reference hashes and
compares as its request does while the request lives (our requests: by identity), and keeps that
hash after, which is how the callback finds a dead request's entry.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

from ._types import ResponseMetadata

_ref = weakref.ref


class MetadataCache:
    def __init__(
        self, *, maxsize: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._maxsize = maxsize
        self._ttl = ttl
        self._clock = clock
        # Insertion-ordered: the first entry is the oldest.
        self._entries: dict[weakref.ref[object], tuple[float, ResponseMetadata]] = {}
        # The callback refers to the cache weakly, as WeakKeyDictionary's does: a strong one
        # would close a cycle (cache, entries, reference, callback) that only the garbage
        # collector frees.
        this = _ref(self)

        def forget(key: weakref.ref[object]) -> None:  # the request went
            cache = this()
            if cache is not None:
                cache._entries.pop(key, None)

        self._forget = forget

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, request: object, metadata: ResponseMetadata) -> None:
        maxsize = self._maxsize
        if maxsize <= 0:
            return
        entries = self._entries
        key = _ref(request, self._forget)
        if entries.pop(key, None) is None:  # a new entry: room made for it
            while len(entries) >= maxsize:
                # The iterator is an allocation, which may start a collection (at once, or on
                # Python 3.12+ at the next call) that frees cached requests and so removes their
                # entries (forget), all of them at times: then look again.
                try:
                    oldest = next(iter(entries))
                except (StopIteration, RuntimeError):  # emptied, or changed under the iterator
                    continue
                entries.pop(oldest, None)
        entries[key] = (self._clock() + self._ttl, metadata)  # at the end: now the newest

    def get(self, request: object) -> ResponseMetadata | None:
        try:
            key = _ref(request)
            entry = self._entries.get(key)
        except TypeError:  # not weak-referenceable or unhashable: never a request of ours
            return None
        if entry is None:
            return None
        expires, metadata = entry
        if self._clock() >= expires:
            self._entries.pop(key, None)
            return None
        return metadata
