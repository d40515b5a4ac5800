"""Learned token-event shapes (``_llm_shapes``): the fast path gives exactly what parsing gives.

The reference is the same decoder with learning switched off. Streams are token events of each
format with every value ``delta()`` reads varied, the values it does not read varied too, the
JSON written compact or spaced, and bytes broken in the ways servers and networks break them;
then cut at random places. Both decoders must give the same texts from each chunk, the same
finish reason and usage, and the same error at the same chunk.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagemaker_rt_aio import LineTooLongError, _llm_shapes, _llm_text
from sagemaker_rt_aio._llm_shapes import (
    _RECENT,
    EventShape,
    ShapeLearner,
    _compile,
    _recent,
    text_path,
)
from sagemaker_rt_aio._llm_text import TextDecoder
from sagemaker_rt_aio.local.demo_models import (
    CONTENT_TYPES,
    FORMATS,
    render,
    split_anywhere,
    tokenize,
)

TOKENS = ["Hi", " there", ' "q"', "\n", " café", " 🚀", "\\", "", " \t", "\u2028", " end", " there"]


def feed_all(decoder: TextDecoder, chunks: list[bytes]) -> list[Any]:
    """What each chunk gave, then the close, then the reason and usage; or the error and where."""
    out: list[Any] = []
    try:
        for chunk in chunks:
            out.append(decoder.feed(chunk))
        out.append(decoder.close())
    except Exception as exc:  # the same type and text at the same chunk, or the test fails
        out.append((type(exc).__name__, str(exc)))
    out.append((decoder.finish_reason, decoder.usage))
    return out


def both(chunks: list[bytes], content_type: str, **limits: int) -> tuple[list[Any], TextDecoder]:
    learning = TextDecoder(content_type, **limits)
    got = feed_all(learning, chunks)
    assert got == feed_all(TextDecoder(content_type, learn_shapes=False, **limits), chunks)
    return got, learning


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "lmi-outputs"])
def test_each_format_learns_its_token_events_and_gives_the_same_text(fmt: str) -> None:
    events = render(fmt, tokenize("one two three four five six seven eight nine ten"))
    got, decoder = both(events, CONTENT_TYPES[fmt])
    assert decoder._shape is not None  # the fast path took the later events
    assert "".join(t for texts in got[:-1] if isinstance(texts, list) for t in texts) == (
        "one two three four five six seven eight nine ten"
    )


def test_a_format_without_a_learnable_shape_stops_trying() -> None:
    events = render("lmi-outputs", tokenize("a b c d e f g h i j k l"))
    _, decoder = both(events, CONTENT_TYPES["lmi-outputs"])
    assert decoder._shape is None and decoder._learner.lessons == 0


# -- the random streams ---------------------------------------------------------------------------
# Each stream has a style (its free values' kinds, its separators); each event is the stream's
# token event, with a small chance of each change that matters to delta() or to the JSON.


def chance(rng: random.Random, p: float = 0.03) -> bool:
    return rng.random() < p


def chat_event(rng: random.Random, text: str, style: dict[str, Any]) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    if chance(rng):
        choice["index"] = rng.choice([1, "0", None, 0.0, 2])
    if chance(rng):
        choice["finish_reason"] = rng.choice(["stop", "", "length"])
    if chance(rng):
        choice["delta"] = rng.choice([{"role": "assistant"}, {"content": None}, "x"])
    if style["completion"]:
        choice = {"index": choice["index"], "text": text, "finish_reason": None}
    doc: dict[str, Any] = {
        "id": style["id"] if not chance(rng) else rng.choice([7, "other", [1, 2], None]),
        "object": "chat.completion.chunk",
        "created": 1700000000 if not chance(rng) else rng.choice([17, -0.0, 10**120]),
        "model": "m",
        "choices": [choice],
    }
    if chance(rng):
        doc["choices"] = [choice, {"index": 1, "delta": {"content": "other"}}]
    if chance(rng) or style["usage"]:
        doc["usage"] = rng.choice(
            [None, {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}]
        )
    if chance(rng, 0.005):
        doc = {"error": {"message": "overloaded"}}
    return doc


def tgi_event(rng: random.Random, text: str, style: dict[str, Any]) -> dict[str, Any]:
    token = {
        "id": rng.randint(0, 99) if not chance(rng) else rng.choice([10**120, -3, 1.25, "5"]),
        "text": text,
        "logprob": rng.choice([-0.25, 0.0, -1e-05, 3]),
        "special": rng.choice([True, 1]) if chance(rng, 0.06) else style["special"],
    }
    doc: dict[str, Any] = {
        "index": rng.randint(0, 30),
        "token": token,
        "generated_text": None,
        "details": None,
    }
    if chance(rng):
        doc["details"] = {"finish_reason": "length", "generated_tokens": 9}
    if chance(rng):
        doc["generated_text"] = "all"
    if chance(rng):
        doc["extra"] = True
    return doc


def lmi_event(rng: random.Random, text: str, style: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "token": {"id": rng.choice([[1], [2, 3], [], [1.5]]), "text": text, "log_prob": -0.5}
    }
    if chance(rng):
        doc["details"] = {"finish_reason": "stop", "generated_tokens": 4, "input_tokens": 2}
    return doc


KINDS = {
    "chat": (chat_event, "text/event-stream"),
    "tgi": (tgi_event, "text/event-stream"),
    "lmi": (lmi_event, "application/jsonlines"),
}

# Byte-level breakage, each turning a token event into something the general path treats
# differently (an error, or U+FFFD) or tells apart: inside the text, or in a free value.
BREAKAGES = [
    (b"caf\xc3\xa9", b"caf\xe9"),  # not UTF-8
    (b"caf\xc3\xa9", b"caf\xc3"),  # a character cut short
    (b"there", b"the\x01re"),  # control characters
    (b"there", b"the\x1fre"),
    (b"there", b'the"re'),  # the string ends early
    (b"there", b"the\\xre"),  # an escape JSON does not have
    (b"there", b"the\\u12re"),
    (b"-0.25", b"-00.25"),  # a leading zero
    (b"-0.25", b"NaN"),  # Python's json reads it; it is no JSON number
    (b"-0.25", b"-.25"),
    (b"-0.25", b"-0.25e"),
    (b"1700000000", b"1" * 4400),  # past Python's limit on an integer's digits
    (b"1700000000", b"1" * 300),
]


def write(rng: random.Random, doc: dict[str, Any], sse: bool, style: dict[str, Any]) -> bytes:
    body = json.dumps(doc, separators=style["separators"], ensure_ascii=style["ascii"]).encode()
    if chance(rng, 0.02):
        body = body.replace(*rng.choice(BREAKAGES))
    if not sse:
        return body + rng.choice([b"\n", b"\n", b"\r\n", b"\n\n"])
    head = (
        rng.choice([b"data: ", b"data: ", b"data:", b"data:  "])
        if chance(rng, 0.1)
        else (style["head"])
    )
    end = rng.choice([b"\r\n\r\n", b"\r\r", b"\n\r\n", b"\n\n"]) if chance(rng) else b"\n\n"
    extra = b""
    if chance(rng, 0.05):
        extra = rng.choice([b": keep-alive\n\n", b"event: token\n", b"id: 4\n", b"retry: 9\n"])
    return extra + head + body + end


def random_stream(seed: int) -> tuple[list[bytes], str]:
    rng = random.Random(seed)
    kind = rng.choice(sorted(KINDS))
    make, content_type = KINDS[kind]
    sse = content_type == "text/event-stream"
    style = {
        "separators": rng.choice([(", ", ": "), (",", ":")]),
        "ascii": chance(rng, 0.3),
        "id": rng.choice(["chatcmpl-1", 7, 'é\\"', [1, 2]]),
        "completion": chance(rng, 0.3),
        "usage": chance(rng, 0.2),
        "head": rng.choice([b"data: ", b"data:"]),
        "special": rng.choice([False, 0]),
    }
    events = [
        write(rng, make(rng, rng.choice(TOKENS), style), sse, style)
        for _ in range(rng.randint(1, 60))
    ]
    if sse and chance(rng, 0.3):
        events.append(b"data: [DONE]\n\n")
    data = b"".join(events)
    chunks = []
    if chance(rng, 0.6):  # whole events per chunk, one or several
        while events:
            take = rng.choice([1, 1, 1, 2, 5])
            chunks.append(b"".join(events[:take]))
            del events[:take]
    else:  # anywhere
        start = 0
        while start < len(data):
            size = rng.randint(1, 600)
            chunks.append(data[start : start + size])
            start += size
    return chunks, content_type


# -- each way to differ, after the shape is learned -----------------------------------------------


def token_events(fmt: str, sep: tuple[str, str], **changes: Any) -> list[bytes]:
    """Six token events of ``fmt`` (each carrying every place BREAKAGES breaks), the fifth
    changed by ``changes`` (key paths joined by "."), written with separators ``sep``."""
    events = []
    for i in range(6):
        if fmt == "tgi":
            doc: Any = {
                "index": i,
                "token": {"id": 7, "text": " there café", "logprob": -0.25, "special": 0},
                "generated_text": None,
                "details": None,
                "created": 1700000000,
            }
        elif fmt == "lmi":
            doc = {"token": {"id": [7], "text": " there café", "log_prob": -0.25}}
        else:
            choice = {"index": 0, "delta": {"content": " there café"}, "finish_reason": None}
            if fmt == "completions":
                choice = {"index": 0, "text": " there café", "finish_reason": None}
            doc = {"id": "c", "created": 1700000000, "logprob": -0.25, "choices": [choice]}
        if i == 4:
            for path, value in changes.items():
                *parents, last = path.split(".")
                target = doc
                for step in parents:
                    target = target[int(step) if step.isdigit() else step]
                target[last] = value
        body = json.dumps(doc, separators=sep, ensure_ascii=False).encode()
        events.append(body + b"\n" if fmt == "lmi" else b"data: " + body + b"\n\n")
    return events


FORMAT_TYPES = {
    "tgi": "text/event-stream",
    "chat": "text/event-stream",
    "completions": "text/event-stream",
    "lmi": "application/jsonlines",
}
SEPARATORS = [(",", ":"), (", ", ": ")]


@pytest.mark.parametrize("fmt", sorted(FORMAT_TYPES))
@pytest.mark.parametrize("sep", SEPARATORS, ids=["compact", "spaced"])
@pytest.mark.parametrize("together", [False, True], ids=["apart", "together"])
def test_every_breakage_after_learning_gives_what_parsing_gives(
    fmt: str, sep: tuple[str, str], together: bool
) -> None:
    for old, new in BREAKAGES:
        events = token_events(fmt, sep)
        events[4] = events[4].replace(old, new)
        chunks = [*events[:4], b"".join(events[4:])] if together else events
        both(chunks, FORMAT_TYPES[fmt])
        # The breakage comes once the shape is known: learned from the first events, or
        # recalled from an earlier stream's.
        before = TextDecoder(FORMAT_TYPES[fmt])
        for chunk in events[:4]:
            before.feed(chunk)
        assert before._shape is not None


CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("tgi", {"token.special": 1}),
    ("tgi", {"token.special": True}),
    ("tgi", {"details": {"finish_reason": "length", "generated_tokens": 5}}),
    ("tgi", {"generated_text": "the whole"}),
    ("tgi", {"token": {"id": 7, "text": " there café", "logprob": -0.25}}),
    ("chat", {"choices.0.index": 1}),
    ("chat", {"choices.0.finish_reason": "length"}),
    ("chat", {"choices.0.delta": {"content": None}}),
    ("chat", {"usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}),
    ("chat", {"usage": None}),
    ("chat", {"error": "overloaded"}),
    ("completions", {"choices.0.text": None}),
    ("completions", {"choices.0.finish_reason": "stop"}),
    ("lmi", {"details": {"finish_reason": "stop", "generated_tokens": 4}}),
    ("lmi", {"token.id": ["7"]}),
]


@pytest.mark.parametrize(("fmt", "changes"), CHANGES)
@pytest.mark.parametrize("sep", SEPARATORS, ids=["compact", "spaced"])
def test_every_change_delta_reads_gives_what_parsing_gives(
    fmt: str, changes: dict[str, Any], sep: tuple[str, str]
) -> None:
    base = token_events(fmt, sep)
    changed = token_events(fmt, sep, **changes)
    # The changed event alone; learned from it (alone, and after a usual event in its chunk)
    # and followed by the usual ones; then with a text-less event between, which notes other
    # values (the changed events after it must note theirs again, as parsing does).
    quiet = QUIET[fmt]
    streams = [
        changed,
        [changed[4]] * 4 + base,
        [base[0] + changed[4], changed[4], changed[4], base[1]],
        [*base[:3], changed[4], *base[3:]],
        [changed[4]] * 4 + [quiet, changed[4]],
    ]
    for events in streams:
        both(events, FORMAT_TYPES[fmt])


_OTHER_USAGE = {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18}
_OTHER_DETAILS = {"finish_reason": "other", "generated_tokens": 9, "input_tokens": 9}
QUIET = {
    "chat": b"data: "
    + json.dumps(
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "other"}], "usage": _OTHER_USAGE}
    ).encode()
    + b"\n\n",
    "tgi": b"data: "
    + json.dumps({"token": {"text": "x", "special": True}, "details": _OTHER_DETAILS}).encode()
    + b"\n\n",
    "lmi": json.dumps({"token": {"text": ""}, "details": _OTHER_DETAILS}).encode() + b"\n",
}
QUIET["completions"] = QUIET["chat"]


@pytest.mark.parametrize("block", range(8))
def test_random_streams_give_what_parsing_gives(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = {kind: 0 for kind in KINDS}
    take = EventShape.take

    def counting_take(shape: EventShape, chunk: bytes) -> tuple[list[str], bytes] | None:
        result = take(shape, chunk)
        if result is not None:
            taken[kind] += 1
        return result

    monkeypatch.setattr(EventShape, "take", counting_take)
    for seed in range(block * 150, (block + 1) * 150):
        chunks, content_type = random_stream(seed)
        kind = random.Random(seed).choice(sorted(KINDS))
        both(chunks, content_type)
    assert min(taken.values()) > 100, taken  # each kind's events took the fast path


def test_a_chunk_that_completes_a_held_line_is_not_a_new_event() -> None:
    events = render("tgi", tokenize("a b c d e f"))[:-1]
    # "data: " is held as the start of a line: the next chunk's "data: {...}" continues it.
    got, decoder = both([*events, b"data: ", events[0]], "text/event-stream")
    assert decoder._shape is not None and got[-2][0] == "StreamDecodeError"


def test_after_a_whole_chunk_the_next_is_matched_at_once() -> None:
    events = render("tgi", tokenize("a b c d e f g h"))[:-1]
    decoder = TextDecoder("text/event-stream")
    assert [decoder.feed(event) for event in events[:6]][-1] == [" f"]
    assert decoder._idle  # nothing held: the next chunk goes straight to the shape
    assert decoder.feed(events[6]) == [" g"] and decoder._idle
    assert decoder.feed(b"data: ") == [] and not decoder._idle  # held by the general path


@pytest.mark.parametrize("held_by", ["the rest of a matched chunk", "a chunk too long to match"])
def test_what_the_general_path_holds_is_not_passed_over(held_by: str) -> None:
    # After a chunk of whole token events, the next is matched at once, with no check that
    # nothing is held: a chunk that left the start of a line with the general path ends that.
    events = render("tgi", tokenize("a b c d e f g h"))[:-1]
    learned = events[:6]  # learned, and the last of them taken whole
    if held_by == "the rest of a matched chunk":
        holding = events[6] + b"data: "
    else:  # over the 399 bytes a chunk may have to be matched: the general path reads it
        holding = b"".join(events[:4]) + b"data: "
    got, decoder = both([*learned, holding, events[0]], "text/event-stream", max_event_bytes=400)
    assert decoder._shape is not None
    assert got[-2][0] == "StreamDecodeError"  # "data: " continued, as parsing reads it


def test_a_long_event_after_the_shape_is_learned_still_raises() -> None:
    short = render("tgi", tokenize("a b c d e f"))[:-1]
    long = render("tgi", ["x" * 500])[0]
    got, decoder = both([*short, long], "text/event-stream", max_line_bytes=300)
    assert got[-2] == ("LineTooLongError", str(LineTooLongError(300)))
    assert decoder._shape is not None


_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


@given(
    st.text(alphabet="-+.eE0123456789", max_size=14)
    | st.from_regex(r"-?[0-9]{1,3}(\.[0-9]{1,3})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
)
def test_the_number_pattern_is_jsons_number_grammar(text: str) -> None:
    """A free number matches exactly what the JSON scanner reads whole as a number (integers of
    up to 100 digits, as here)."""
    try:
        value, end = _scan_once(text, 0)
        scanned = end == len(text) and type(value) in (int, float)
    except (StopIteration, ValueError):
        scanned = False
    assert (re.fullmatch(_llm_shapes._NUMBER, text) is not None) == scanned


@given(
    st.text(alphabet='"\\/bnu0aF\x01\x1f é\udc80', max_size=12).map(lambda s: f'"{s}"')
    | st.text(max_size=6).map(lambda s: json.dumps(s, ensure_ascii=False))
    | st.text(max_size=6).map(json.dumps)
)
def test_the_string_and_text_patterns_are_jsons_string_grammar(text: str) -> None:
    """A free string and a text match exactly what the JSON scanner reads whole as a string
    (bytes that were not UTF-8, decoded with surrogateescape, match neither: left to parsing)."""
    try:
        value, end = _scan_once(text, 0)
        scanned = end == len(text) and type(value) is str
    except (StopIteration, ValueError):
        scanned = False
    scanned = scanned and not any("\udc80" <= c <= "\udcff" for c in text)
    assert (re.fullmatch(_llm_shapes._STRING, text) is not None) == scanned
    text_match = re.fullmatch(_llm_shapes._TEXT, text)
    assert (text_match is not None) == scanned
    if text_match is not None:
        assert _scan_once('"' + text_match[1] + '"', 0)[0] == _scan_once(text, 0)[0]


def test_text_path_mirrors_delta() -> None:
    for fmt in ("openai-chat", "openai-completions", "tgi", "lmi"):
        for event in render(fmt, ["w1", " w2"])[:-1]:
            line = event.decode().removeprefix("data: ").strip()
            doc = json.loads(line)
            path = text_path(doc)
            decoder = TextDecoder()
            text = decoder.delta(doc)
            if path is None:
                continue
            value: Any = doc
            for step in path:
                value = value[step]
            assert value == text and (decoder.finish_reason, decoder.usage) == (None, None)


def test_learned_shapes_are_bounded() -> None:
    for n in range(3 * _RECENT):
        key = f"k{n}"
        events = [
            b"data: " + json.dumps({key: 1, "token": {"text": t}}).encode() + b"\n\n"
            for t in ("a", "b", "c")
        ]
        _, decoder = both(events, "text/event-stream")
        assert decoder._shape is not None
    assert len(_recent) == _RECENT
    assert _compile.cache_info().currsize <= _compile.cache_info().maxsize


def test_a_shape_takes_only_whole_events_at_the_head() -> None:
    learner = ShapeLearner(2)
    doc, raw = {"token": {"text": "a"}}, '{"token":{"text":"a"}}'
    shape = learner.learn(doc, raw, "sse") or learner.learn(doc, raw, "sse")  # confirmed
    assert shape is not None
    event = b'data: {"token":{"text":"a"}}\n\n'
    assert shape.take(event) == (["a"], b"")
    assert shape.take(event * 3 + b"data: {") == (["a", "a", "a"], b"data: {")
    assert shape.take(b": hi\n\n" + event) is None
    # Another event after the first: the rest goes to the general path from there.
    assert shape.take(event + b": hi\n\n" + event) == (["a"], b": hi\n\n" + event)
    assert shape.take(event * 2 + b": hi\n\n" + event) == (["a"], event + b": hi\n\n" + event)


@pytest.mark.parametrize("fmt", ["openai-chat", "tgi", "lmi"])
def test_events_split_between_chunks_keep_the_fast_path(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    matched = []
    take = EventShape.take

    def counting_take(shape: EventShape, chunk: bytes) -> tuple[list[str], bytes] | None:
        result = take(shape, chunk)
        if result is not None:
            matched.extend(result[0])
        return result

    monkeypatch.setattr(EventShape, "take", counting_take)
    data = b"".join(render(fmt, tokenize("word " * 300)))
    chunks = split_anywhere(data, random.Random(3), mean=400)
    both(chunks, CONTENT_TYPES[fmt])
    # Each chunk ends an event begun in the one before (the general path's), then its whole
    # events are matched: half the 300 tokens or more, in chunks of two events on average.
    assert len(matched) > 150


def test_large_or_deep_events_are_parsed_not_learned() -> None:
    deep: Any = 0
    for _ in range(400):  # deeper than the interpreter's recursion limit would allow to walk
        deep = [deep]
    for extra in ("x" * 5000, deep):
        doc = {"extra": extra, "token": {"text": " t", "special": False}}
        events = [b"data: " + json.dumps(doc).encode() + b"\n\n"] * 6
        got, decoder = both(events, "text/event-stream")
        assert decoder._shape is None and got[0] == [" t"]


def test_shapes_are_compiled_only_when_confirmed_and_then_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The last lesson of an earlier test must not confirm the first lesson here.
    monkeypatch.setattr(_llm_shapes, "_last_candidate", None)

    def events(request: str, logprobs: bool) -> list[bytes]:
        out = []
        for i in range(8):
            choice: dict[str, Any] = {"index": 0, "delta": {"content": f" w{i}"}}
            choice["logprobs"] = (
                {"content": [{"token": f" w{i}", "logprob": -i}]} if logprobs else None
            )
            doc = {"request_id": request, "choices": [choice], "finish_reason": None}
            out.append(b"data: " + json.dumps(doc).encode() + b"\n\n")
        return out

    compiled = _compile.cache_info().misses
    # A value that changes kind from token to token: no two events in a row share a pattern.
    flipping = [
        b"data: " + json.dumps({"n": i if i % 2 else str(i), "token": {"text": "t"}}).encode()
        for i in range(8)
    ]
    _, decoder = both([event + b"\n\n" for event in flipping], "text/event-stream")
    assert decoder._shape is None and _compile.cache_info().misses == compiled
    # Log probabilities asked for: an object that changes with every token, where delta() does
    # not read. Never learned, never compiled for.
    _, decoder = both(events("r-1", logprobs=True), "text/event-stream")
    assert decoder._shape is None and _compile.cache_info().misses == compiled
    # A value delta() does not read, different on every stream (a request id): one shape for
    # all of them, compiled once, confirmed by the second event of the first stream.
    for n in range(5):
        _, decoder = both(events(f"r-{n}", logprobs=False), "text/event-stream")
        assert decoder._shape is not None
    assert _compile.cache_info().misses == compiled + 1


def test_one_event_streams_confirm_their_shape_on_the_second_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server whose every answer is one token event: each stream's decoder has one lesson, so
    the shape is confirmed by the next stream's, and then found, not built again per stream."""
    built: list[Any] = []
    pattern = _llm_shapes._pattern

    def counting(value: Any, path: Any, encoder: Any, depth: int) -> str:
        if depth == 0:
            built.append(value)
        return pattern(value, path, encoder, depth)

    monkeypatch.setattr(_llm_shapes, "_pattern", counting)
    monkeypatch.setattr(_llm_shapes, "_recent", [])  # as in a new process
    monkeypatch.setattr(_llm_shapes, "_last_candidate", None)
    doc = {"one_event_server": 1, "token": {"text": " yes", "special": False}}
    event = b"data: " + json.dumps(doc).encode() + b"\n\n"
    decoders = []
    for _ in range(5):
        got, decoder = both([event], "text/event-stream")
        assert got[0] == [" yes"]
        decoders.append(decoder)
    assert decoders[0]._shape is None  # one event: not confirmed yet
    assert all(decoder._shape is not None for decoder in decoders[1:])
    assert len(built) == 2  # the first two streams' lessons; the others found it


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "lmi-outputs"])
def test_a_new_stream_matches_the_shape_earlier_streams_confirmed_without_parsing(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a server's streams have confirmed its shape, a new stream's token events are
    matched from the first: none is parsed or learned from (a short answer's decoding was mostly
    that)."""
    monkeypatch.setattr(_llm_shapes, "_recent", [])  # as in a new process
    monkeypatch.setattr(_llm_shapes, "_last_candidate", None)
    events = render(fmt, tokenize("one two three four five"))
    got, decoder = both(events, CONTENT_TYPES[fmt])  # learns and confirms the shape
    assert decoder._shape is not None and _llm_shapes._recent == [decoder._shape]
    parsed: list[Any] = []
    delta = TextDecoder.delta

    def counting(decoder: TextDecoder, doc: Any) -> str:
        parsed.append(doc)
        return delta(decoder, doc)

    monkeypatch.setattr(TextDecoder, "delta", counting)
    tokens = [(e, texts) for e, texts in zip(events, got[: len(events)], strict=True) if texts][:3]
    decoder = TextDecoder(CONTENT_TYPES[fmt])
    for event, texts in tokens:  # a new stream's first three token events
        assert decoder.feed(event) == texts
        assert decoder._shape is _llm_shapes._recent[0]
    assert parsed == []
    assert decoder._learner.lessons == _llm_text._LESSONS  # nothing learned: recalled


def test_a_recalled_stream_start_is_its_start_for_the_byte_order_mark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A byte order mark counts only as a stream's first bytes (the SSE spec): once a recalled
    shape took those, one at the start of a later chunk is part of its line, as when parsing."""
    monkeypatch.setattr(_llm_shapes, "_recent", [])
    monkeypatch.setattr(_llm_shapes, "_last_candidate", None)
    event = render("tgi", tokenize("a b c"))[1]
    both([event] * 3, "text/event-stream")  # learned and confirmed
    got, decoder = both([event, b"\xef\xbb\xbf" + event, event], "text/event-stream")
    assert got[:3] == [[" b"], [], [" b"]]  # the second event's field is not "data"
    assert decoder._shape is not None


def test_recalling_is_bounded_for_a_stream_of_another_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_llm_shapes, "_recent", [])
    monkeypatch.setattr(_llm_shapes, "_last_candidate", None)
    for n in range(_llm_shapes._RECENT):  # a process that talked to many servers
        doc = {f"server{n}": n, "token": {"text": " t", "special": False}}
        both([b"data: " + json.dumps(doc).encode() + b"\n\n"] * 3, "text/event-stream")
    assert len(_llm_shapes._recent) == _llm_shapes._RECENT
    tries: list[bytes] = []
    take = EventShape.take

    def counting_take(shape: EventShape, chunk: bytes) -> tuple[list[str], bytes] | None:
        tries.append(chunk)
        return take(shape, chunk)

    monkeypatch.setattr(EventShape, "take", counting_take)
    quiet = b"data: " + json.dumps({"token": {"text": "", "special": False}}).encode() + b"\n\n"
    got, _ = both([quiet] * 50, "text/event-stream")  # events without text teach nothing
    assert got[:50] == [[]] * 50
    # The first chunks only, each against every recent shape: then the stream is parsed.
    assert len(tries) == _llm_shapes._RECALLS * _llm_shapes._RECENT


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "lmi-outputs"])
def test_a_whole_answer_in_one_chunk_is_matched_after_its_first_events(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that brings the whole answer (a container that buffers its output): the events
    that teach the shape are parsed, the rest of the same chunk matched."""
    monkeypatch.setattr(_llm_shapes, "_recent", [])  # no shape known: two lessons to learn it
    monkeypatch.setattr(_llm_shapes, "_last_candidate", None)
    parsed: list[Any] = []
    delta = TextDecoder.delta

    def counting(decoder: TextDecoder, doc: Any) -> str:
        if decoder._learner.lessons:  # the learning decoder, not the reference one
            parsed.append(doc)
        return delta(decoder, doc)

    monkeypatch.setattr(TextDecoder, "delta", counting)
    words = " ".join(f"w{i}" for i in range(40))
    got, decoder = both([b"".join(render(fmt, tokenize(words)))], CONTENT_TYPES[fmt])
    assert "".join(got[0] + got[1]) == words
    assert decoder._shape is not None
    # The first events (a role, a first token) and the two lessons; without learning ahead,
    # all 40 and more.
    assert len(parsed) <= 4, len(parsed)


def test_a_chunk_of_events_without_text_is_split_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quiet = b"data: " + json.dumps({"token": {"text": "", "special": False}}).encode() + b"\n\n"
    token = b"data: " + json.dumps({"token": {"text": " t", "special": False}}).encode() + b"\n\n"
    chunk = quiet * 100 + token * 3
    assert feed_all(TextDecoder("text/event-stream", learn_shapes=False), [chunk])[0] == [" t"] * 3
    fed: list[bytes] = []
    values = TextDecoder._values

    def counting(decoder: TextDecoder, chunk: bytes) -> list[str]:
        fed.append(chunk)
        return values(decoder, chunk)

    monkeypatch.setattr(TextDecoder, "_values", counting)
    assert TextDecoder("text/event-stream").feed(chunk) == [" t"] * 3
    assert len(fed) == _llm_text._SPLITS + 1  # a few events one at a time, then the rest whole


def test_a_falsy_finish_reason_stays_fixed() -> None:
    def event(reason: Any) -> bytes:
        choice = {"index": 0, "delta": {"content": "w"}, "finish_reason": reason}
        return b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"

    for falsy in ("", 0, False, None):
        _, decoder = both([event(falsy)] * 4 + [event("stop"), event(falsy)], "text/event-stream")
        assert decoder.finish_reason == "stop" and decoder._shape is not None


# -- through the client, in a hostile world -------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai-chat", "tgi", "lmi"])
@pytest.mark.parametrize("how", ["StreamBroken", "reset", "cancel"])
async def test_a_stream_broken_while_matched_keeps_what_it_gave(
    fmt: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from botocore.credentials import Credentials

    from sagemaker_rt_aio import RetryPolicy, SageMakerRuntimeClient, SageMakerRuntimeError
    from sagemaker_rt_aio.local import BreakStreamFault, LocalRuntime
    from sagemaker_rt_aio.local.demo_models import CannedLLM

    matched = []
    take = EventShape.take

    def counting_take(shape: EventShape, chunk: bytes) -> tuple[list[str], bytes] | None:
        result = take(shape, chunk)
        if result is not None:
            matched.extend(result[0])
        return result

    monkeypatch.setattr(EventShape, "take", counting_take)
    text = "one two three four five six seven eight nine ten " * 12
    creds = Credentials("AKIDEXAMPLE", "secret")
    async with LocalRuntime(credentials=creds) as runtime:
        runtime.add_endpoint("llm", CannedLLM(fmt, text, mean_part_bytes=600))
        if how != "cancel":
            runtime.add_fault("llm", BreakStreamFault(after_parts=8, how=how), times=1)
        async with SageMakerRuntimeClient(
            region_name="us-east-1",
            endpoint_url=runtime.url,
            allow_http=True,
            credentials=creds,
            retry_policy=RetryPolicy(base_delay=0.001, max_delay=0.002),
        ) as client:
            received: list[str] = []

            async def read() -> None:
                async with client.invoke_endpoint_with_response_stream(
                    endpoint_name="llm", body=b"{}"
                ) as stream:
                    async for delta in stream.iter_text():
                        received.append(delta)
                        if how == "cancel" and len(received) == 30:
                            asyncio.current_task().cancel()  # type: ignore[union-attr]

            if how == "cancel":
                with pytest.raises(asyncio.CancelledError):
                    await read()
            else:
                with pytest.raises(SageMakerRuntimeError) as caught:
                    await read()
                assert caught.value.partial_text == "".join(received)
            # What came is the answer's beginning, and most of it was matched, not parsed.
            assert text.startswith("".join(received)) and len(received) >= 20
            assert len(matched) > len(received) // 2
            # The client still works, and nothing was left open: the next stream reads whole.
            async with client.invoke_endpoint_with_response_stream(
                endpoint_name="llm", body=b"{}"
            ) as stream:
                assert "".join([t async for t in stream.iter_text()]) == text
