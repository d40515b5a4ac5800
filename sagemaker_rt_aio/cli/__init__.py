"""The ``sagemaker-rt-aio`` command: invoke endpoints, stream, run batches, serve and demo locally."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    import sys

    try:
        # Imported here so that a Ctrl-C while the command starts is an exit, not a traceback.
        from ._main import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return run(argv)


__all__ = ["main"]
