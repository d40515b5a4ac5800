"""Every default and protocol constant in one place.

Values copied from the service model or botocore carry the source in a comment, so that a reader can
check them; values that are our own choice say why.
"""

from __future__ import annotations

import aiohttp

from ._version import __version__

# The region-metadata name used to compute endpoints (Java's AmazonSageMakerRuntime.ENDPOINT_PREFIX).
ENDPOINT_PREFIX = "runtime.sagemaker"

# SigV4 signs for "sagemaker", not for the endpoint prefix (service-2.json "signingName").
SIGNING_NAME = "sagemaker"
S3_SIGNING_NAME = "s3"

API_VERSION = "2017-05-13"

# The service gives a model 60 s to answer; AWS tells SDK users to set a 70 s socket timeout. No total
# deadline: a token stream may run for minutes as long as bytes keep coming.
DEFAULT_SOCK_READ_TIMEOUT = 70.0
# botocore's is 60 s; a TCP+TLS handshake that takes 10 s is a dead endpoint, not a slow one.
DEFAULT_CONNECT_TIMEOUT = 10.0


def default_timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None, sock_connect=DEFAULT_CONNECT_TIMEOUT, sock_read=DEFAULT_SOCK_READ_TIMEOUT
    )


# BodyBlob.max in the model: 6 MiB for request and response bodies.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
# A non-stream answer's body is refused past this (max_response_bytes): the service's bound on a
# body, plus room for an error document or a proxy's page around it.
DEFAULT_MAX_RESPONSE_BYTES = DEFAULT_MAX_BODY_BYTES + 64 * 1024
# AsyncBodyBlob.max in the model (inline body of InvokeEndpointAsync).
MAX_ASYNC_INLINE_BODY_BYTES = 128_000

# shutdown(): how long calls in flight may take to finish before they are cancelled.
DEFAULT_SHUTDOWN_GRACE = 10.0

# wait_for_async_result(): the first poll interval, growing 1.5x per poll up to the maximum. An
# async inference takes seconds to an hour; a few S3 HEADs a second per waiter are far below S3's
# request rates, and the cap keeps a long wait from polling every 200 ms for an hour.
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_POLL_MAX_INTERVAL = 15.0

# Connection pool bound per client (aiohttp's own default is 100).
DEFAULT_MAX_CONNECTIONS = 100

# A request signed before it waited this long for a connection is signed again before it is sent:
# SigV4 accepts a request dated within 5 minutes of the service's clock, and temporary
# credentials can run out meanwhile.
SIGN_AGAIN_AFTER = 60.0

# Calls waiting for a connection in the client's own pool (on credit, see Slots), at most, per
# connection: each holds its signed and built request, about 9 KiB against 2.5 for a call waiting
# in the slots before it is signed. Beyond, calls wait in the slots.
POOL_QUEUE_PER_CONNECTION = 8

# get_cached_response_metadata: the Java SDK keeps 50 entries; ours also expire.
DEFAULT_METADATA_CACHE_SIZE = 50
DEFAULT_METADATA_CACHE_TTL = 300.0

# SigV4: a signature is valid for 5 minutes after its X-Amz-Date.
SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# Refresh expiring credentials this long before they expire (botocore's advisory window is 15 min).
CREDENTIAL_REFRESH_MARGIN = 15 * 60.0

USER_AGENT = f"sagemaker-rt-aio/{__version__}"

# Event-stream limits (botocore eventstream.py).
EVENTSTREAM_MAX_HEADERS_LENGTH = 128 * 1024
EVENTSTREAM_MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
# iter_lines(): a line longer than this raises instead of growing the buffer without bound.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

# iter_events()/iter_json()/iter_text(): one server-sent event's data may not grow past this (a
# stream that never sends the blank line ending an event would otherwise grow the buffer forever).
DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024
# iter_text(): the text kept for ``partial_text`` on an error; past it, only the start is kept.
DEFAULT_MAX_PARTIAL_TEXT = 4 * 1024 * 1024

# Bearer tokens for the OpenAI-compatible route, as the SageMaker Python SDK makes them
# (sagemaker-core, sagemaker/core/token_generator/token_generator.py).
BEARER_TOKEN_HOST = "sagemaker.amazonaws.com"
BEARER_TOKEN_ACTION = "CallWithBearerToken"
BEARER_TOKEN_PREFIX = "sagemaker-api-key-"
BEARER_TOKEN_VERSION = "&Version=1"
BEARER_TOKEN_MAX_EXPIRES = 43200  # 12 hours: the service's limit and the SDK's default
# A cached token is handed out again only while it keeps at least this share of its lifetime.
BEARER_TOKEN_REUSE_SHARE = 0.9
# Tokens the client mints for its own route calls: short-lived, so one that leaks is soon useless.
ROUTE_TOKEN_EXPIRES = 900
# The OpenAI-compatible route, under /endpoints/{name}.
OPENAI_ROUTE_PREFIX = "/openai/v1"
CHAT_COMPLETIONS_PATH = "/openai/v1/chat/completions"

# InvokeEndpointWithBidirectionalStream: the HTTP/2 receive window (stream and connection). A slow
# consumer stops the server after this many unread bytes: it bounds what a stream buffers.
DEFAULT_BIDI_RECEIVE_WINDOW = 1024 * 1024
# ... and after this many seconds of silence on a bidirectional stream's connection, a PING checks
# that the server is still there; nothing at all within the PING timeout ends the stream (a
# vanished peer sends no FIN, and while the input is open no read timeout applies).
DEFAULT_BIDI_PING_INTERVAL = 30.0
DEFAULT_BIDI_PING_TIMEOUT = 20.0
