"""What a model handler receives and may return, and how the local runtime runs a handler.

A handler is what stands in for the model container behind an endpoint:

* ``async def handler(invocation) -> bytes | str | InvocationResponse``
* ``async def handler(invocation): yield b"..."`` (an async generator: the answer is streamed)
* ``def handler(invocation) -> bytes | str | InvocationResponse`` (a plain function; it runs on the
  event loop, so it must not block)

An ``InvocationResponse`` sets response headers; its body may itself be an async iterator of chunks.
Raising :class:`ContainerError` answers as a container that returned that HTTP status; any other
exception answers as a container that returned 500.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
Chunk = bytes | bytearray | memoryview | str
ResponseBody = Chunk | AsyncIterable[Chunk] | Iterator[Chunk]


@dataclass(frozen=True)
class Invocation:
    """One request as the model container would see it.

    ``content_type`` and ``accept`` are taken from wherever the operation carries them (the standard
    headers for InvokeEndpoint, ``X-Amzn-SageMaker-*`` headers for the other operations).
    ``headers`` holds the raw request headers (case-insensitive lookup) except the caller's
    ``Authorization`` and ``X-Amz-Security-Token``, which never reach a model.
    """

    endpoint_name: str
    body: bytes = field(repr=False)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = field(default=None, repr=False)
    target_model: str | None = None
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    enable_explanations: str | None = None
    inference_component_name: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: ``InvokeEndpoint``, ``InvokeEndpointWithResponseStream`` or ``InvokeEndpointAsync``.
    operation: str = "InvokeEndpoint"
    #: The ``x-amzn-RequestId`` the runtime answered with.
    request_id: str = ""
    #: The session created for this call when ``session_id`` was ``NEW_SESSION``.
    new_session_id: str | None = None
    #: InvokeEndpointAsync: the ``InputLocation`` the body was read from, if any.
    input_location: str | None = None
    #: The path the container is called on: ``/invocations`` for the classic operations,
    #: ``/openai/v1/chat/completions`` for the OpenAI-compatible route.
    path: str = "/invocations"

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)


@dataclass
class InvocationResponse:
    """A handler's answer with response metadata.

    ``body`` is bytes, a str (sent as UTF-8), or an (async) iterator of chunks for a streamed answer.
    ``custom_attributes`` is echoed in ``X-Amzn-SageMaker-Custom-Attributes``;
    ``close_session=True`` closes the request's session (``X-Amzn-SageMaker-Closed-Session-Id``).
    """

    body: ResponseBody = b""
    content_type: str | None = None
    custom_attributes: str | None = None
    invoked_production_variant: str | None = None
    close_session: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


class ContainerError(Exception):
    """Raise from a handler to answer as a model container that returned ``status_code``.

    The runtime turns it into the service's ``ModelError`` (424) with ``OriginalStatusCode`` and
    ``OriginalMessage`` set from this error.
    """

    def __init__(self, status_code: int, message: str = "") -> None:
        self.status_code = status_code
        self.message = message
        super().__init__(f"container answered {status_code}: {message}")


HandlerResult = ResponseBody | InvocationResponse
Handler = Callable[[Invocation], HandlerResult | Awaitable[HandlerResult]]


@dataclass
class ModelOutput:
    """A handler's answer, normalised: either a whole ``body`` or a ``stream`` of byte chunks."""

    body: bytes | None
    stream: AsyncIterator[bytes] | None
    content_type: str | None = None
    custom_attributes: str | None = None
    invoked_production_variant: str | None = None
    close_session: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    async def read_all(self, limit: int | None = None) -> bytes:
        """The whole body, joining a stream's chunks. Raises :class:`BodyTooLarge` past ``limit``."""
        if self.body is not None:
            if limit is not None and len(self.body) > limit:
                raise BodyTooLarge(len(self.body), limit)
            return self.body
        assert self.stream is not None
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream:
            size += len(chunk)
            if limit is not None and size > limit:
                await aclose(self.stream)
                raise BodyTooLarge(size, limit)
            parts.append(chunk)
        return b"".join(parts)


class BodyTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"body of at least {size} bytes is over the limit of {limit} bytes")


def to_bytes(chunk: object) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"a handler must produce bytes or str, not {type(chunk).__name__}")


async def call_handler(handler: Handler, invocation: Invocation) -> ModelOutput:
    """Call ``handler`` and normalise what it returns. Exceptions of the handler propagate."""
    result: Any = handler(invocation)
    if inspect.isawaitable(result):
        result = await result
    meta = InvocationResponse()
    if isinstance(result, InvocationResponse):
        meta = result
        result = result.body
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    if isinstance(result, (bytes, bytearray, memoryview, str)):
        body = to_bytes(result)
    elif isinstance(result, AsyncIterable):
        stream = _async_chunks(result)
    elif isinstance(result, Iterator):
        stream = _sync_chunks(result)
    else:
        raise TypeError(
            f"a handler must return bytes, str, InvocationResponse or an iterator of chunks, "
            f"not {type(result).__name__}"
        )
    return ModelOutput(
        body=body,
        stream=stream,
        content_type=meta.content_type,
        custom_attributes=meta.custom_attributes,
        invoked_production_variant=meta.invoked_production_variant,
        close_session=meta.close_session,
        headers=dict(meta.headers),
    )


async def _async_chunks(source: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    iterator = source.__aiter__()
    try:
        async for chunk in iterator:
            yield to_bytes(chunk)
    finally:
        await aclose(iterator)


async def _sync_chunks(source: Iterator[Any]) -> AsyncIterator[bytes]:
    try:
        for chunk in source:
            yield to_bytes(chunk)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


async def aclose(iterator: object) -> None:
    """Close an async generator (runs its ``finally`` blocks); other iterators are left alone."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


class ModelTimeout(Exception):
    """The model did not finish within the runtime's ``model_timeout``."""


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """Await ``awaitable`` in its own task for at most ``timeout`` seconds.

    Raises :class:`ModelTimeout` (after cancelling and awaiting the task) when time runs out, so a
    ``TimeoutError`` raised by the handler itself stays an ordinary handler error. Cancelling the
    caller cancels the task too.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(0.0, timeout))
    except BaseException:
        task.cancel()
        await asyncio.wait({task})
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is None:
            return task.result()  # it finished while being cancelled
        raise ModelTimeout
    return task.result()


async def next_chunk(stream: AsyncIterator[bytes]) -> bytes | None:
    """The stream's next chunk, or ``None`` at its end."""
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None
