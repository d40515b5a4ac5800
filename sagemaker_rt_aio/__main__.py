"""``python -m sagemaker_rt_aio``: the command-line interface."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
