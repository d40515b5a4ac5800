"""JSON values and text deltas from each LLM container format, split at every byte boundary."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio import LineTooLongError, LLMStreamError, StreamDecodeError, TokenUsage
from sagemaker_rt_aio._llm_text import (
    JSON_LINES,
    PLAIN,
    SSE,
    JsonDecoder,
    TextDecoder,
    framing_from_content_type,
    sniff_framing,
)
from sagemaker_rt_aio.local.demo_models import (
    CONTENT_TYPES,
    FORMATS,
    CannedLLM,
    render,
    split_anywhere,
    tokenize,
)

SHORT = 'Hé 🚀 "q"\r\nok\tdata: x'


def run_text(parts: list[bytes], content_type: str | None) -> tuple[TextDecoder, str]:
    decoder = TextDecoder(content_type)
    texts: list[str] = []
    for part in parts:
        texts += decoder.feed(part)
    texts += decoder.close()
    return decoder, "".join(texts)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p for p in points if 0 < p < len(data)})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("declared", [True, False], ids=["content-type", "sniffed"])
def test_every_two_part_split_gives_the_text(fmt: str, declared: bool) -> None:
    data = b"".join(render(fmt, tokenize(SHORT)))
    content_type = CONTENT_TYPES[fmt] if declared else "application/octet-stream"
    for point in range(len(data) + 1):
        _, text = run_text(cut(data, [point]), content_type)
        assert text == SHORT, point


@pytest.mark.parametrize("fmt", FORMATS)
def test_byte_by_byte(fmt: str) -> None:
    data = b"".join(render(fmt, tokenize(SHORT)))
    _, text = run_text([data[i : i + 1] for i in range(len(data))], None)
    assert text == SHORT


@settings(max_examples=40, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    seed=st.integers(0, 2**32),
)
def test_any_text_any_format_split_anywhere(fmt: str, text: str, seed: int) -> None:
    data = b"".join(render(fmt, tokenize(text)))
    parts = split_anywhere(data, random.Random(seed), mean=7)
    _, joined = run_text(parts, CONTENT_TYPES[fmt])
    assert joined == text


def test_finish_reason_and_usage_per_format() -> None:
    tokens = tokenize("one two three")
    expected = {
        "openai-chat": ("length", TokenUsage(7, 3, 10)),
        "openai-completions": ("length", TokenUsage(7, 3, 10)),
        "tgi": ("length", TokenUsage(None, 4, None)),
        "lmi": ("length", TokenUsage(None, 3, None)),
        "lmi-outputs": (None, None),
    }
    for fmt, (reason, usage) in expected.items():
        data = b"".join(render(fmt, tokens, finish_reason="length"))
        decoder, _ = run_text([data], CONTENT_TYPES[fmt])
        assert (decoder.finish_reason, decoder.usage) == (reason, usage), fmt


def test_tgi_special_tokens_are_skipped_and_generated_text_not_repeated() -> None:
    events = [
        {"token": {"id": 1, "text": "<s>", "special": True}},
        {"token": {"id": 2, "text": "Hi", "special": False}, "generated_text": None},
        {"token": {"id": 3, "text": "</s>", "special": True}, "generated_text": "Hi",
         "details": {"finish_reason": "eos_token", "generated_tokens": 2}},
    ]  # fmt: skip
    data = b"".join(b"data:" + json.dumps(e).encode() + b"\n\n" for e in events)
    decoder, text = run_text([data], "text/event-stream")
    assert text == "Hi"
    assert decoder.finish_reason == "eos_token"


def test_openai_other_choices_and_tool_calls_add_no_text() -> None:
    docs: list[Any] = [
        {"choices": [{"index": 1, "delta": {"content": "other completion"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"id": "x"}], "content": None}}]},
        {"choices": [{"index": 0, "delta": {"content": "yes"}}]},
        {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
    ]
    decoder = TextDecoder()
    assert [decoder.delta(doc) for doc in docs] == ["", "", "yes", ""]
    assert decoder.usage == TokenUsage(1, 1, None)


@pytest.mark.parametrize(
    ("doc", "shown"),
    [
        ({"error": "Request failed during generation: OOM", "error_type": "generation"}, "OOM"),
        ({"error": {"message": "context too long", "type": "BadRequestError"}}, "too long"),
        ({"object": "error", "message": "bad sampling", "type": "invalid"}, "bad sampling"),
    ],
)
def test_error_events_raise_with_their_message(doc: dict[str, Any], shown: str) -> None:
    decoder = TextDecoder("text/event-stream")
    assert decoder.feed(b'data: {"token": {"text": "ok"}}\n\n') == ["ok"]
    with pytest.raises(LLMStreamError, match=shown) as caught:
        decoder.feed(b"data: " + json.dumps(doc).encode() + b"\n\n")
    assert caught.value.payload == doc


def test_whole_answers_give_their_text() -> None:
    decoder = TextDecoder()
    assert decoder.delta({"choices": [{"message": {"content": "all"}, "finish_reason": "stop"}]})
    assert decoder.delta([{"generated_text": "tgi whole"}]) == "tgi whole"
    assert decoder.delta({"outputs": [{"text": "x"}], "finish_reason": ["length"]}) == "x"
    assert decoder.finish_reason == "length"
    assert decoder.delta(42) == decoder.delta("str") == ""


# -- JSON framing ---------------------------------------------------------------------------


def test_json_from_sse_skips_done_and_comments() -> None:
    data = b': ping\n\ndata: {"a": 1}\n\nevent: x\ndata: [1,\ndata: 2]\n\ndata: [DONE]\n\n'
    for point in range(len(data) + 1):
        decoder = JsonDecoder()
        values = [v for part in cut(data, [point]) for v in decoder.feed(part)] + decoder.close()
        assert values == [{"a": 1}, [1, 2]]


def test_json_lines_with_crlf_blank_lines_and_no_final_newline() -> None:
    data = b'{"a": 1}\r\n\n  \n{"b": "\xc3\xa9"}\n[3]'
    for point in range(len(data) + 1):
        decoder = JsonDecoder("application/jsonlines")
        values = [v for part in cut(data, [point]) for v in decoder.feed(part)] + decoder.close()
        assert values == [{"a": 1}, {"b": "é"}, [3]]


def test_last_sse_event_without_blank_line_still_counts() -> None:
    decoder = JsonDecoder("text/event-stream")
    assert decoder.feed(b'data: {"a": 1}\n\ndata: {"b": 2}') == [{"a": 1}]
    assert decoder.close() == [{"b": 2}]


@pytest.mark.parametrize(
    ("content_type", "framing"),
    [
        ("text/event-stream; charset=utf-8", SSE),
        ("application/jsonlines", JSON_LINES),
        ("application/x-ndjson", JSON_LINES),
        ("application/json", None),
        (None, None),
    ],
)
def test_framing_from_content_type(content_type: str | None, framing: str | None) -> None:
    assert framing_from_content_type(content_type) == framing


def test_sniffing_waits_for_a_telling_byte() -> None:
    assert sniff_framing(b"") is None
    assert sniff_framing(b"\xef\xbb\xbf \r\n") is None
    assert sniff_framing(b"da") == SSE
    assert sniff_framing(b":") == SSE
    assert sniff_framing(b'\n {"token"') == JSON_LINES
    decoder = JsonDecoder()
    assert decoder.feed(b"  ") == []
    assert decoder.feed(b'\n{"x": 1}\n') == [{"x": 1}]
    assert decoder.framing == JSON_LINES


def test_mislabelled_streams_are_decoded_by_their_bytes() -> None:
    sse_body = b'data: {"token": {"text": "a"}}\n\n'
    lines_body = b'{"token": {"text": "b"}}\n'
    assert JsonDecoder("application/jsonlines").feed(sse_body) == [{"token": {"text": "a"}}]
    assert JsonDecoder("text/event-stream").feed(lines_body) == [{"token": {"text": "b"}}]
    assert JsonDecoder("text/event-stream").close() == []  # an empty body: nothing
    # The content type settles what the bytes do not tell.
    assert sniff_framing(b"x", SSE) == SSE and sniff_framing(b"x") == PLAIN


@pytest.mark.parametrize("content_type", ["text/plain; charset=utf-8", None])
def test_plain_text_passes_through_iter_text_whole_characters(content_type: str | None) -> None:
    data = "Hello wörld 🚀, no JSON here\r\n".encode()
    for point in range(len(data) + 1):
        _, text = run_text(cut(data, [point]), content_type)
        assert text == "Hello wörld 🚀, no JSON here\r\n", point
    with pytest.raises(StreamDecodeError, match="plain text"):
        JsonDecoder(content_type).feed(data)


def test_bad_json_raises_a_typed_error() -> None:
    with pytest.raises(StreamDecodeError, match="not JSON"):
        JsonDecoder("text/event-stream").feed(b"data: {oops\n\n")
    with pytest.raises(StreamDecodeError):
        JsonDecoder("application/jsonlines").feed(b"{oops}\n")


def test_json_lines_are_bounded() -> None:
    decoder = JsonDecoder("application/jsonlines", max_line_bytes=100)
    decoder.feed(b'{"a": "' + b"x" * 90)
    with pytest.raises(LineTooLongError):
        decoder.feed(b"x" * 20)
    # Trickled byte by byte, the unfinished line grows in place until the bound.
    trickled = JsonDecoder("application/jsonlines", max_line_bytes=1000)
    with pytest.raises(LineTooLongError):
        for _ in range(2000):
            trickled.feed(b"x" if trickled.framing else b"[")
    # White space before the first value carries nothing and is not kept.
    blank = JsonDecoder(max_line_bytes=10)
    for _ in range(100):
        assert blank.feed(b" \n" * 50) == []
    assert blank.feed(b'{"a": 1}\n') == [{"a": 1}]


def test_a_byte_order_mark_split_anywhere_before_json_lines() -> None:
    data = b'\xef\xbb\xbf \n{"a": 1}\n[2]\n'
    for point in range(len(data) + 1):
        decoder = JsonDecoder()
        values = [v for part in cut(data, [point]) for v in decoder.feed(part)] + decoder.close()
        assert values == [{"a": 1}, [2]], point


def test_canned_llm_parts_differ_per_call_but_join_to_the_same_stream() -> None:
    llm = CannedLLM("tgi", seed=3)
    first, second = llm.parts(), llm.parts()
    assert first != second
    assert b"".join(first) == b"".join(second) == llm.stream_bytes()
    assert max(len(p) for p in first) > 100  # several events in some parts
