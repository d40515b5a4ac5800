"""Drive AWS's own SDK (aws-sdk-sagemaker-runtime-http2 over AWS CRT) against a bidirectional URL.

Run with Python 3.12+ and ``pip install aws-sdk-sagemaker-runtime-http2 awscrt``::

    python scripts/aws_sdk_bidi_probe.py URL CA_FILE ENDPOINT [MESSAGE ...]

Sends each MESSAGE as a PayloadPart (the last one COMPLETE), closes the input, and prints one JSON
line per answer event: ``{"bytes": ..., "data_type": ..., "completion_state": ...}``, or
``{"error": <class name>, "message": ...}``. Credentials and region come from the environment
(``AWS_ACCESS_KEY_ID``...). ``CA_FILE`` is the CA the server's certificate is signed by.
tests/test_bidi_aws_sdk.py runs this in a subprocess against the local runtime over TLS.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from awscrt import io as crt_io
from aws_sdk_sagemaker_runtime_http2.client import AsyncSageMakerRuntimeHTTP2Client
from aws_sdk_sagemaker_runtime_http2.config import AsyncSageMakerRuntimeHTTP2Config as Config
from aws_sdk_sagemaker_runtime_http2.models import (
    InvokeEndpointWithBidirectionalStreamInput,
    RequestPayloadPart,
    RequestStreamEventPayloadPart,
    ResponseStreamEventPayloadPart,
)
from smithy_aws_core.identity import EnvironmentCredentialsResolver
from smithy_http.aio.crt import AWSCRTHTTPClient


class _TrustingCRTClient(AWSCRTHTTPClient):
    """The SDK's CRT transport, trusting ``ca_file`` (the SDK has no CA-bundle option yet)."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        options = crt_io.TlsContextOptions()
        options.override_default_trust_store_from_path(None, ca_file)
        self._tls_ctx = crt_io.ClientTlsContext(options)


def _print(doc: dict[str, object]) -> None:
    print(json.dumps(doc), flush=True)


async def main(url: str, ca_file: str, endpoint: str, messages: list[str]) -> None:
    config = await Config.resolve(
        endpoint_uri=url,
        region=os.environ.get("AWS_REGION", "us-east-1"),
        aws_credentials_identity_resolver=EnvironmentCredentialsResolver(),
        transport=_TrustingCRTClient(ca_file),
    )
    client = AsyncSageMakerRuntimeHTTP2Client(config=config)
    try:
        stream = await client.invoke_endpoint_with_bidirectional_stream(
            InvokeEndpointWithBidirectionalStreamInput(endpoint_name=endpoint)
        )
        for index, text in enumerate(messages):
            last = index == len(messages) - 1
            await stream.input_stream.send(
                RequestStreamEventPayloadPart(
                    value=RequestPayloadPart(
                        bytes_=text.encode(),
                        data_type="UTF8",
                        completion_state="COMPLETE" if last else "PARTIAL",
                    )
                )
            )
        await stream.input_stream.close()
        _, output = await stream.await_output()
        async for event in output:
            if isinstance(event, ResponseStreamEventPayloadPart):
                part = event.value
                _print(
                    {
                        "bytes": (part.bytes_ or b"").decode(),
                        "data_type": part.data_type,
                        "completion_state": part.completion_state,
                    }
                )
            else:
                _print({"event": type(event).__name__, "value": repr(event.value)})
        await output.close()
    except Exception as exc:  # the caller compares the error the SDK raised
        _print({"error": type(exc).__name__, "message": str(exc)})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
