"""Drive AWS's own SDK (aws-sdk-sagemaker-runtime-http2 over AWS CRT) against a bidirectional URL.

Run with Python 3.12+ and ``pip install aws-sdk-sagemaker-runtime-http2 awscrt``::

    echo '[{"endpoint": "echo", "messages": ["hello", "world"],
            "access_key": "AKID", "secret_key": "SECRET"}]' |
        python scripts/aws_sdk_bidi_probe.py https://127.0.0.1:PORT CA_FILE

Each job on stdin opens one stream, sends its messages as UTF8 PayloadParts (the last one
``COMPLETE``), closes the input and reads the answer; one JSON line per job is printed:
``{"events": [{"bytes": ..., "data_type": ..., "completion_state": ...}, ...]}`` or
``{"error": <the SDK's exception class>, "message": ...}``. ``CA_FILE`` is the CA that signed the
server's certificate. tests/test_bidi_aws_sdk.py runs this against the local runtime over TLS.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aws_sdk_sagemaker_runtime_http2.client import AsyncSageMakerRuntimeHTTP2Client
from aws_sdk_sagemaker_runtime_http2.config import AsyncSageMakerRuntimeHTTP2Config
from aws_sdk_sagemaker_runtime_http2.models import (
    InvokeEndpointWithBidirectionalStreamInput,
    RequestPayloadPart,
    RequestStreamEventPayloadPart,
    ResponseStreamEventPayloadPart,
)
from awscrt import io as crt_io
from smithy_aws_core.identity import AWSCredentialsIdentity
from smithy_aws_core.identity.static import StaticCredentialsResolver
from smithy_http.aio.crt import AWSCRTHTTPClient


class _TrustingCRTClient(AWSCRTHTTPClient):
    """The SDK's CRT transport, trusting ``ca_file`` (the SDK has no CA-bundle option yet)."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        options = crt_io.TlsContextOptions()
        options.override_default_trust_store_from_path(None, ca_file)
        self._tls_ctx = crt_io.ClientTlsContext(options)


async def _job(url: str, ca_file: str, job: dict[str, Any]) -> dict[str, Any]:
    identity = AWSCredentialsIdentity(
        access_key_id=job["access_key"], secret_access_key=job["secret_key"]
    )
    config = await AsyncSageMakerRuntimeHTTP2Config.resolve(
        endpoint_uri=url,
        region=job.get("region", "us-east-1"),
        aws_credentials_identity_resolver=StaticCredentialsResolver(identity),
        transport=_TrustingCRTClient(ca_file),
    )
    client = AsyncSageMakerRuntimeHTTP2Client(config=config)
    events: list[dict[str, Any]] = []
    try:
        stream = await client.invoke_endpoint_with_bidirectional_stream(
            InvokeEndpointWithBidirectionalStreamInput(endpoint_name=job["endpoint"])
        )
        messages = job["messages"]
        for index, text in enumerate(messages):
            state = "COMPLETE" if index == len(messages) - 1 else "PARTIAL"
            await stream.input_stream.send(
                RequestStreamEventPayloadPart(
                    value=RequestPayloadPart(
                        bytes_=text.encode(), data_type="UTF8", completion_state=state
                    )
                )
            )
        await stream.input_stream.close()
        _, output = await stream.await_output()
        async for event in output:
            if isinstance(event, ResponseStreamEventPayloadPart):
                part = event.value
                events.append(
                    {
                        "bytes": (part.bytes_ or b"").decode(),
                        "data_type": part.data_type,
                        "completion_state": part.completion_state,
                    }
                )
            else:
                events.append({"event": type(event).__name__, "value": repr(event.value)})
        await output.close()
    except Exception as exc:  # the caller compares the error the SDK raised
        return {"error": type(exc).__name__, "message": str(exc), "events": events}
    return {"events": events}


async def main(url: str, ca_file: str) -> None:
    for job in json.load(sys.stdin):
        print(json.dumps(await _job(url, ca_file, job)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
