"""Small helpers shared by the SageMaker and S3 front ends: bounded body reads, signature checks."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from aiohttp import web

from ._invocation import BodyTooLarge
from ._sigv4_verify import AuthFailure, SignatureVerifier


def new_request_id() -> str:
    return str(uuid.uuid4())


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, never buffering more than ``limit`` bytes.

    Raises :class:`BodyTooLarge` when the declared ``Content-Length`` or the bytes read pass the
    limit, after reading and discarding the rest of the body (for at most ``DISCARD_SECONDS``), so
    that the client, which is still sending, gets the error answer on a connection it can reuse.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        await _discard(request)
        raise BodyTooLarge(declared, limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            await _discard(request)
            raise BodyTooLarge(size, limit)
        parts.append(chunk)
    return b"".join(parts)


DISCARD_SECONDS = 10.0


async def _discard(request: web.Request) -> None:
    async def drain() -> None:
        async for _ in request.content.iter_any():
            pass

    # Past the deadline, aiohttp's own lingering close takes over.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(drain(), DISCARD_SECONDS)


def check_signature(
    verifier: SignatureVerifier | None, request: web.Request, body: bytes, service: str
) -> AuthFailure | None:
    if verifier is None:
        return None
    headers = request.headers
    return verifier.verify(
        method=request.method,
        raw_path=request.raw_path,
        headers=headers,
        body=body,
        service=service,
        get_all=lambda name: list(headers.getall(name, [])),
    )


def precheck_signature(
    verifier: SignatureVerifier | None, request: web.Request, service: str
) -> AuthFailure | None:
    """The header-only part of the signature check, made before any of the body is buffered, so
    that an unauthenticated client cannot make the runtime hold a large body in memory."""
    if verifier is None:
        return None
    return verifier.precheck(headers=request.headers, service=service)
