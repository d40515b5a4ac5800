"""The event-stream codec's CRC-32: zlib-ng's where installed (the ``speedups`` extra, which the
``test`` extra installs), the standard library's otherwise, the same function either way."""

from __future__ import annotations

import importlib.util
import sys
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio import _crc32, _eventstream
from sagemaker_rt_aio._errors import EventStreamError
from sagemaker_rt_aio._eventstream import EventStreamDecoder
from sagemaker_rt_aio._stream import _PAYLOAD_PART
from sagemaker_rt_aio._stream_events import encode_payload_part

ZLIB_NG = importlib.util.find_spec("zlib_ng") is not None


@given(st.binary(max_size=5000), st.integers(min_value=0, max_value=2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_the_chosen_crc32_is_zlibs_function(data: bytes, start: int) -> None:
    # Short and long inputs (zlib-ng takes other code for the shortest than for the rest), from
    # any running value, for each kind of buffer the decoder may hand it.
    expected = zlib.crc32(data, start)
    assert _crc32.crc32(data, start) == expected
    assert _crc32.crc32(bytearray(data), start) == expected
    assert _crc32.crc32(memoryview(data), start) == expected
    assert _crc32.crc32(data) == zlib.crc32(data)


def test_the_codec_uses_the_chosen_crc32() -> None:
    assert vars(_eventstream)["crc32"] is _crc32.crc32


@pytest.mark.skipif(not ZLIB_NG, reason="the speedups extra (zlib-ng) is not installed")
def test_zlib_ng_is_chosen_where_installed() -> None:
    # The test extra installs it: a process that has it must use it.
    from zlib_ng import zlib_ng

    assert (_crc32.crc32, _crc32.SOURCE) == (zlib_ng.crc32, "zlib-ng")


def test_without_an_accelerated_module_zlibs_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes its import raise ImportError, as when it is not installed.
    monkeypatch.setitem(sys.modules, "zlib_ng", None)
    monkeypatch.setitem(sys.modules, "zlib_ng.zlib_ng", None)
    assert _crc32.pick() == (zlib.crc32, "zlib")
    assert _crc32.pick((("no_such_module_here", "x"),)) == (zlib.crc32, "zlib")


def test_the_first_candidate_that_imports_is_chosen() -> None:
    crc, name = _crc32.pick((("no_such_module_here", "x"), ("binascii", "binascii")))
    assert name == "binascii" and crc(b"123456789") == 0xCBF43926  # the CRC-32 check value


def test_a_corrupt_event_among_many_is_caught() -> None:
    # A chunk of many token events, as a fast server writes them, with one byte of one payload
    # changed: the events before it come out, and the damage surfaces as a CRC mismatch.
    payloads = [b'data:{"token": {"text": " w%d"}}\n\n' % i for i in range(50)]
    events = [encode_payload_part(payload) for payload in payloads]
    chunk = bytearray(b"".join(events))
    chunk[sum(map(len, events[:30])) + 100] ^= 0x01  # inside the 31st event's payload
    decoder = EventStreamDecoder(event=_PAYLOAD_PART)
    parts = decoder.feed_events(bytes(chunk))
    assert [part.bytes for part in parts] == payloads[:30]
    assert decoder.error is not None and "CRC mismatch" in str(decoder.error)
    with pytest.raises(EventStreamError):
        decoder.feed_events(b"")
