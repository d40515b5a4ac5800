"""An embedded SageMaker Runtime for tests: real HTTP, the service's wire protocol, no AWS.

::

    from sagemaker_rt_aio.local import LocalRuntime

    async def echo(invocation):
        return invocation.body

    async with LocalRuntime() as runtime:
        runtime.add_endpoint("echo", echo)
        ...  # any SageMaker Runtime client (this library, boto3, aiobotocore) at runtime.url

``runtime.add_container_endpoint(name, url)`` puts a real model server (SageMaker's container
contract) behind an endpoint; ``runtime.add_fault(name, fault, times=..., seconds=...)`` makes any
stage of a call fail; ``runtime.calls(name)`` is what an endpoint received.

The pytest fixture ``sagemaker_local_runtime`` lives in ``sagemaker_rt_aio.local.pytest_plugin``.
"""

from __future__ import annotations

from ._bidi import BidirectionalInvocation
from ._container import ContainerEndpoint
from ._faults import (
    AsyncDelayFault,
    AsyncFailureFault,
    BreakStreamFault,
    ColdStartFault,
    ConnectionResetFault,
    Fault,
    LatencyFault,
    S3ErrorCode,
    S3ErrorFault,
    ServiceErrorCode,
    ServiceErrorFault,
    SlowFirstPartFault,
    StallStreamFault,
)
from ._invocation import ContainerError, Handler, Invocation, InvocationResponse
from ._runtime import LocalRuntime

__all__ = [
    "AsyncDelayFault",
    "AsyncFailureFault",
    "BidirectionalInvocation",
    "BreakStreamFault",
    "ColdStartFault",
    "ConnectionResetFault",
    "ContainerEndpoint",
    "ContainerError",
    "Fault",
    "Handler",
    "Invocation",
    "InvocationResponse",
    "LatencyFault",
    "LocalRuntime",
    "S3ErrorCode",
    "S3ErrorFault",
    "ServiceErrorCode",
    "ServiceErrorFault",
    "SlowFirstPartFault",
    "StallStreamFault",
]
