"""The server-sent-events decoder against the WHATWG spec's examples and rules, split anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio import EventTooLargeError, LineTooLongError
from sagemaker_rt_aio._sse import ServerSentEvent, SSEDecoder


def decode(data: bytes, cuts: list[int] | None = None, **close: bool) -> list[ServerSentEvent]:
    """Feed ``data`` cut at ``cuts`` (every byte when None), then close."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    points = sorted(set(cuts)) if cuts is not None else list(range(1, len(data)))
    start = 0
    for point in [*points, len(data)]:
        events += decoder.feed(data[start:point])
        start = point
    return events + decoder.close(**close)


def every_split(data: bytes) -> list[list[ServerSentEvent]]:
    """The events for the whole body at once, byte by byte, and for every two-part split."""
    return [decode(data, []), decode(data)] + [decode(data, [i]) for i in range(1, len(data))]


def all_equal(data: bytes, expected: list[ServerSentEvent]) -> None:
    for events in every_split(data):
        assert events == expected


# -- the spec's examples (html.spec.whatwg.org, "9.2.6 Interpreting an event stream") ---------


def test_stock_ticker_example_joins_data_lines() -> None:
    all_equal(b"data: YHOO\ndata: +2\ndata: 10\n\n", [ServerSentEvent("YHOO\n+2\n10")])


def test_comment_and_id_example() -> None:
    stream = (
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n"
    )
    all_equal(
        stream,
        [
            ServerSentEvent("first event", id="1"),
            ServerSentEvent("second event", id=""),  # an empty id resets the last event id
            ServerSentEvent(" third event", id=""),  # only one leading space is removed
        ],
    )


def test_empty_data_example_and_unterminated_last_block_is_discarded() -> None:
    all_equal(b"data\n\ndata\ndata\n\ndata:", [ServerSentEvent(""), ServerSentEvent("\n")])


def test_space_after_colon_example() -> None:
    all_equal(b"data:test\n\ndata: test\n\n", [ServerSentEvent("test"), ServerSentEvent("test")])


# -- the parsing rules -------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending(ending: bytes) -> None:
    stream = ending.join([b"event: add", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    all_equal(stream, [ServerSentEvent("1\n2", "add"), ServerSentEvent("3")])


def test_cr_at_chunk_end_then_lf_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the pair's LF, not a blank line
    assert decoder.feed(b"\r") == [ServerSentEvent("a")]
    assert decoder.feed(b"\ndata: b\r\r") == [ServerSentEvent("b")]


def test_two_crs_are_two_line_endings() -> None:
    all_equal(b"data: x\r\rdata: y\r\r", [ServerSentEvent("x"), ServerSentEvent("y")])


def test_bom_is_dropped_once_even_split() -> None:
    all_equal(b"\xef\xbb\xbfdata: a\n\n", [ServerSentEvent("a")])
    # A second BOM is not at the start of the stream: it is part of the field name.
    all_equal(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n", [ServerSentEvent("b")])


def test_utf8_split_anywhere_and_invalid_bytes_replaced() -> None:
    all_equal("data: café 🚀\n\n".encode(), [ServerSentEvent("café 🚀")])
    all_equal(b"data: \xff\xfe ok\n\n", [ServerSentEvent("\ufffd\ufffd ok")])


def test_event_type_id_retry_and_unknown_fields() -> None:
    stream = b"event: delta\nid: 7\nretry: 1500\nfoo: bar\ndata: x\n\ndata: y\n\n"
    all_equal(
        stream,
        [
            ServerSentEvent("x", "delta", "7", 1500),
            ServerSentEvent("y", "message", "7", None),  # id persists, type and retry do not
        ],
    )


def test_id_with_nul_is_ignored() -> None:
    all_equal(b"id: 1\n\ndata: a\n\nid: 2\x003\ndata: b\n\n", [
        ServerSentEvent("a", id="1"), ServerSentEvent("b", id="1"),
    ])  # fmt: skip


@pytest.mark.parametrize("value", [b"", b"12a", b"  1", b"-5", b"1.5", "\u0661".encode()])
def test_retry_must_be_ascii_digits(value: bytes) -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"retry:" + value + b"\ndata: a\n\n")
    assert events == [ServerSentEvent("a")]
    assert decoder.retry is None


def test_block_without_data_dispatches_nothing_but_keeps_id_and_retry() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 9\nretry: 10\nevent: ping\n\n: comment\n\n") == []
    assert decoder.retry == 10
    assert decoder.last_event_id == "9"
    # The event type of the dataless block does not leak into the next event.
    assert decoder.feed(b"data: z\n\n") == [ServerSentEvent("z", "message", "9")]


def test_field_without_colon_and_colon_in_value() -> None:
    all_equal(b"data\ndata: a:b: c\n\n", [ServerSentEvent("\na:b: c")])


def test_last_event_dispatched_only_when_asked() -> None:
    for stream in (b"data: last\n", b"data: last", b"data: last\r"):
        assert decode(stream) == []
        assert decode(stream, dispatch_incomplete=True) == [ServerSentEvent("last")]
    assert decode(b"", dispatch_incomplete=True) == []
    assert decode(b": only a comment", dispatch_incomplete=True) == []


# -- bounds --------------------------------------------------------------------------------------


def test_a_line_without_end_is_bounded() -> None:
    decoder = SSEDecoder(max_line_bytes=64)
    decoder.feed(b"data: " + b"x" * 50)
    with pytest.raises(LineTooLongError):
        decoder.feed(b"x" * 20)  # raised before the line ends: the buffer stays bounded
    with pytest.raises(LineTooLongError):
        SSEDecoder(max_line_bytes=64).feed(b"data: " + b"y" * 100 + b"\n")


def test_a_trickled_line_is_bounded_and_still_parsed() -> None:
    decoder = SSEDecoder(max_line_bytes=50_000)
    decoder.feed(b"data: ")
    for _ in range(40_000):  # byte by byte: grown in place, not copied per byte
        assert decoder.feed(b"y") == []
    assert decoder.feed(b"\n\n") == [ServerSentEvent("y" * 40_000)]
    with pytest.raises(LineTooLongError):
        for _ in range(60_000):
            decoder.feed(b"z")


def test_an_event_without_end_is_bounded() -> None:
    decoder = SSEDecoder(max_line_bytes=100, max_event_bytes=1000)
    with pytest.raises(EventTooLargeError) as caught:
        for _ in range(100):  # endless data lines, never a blank line
            decoder.feed(b"data: " + b"z" * 50 + b"\n")
    assert caught.value.limit == 1000
    assert len(decoder._data) < 30  # what it held stayed within the bound


# -- property: any events, any line endings, any split --------------------------------------------

_value = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=12
)
_event = st.tuples(
    st.lists(_value, min_size=1, max_size=3),
    st.one_of(st.none(), _value.filter(lambda v: v != "")),
    st.one_of(st.none(), _value),
    st.one_of(st.none(), st.integers(0, 10**6)),
)


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(_event, max_size=5),
    ending=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    cuts=st.lists(st.integers(0, 400), max_size=12),
    comments=st.booleans(),
)
def test_any_stream_split_anywhere(
    events: list[tuple[list[str], str | None, str | None, int | None]],
    ending: bytes,
    cuts: list[int],
    comments: bool,
) -> None:
    lines: list[bytes] = []
    expected = []
    last_id = ""
    for data, kind, event_id, retry in events:
        if comments:
            lines.append(b": keep-alive")
        if kind is not None:
            lines.append(b"event: " + kind.encode())
        if event_id is not None:
            lines.append(b"id: " + event_id.encode())
            last_id = event_id
        if retry is not None:
            lines.append(b"retry: " + str(retry).encode())
        lines += [b"data: " + value.encode() for value in data]
        lines.append(b"")
        expected.append(ServerSentEvent("\n".join(data), kind or "message", last_id, retry))
    stream = b"".join(line + ending for line in lines)
    assert decode(stream, [c for c in cuts if c < len(stream)]) == expected


# -- the data-only fast path (whole "data:" events split without the line loop) -----------------

_pieces = st.sampled_from(
    [
        *(b"data: ", b"data:", b"data:  ", b"event: x\n", b"id: 7\n", b": c\n", b"\n", b"\r"),
        *(b"\r\n", b'{"t": 1}', b"tok", b"\xc3\xa9", b"\xff", b"data", b" ", b"data: x\n\n"),
    ]
)


def _data_events(decoder: SSEDecoder, chunks: list[bytes]) -> list[str]:
    out = [value for chunk in chunks for value in decoder.feed_data(chunk)]
    return out + decoder.close_data()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_pieces, max_size=6).map(b"".join), min_size=1, max_size=60),
    st.lists(st.integers(0, 600), max_size=3),
)
def test_data_only_fast_path_equals_the_line_loop(events: list[bytes], cuts: list[int]) -> None:
    from sagemaker_rt_aio import _sse

    # Mostly well-formed streams (so that the fast path runs), with odd events mixed in.
    stream = b"".join(e if e.startswith(b"data") else b"data: " + e + b"\n\n" for e in events)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    threshold = _sse._MANY_EVENTS
    try:
        _sse._MANY_EVENTS = 8  # the fast path wherever it applies (the examples are small)
        fast = _data_events(SSEDecoder(), chunks)
        _sse._MANY_EVENTS = 1 << 60  # the line loop only
        assert _data_events(SSEDecoder(), chunks) == fast
    finally:
        _sse._MANY_EVENTS = threshold


@pytest.mark.parametrize("space", [b" ", b""])
def test_data_only_fast_path_splits_a_chunk_of_many_events(space: bytes) -> None:
    values = [f'{{"token": {i}, "text": "é"}}' for i in range(100)]
    stream = b"".join(b"data:" + space + v.encode() + b"\n\n" for v in values)
    decoder = SSEDecoder()
    assert decoder.feed_data(stream + b"data: {\"ta") == values
    assert decoder.feed_data(b"il\": 1}\n\n") == ['{"tail": 1}']


def test_data_only_fast_path_keeps_the_limits() -> None:
    line = b"data: " + b"x" * 2000 + b"\n\n"
    with pytest.raises(LineTooLongError):
        SSEDecoder(max_line_bytes=1500).feed_data(line)
    with pytest.raises(EventTooLargeError):
        SSEDecoder(max_event_bytes=1500).feed_data(line)


# -- the one-event fast path (a chunk that is one whole "data:" event) ----------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_pieces, max_size=6).map(b"".join), min_size=1, max_size=40),
    st.lists(st.integers(0, 400), max_size=4),
    st.booleans(),
)
def test_one_event_fast_path_equals_the_line_loop(
    events: list[bytes], cuts: list[int], bom: bool
) -> None:
    # Each event its own chunk (the token stream's case), with odd events, a byte order mark and
    # chunks cut elsewhere mixed in; feed() never takes the fast path, feed_data() does.
    stream_events = [e if e.startswith(b"data") else b"data: " + e + b"\n\n" for e in events]
    if bom:
        stream_events[0] = b"\xef\xbb\xbf" + stream_events[0]
    chunks = []
    for event in stream_events:
        points = sorted({min(c, len(event)) for c in cuts if c % 3 == 0})
        chunks += [event[a:b] for a, b in zip([0, *points], [*points, len(event)], strict=True)]
    chunks = [chunk for chunk in chunks if chunk]
    fast = SSEDecoder()
    loop = SSEDecoder()
    got = [value for chunk in chunks for value in fast.feed_data(chunk)] + fast.close_data()
    expected = [event.data for chunk in chunks for event in loop.feed(chunk)]
    expected += [event.data for event in loop.close(dispatch_incomplete=True)]
    assert got == expected


def test_one_event_fast_path_keeps_the_limits_to_the_byte() -> None:
    decoder = SSEDecoder(max_line_bytes=20, max_event_bytes=10)
    decoder.feed_data(b"data: first\n\n")  # the stream's first chunk goes through the loop
    assert decoder.feed_data(b"data: " + b"x" * 9 + b"\n\n") == ["x" * 9]  # 9 + its LF: 10
    with pytest.raises(EventTooLargeError):
        decoder.feed_data(b"data: " + b"x" * 10 + b"\n\n")
    decoder = SSEDecoder(max_line_bytes=20)
    decoder.feed_data(b"data: first\n\n")
    assert decoder.feed_data(b"data:" + b"y" * 15 + b"\n\n") == ["y" * 15]  # a 20-byte line
    with pytest.raises(LineTooLongError):
        decoder.feed_data(b"data:" + b"y" * 16 + b"\n\n")


def test_one_event_fast_path_ends_the_event_an_earlier_chunk_named() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_data(b"event: delta\nid: 4\n") == []
    assert decoder.feed_data(b"data: {\"a\": 1}\n\n") == ['{"a": 1}']
    assert decoder.feed_data(b"data:{\"b\": 2}\n\n") == ['{"b": 2}']
    assert decoder.last_event_id == "4"


def test_one_event_fast_path_joins_the_data_lines_before_it() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_data(b"data: a\n") == []
    assert decoder.feed_data(b"data: b\n\n") == ["a\nb"]
    assert decoder.feed_data(b"data: c\r") == []  # a CR last: a LF first in the next chunk
    assert decoder.feed_data(b"\ndata: d\n\n") == ["c\nd"]


def test_a_few_events_in_a_chunk_and_a_byte_order_mark_before_them() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_data(b"\xef\xbb\xbfdata: a\n\ndata: b\n\n") == ["a", "b"]
    assert decoder.feed_data(b"data: c\n\n: note\ndata: d\n\n") == ["c", "d"]
