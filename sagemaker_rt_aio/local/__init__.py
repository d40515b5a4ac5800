"""An embedded SageMaker Runtime for tests: real HTTP, the service's wire protocol, no AWS.

::

    from sagemaker_rt_aio.local import LocalRuntime

    async def echo(invocation):
        return invocation.body

    async with LocalRuntime() as runtime:
        runtime.add_endpoint("echo", echo)
        ...  # any SageMaker Runtime client (this library, boto3, aiobotocore) at runtime.url

The pytest fixture ``sagemaker_local_runtime`` lives in ``sagemaker_rt_aio.local.pytest_plugin``.
"""

from __future__ import annotations

from ._bidi import BidirectionalInvocation
from ._invocation import ContainerError, Handler, Invocation, InvocationResponse
from ._runtime import LocalRuntime

__all__ = [
    "BidirectionalInvocation",
    "ContainerError",
    "Handler",
    "Invocation",
    "InvocationResponse",
    "LocalRuntime",
]
