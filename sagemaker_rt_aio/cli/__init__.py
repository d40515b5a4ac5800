"""The ``sagemaker-rt-aio`` command: invoke endpoints, stream, run batches, serve and demo locally."""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
