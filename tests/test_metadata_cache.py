"""The store behind ``get_cached_response_metadata``, on its own: an injected clock, no loop."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator

import pytest

from sagemaker_rt_aio import InvokeEndpointRequest, ResponseMetadata
from sagemaker_rt_aio._metadata_cache import MetadataCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request() -> InvokeEndpointRequest:
    return InvokeEndpointRequest(endpoint_name="ep", body=b"{}")


def metadata(n: int) -> ResponseMetadata:
    return ResponseMetadata(request_id=f"rid-{n}", http_status_code=200, http_headers={})


@pytest.fixture
def no_collections() -> Iterator[None]:
    """What is freed below is freed by reference counts alone: no cycle, nothing left for the
    garbage collector."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_later_put_replaces_and_the_entry_becomes_the_newest() -> None:
    cache = MetadataCache(maxsize=2, ttl=60)
    first, second, third = request(), request(), request()
    cache.put(first, metadata(1))
    cache.put(second, metadata(2))
    cache.put(second, metadata(2))  # full, but a put again takes no room: first stays
    assert cache.get(first) == metadata(1)
    cache.put(first, metadata(3))  # first is now the newest: second goes next
    cache.put(third, metadata(4))
    assert cache.get(second) is None
    assert [cache.get(r) for r in (first, third)] == [metadata(3), metadata(4)]
    assert len(cache) == 2


def test_past_maxsize_the_oldest_go_first() -> None:
    cache = MetadataCache(maxsize=3, ttl=60)
    requests = [request() for _ in range(5)]
    for n, each in enumerate(requests):
        cache.put(each, metadata(n))
    assert [cache.get(r) for r in requests] == [None, None, metadata(2), metadata(3), metadata(4)]


def test_entries_expire_by_the_clock() -> None:
    clock = Clock()
    cache = MetadataCache(maxsize=10, ttl=5, clock=clock)
    kept = request()
    cache.put(kept, metadata(1))
    clock.now += 4.999
    assert cache.get(kept) == metadata(1)
    clock.now += 0.001
    assert cache.get(kept) is None
    assert len(cache) == 0  # an expired entry found is dropped


def test_maxsize_zero_keeps_nothing() -> None:
    cache = MetadataCache(maxsize=0, ttl=60)
    kept = request()
    cache.put(kept, metadata(1))
    assert cache.get(kept) is None and len(cache) == 0


def test_a_request_dropped_by_its_caller_is_freed_and_its_entry_goes(no_collections: None) -> None:
    cache = MetadataCache(maxsize=10, ttl=60)
    dropped, kept = request(), request()
    cache.put(dropped, metadata(1))
    cache.put(kept, metadata(2))
    cache.put(dropped, metadata(3))  # the replaced entry's reference goes without a trace
    gone = weakref.ref(dropped)
    del dropped
    assert gone() is None
    assert len(cache) == 1
    assert cache.get(kept) == metadata(2)


def test_a_cache_dropped_is_freed_with_its_entries(no_collections: None) -> None:
    cache = MetadataCache(maxsize=10, ttl=60)
    kept = request()
    cache.put(kept, metadata(1))
    gone = weakref.ref(cache)
    del cache
    assert gone() is None
    del kept  # its reference went with the cache: nothing is left to call back


def test_equal_looking_requests_are_different_keys() -> None:
    cache = MetadataCache(maxsize=10, ttl=60)
    one, twin = request(), request()
    cache.put(one, metadata(1))
    assert cache.get(twin) is None


class Unhashable:
    """Weak-referenceable, but not hashable: its reference cannot be a key either."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return self is other


@pytest.mark.parametrize(
    "unknown", [object(), "ep", 42, None, [], {"endpoint_name": "ep"}, Unhashable()]
)
def test_what_cannot_be_a_request_has_no_entry(unknown: object) -> None:
    cache = MetadataCache(maxsize=10, ttl=60)
    cache.put(request(), metadata(1))
    assert cache.get(unknown) is None


def test_a_young_collection_that_empties_the_cache_while_put_makes_room_breaks_nothing() -> None:
    """``put`` makes room by dropping its oldest entry, and the iterator it takes to find that
    entry is an allocation that may set off a young collection (at once, or on Python 3.12+ at
    the next call). If that collection frees the very requests the cache holds (ones kept only
    by reference cycles), their callbacks empty the cache under ``put``, which must carry on,
    not raise out of the call that stored (StopIteration, or a dict changed during iteration).
    Where a collection starts depends on what was allocated before, so the test tries a range
    of thresholds and allocations, and checks that some collection did start there."""
    evicting = 0  # collections started inside put, its new entry's reference already made

    def started(phase: str, info: dict[str, int]) -> None:
        nonlocal evicting
        frame = sys._getframe(1)
        if phase == "start" and frame.f_code is MetadataCache.put.__code__:
            evicting += "key" in frame.f_locals

    saved = gc.get_threshold()
    gc.callbacks.append(started)
    try:
        for threshold in range(1, 9):
            for allocations in range(4):
                cache = MetadataCache(maxsize=1, ttl=60)
                gc.collect(0)  # the young generation starts empty, its count at 0
                gc.set_threshold(1000)
                old = request()
                cache.put(old, metadata(1))
                cycle: list[object] = [old]
                cycle.append(cycle)
                del old, cycle  # now garbage that only a collection frees, young
                new = request()
                gc.set_threshold(threshold)
                held = [[] for _ in range(allocations)]
                cache.put(new, metadata(2))
                gc.set_threshold(*saved)
                del held
                assert cache.get(new) == metadata(2) and len(cache) == 1
    finally:
        gc.set_threshold(*saved)
        gc.callbacks.remove(started)
    assert evicting  # the collection did start while put was making room
