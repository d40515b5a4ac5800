"""Global options (AWS CLI names), accepted before and after the command, and what they configure.

argparse only knows options of the parser that parses them, so every subcommand gets a copy of the
global options. The copies default to ``SUPPRESS``: an option not given after the command leaves
the value given (or defaulted) before it untouched.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from .._constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCK_READ_TIMEOUT
from ._exit import UsageError

LIBRARY_LOGGER = "sagemaker_rt_aio"


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes; ``top`` is the main parser (the one holding defaults)."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--region", default=default(None), help="AWS region (default: environment, then profile)"
    )
    group.add_argument("--profile", default=default(None), help="a profile from ~/.aws/config")
    group.add_argument(
        "--endpoint-url", default=default(None), help="send requests here instead of AWS"
    )
    group.add_argument(
        "--s3-endpoint-url", default=default(None), help="S3 endpoint for async results"
    )
    group.add_argument(
        "--allow-http",
        action="store_true",
        default=default(False),
        help="allow plain http:// to a non-loopback host",
    )
    group.add_argument(
        "--ca-bundle",
        metavar="PATH",
        default=default(None),
        help="CA certificate bundle to verify TLS with (default: AWS_CA_BUNDLE, ca_bundle)",
    )
    group.add_argument(
        "--no-verify-ssl",
        action="store_true",
        default=default(False),
        help="do not verify TLS certificates (unsafe)",
    )
    group.add_argument(
        "--cli-read-timeout",
        type=seconds,
        metavar="SECONDS",
        default=default(None),
        help=f"socket read timeout; 0 means none (default {DEFAULT_SOCK_READ_TIMEOUT:g})",
    )
    group.add_argument(
        "--cli-connect-timeout",
        type=seconds,
        metavar="SECONDS",
        default=default(None),
        help=f"connect timeout; 0 means none (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="log the library's requests and retries to stderr (secrets redacted)",
    )
    group.add_argument(
        "--version", action="version", version=version_text(), help="print the version and exit"
    )


def version_text() -> str:
    """Like ``aws --version``: this tool's version, then the parts it runs on."""
    import platform

    import botocore

    from .. import __version__

    return (
        f"sagemaker-rt-aio/{__version__} Python/{platform.python_version()} "
        f"{platform.system()}/{platform.release()} aiohttp/{aiohttp.__version__} "
        f"botocore/{botocore.__version__}"
    )


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """Client constructor arguments from the global options.

    Arguments the user did not give are left out, so that the client resolves them as boto3 would
    (environment, shared config); ``verify`` in particular is passed only when asked for.
    """
    options: dict[str, Any] = {
        "profile_name": args.profile,
        "endpoint_url": args.endpoint_url,
        "s3_endpoint_url": args.s3_endpoint_url,
        "allow_http": args.allow_http,
    }
    if args.no_verify_ssl and args.ca_bundle:
        raise UsageError("--ca-bundle and --no-verify-ssl cannot be used together")
    if args.no_verify_ssl:
        options["verify"] = False
    elif args.ca_bundle:
        bundle = Path(args.ca_bundle).expanduser()
        if not bundle.is_file():
            raise UsageError(f"--ca-bundle: no such file: {args.ca_bundle}")
        options["verify"] = str(bundle)
    if args.cli_read_timeout is not None or args.cli_connect_timeout is not None:
        options["timeout"] = cli_timeout(args.cli_read_timeout, args.cli_connect_timeout)
    return options


# "No timeout" for the client: it reads a None field as "the default" and refuses 0 as a mistake,
# so no timeout is a bound no call reaches (about 31 years; finite, as aiohttp rounds it up).
NO_TIMEOUT = 1e9


def cli_timeout(read: float | None, connect: float | None) -> aiohttp.ClientTimeout:
    """The AWS CLI's semantics: an option not given keeps the default, and 0 means no timeout."""

    def pick(value: float | None, default: float) -> float:
        if value is None:
            return default
        return NO_TIMEOUT if value == 0 else value

    return aiohttp.ClientTimeout(
        total=None,
        sock_read=pick(read, DEFAULT_SOCK_READ_TIMEOUT),
        sock_connect=pick(connect, DEFAULT_CONNECT_TIMEOUT),
    )


# A second line of defence behind the library's own redaction: whatever a log record holds, these
# never reach the terminal.
_SECRET_PATTERNS = (
    (re.compile(r"(Signature=)[0-9a-fA-F]{16,}"), r"\1<redacted>"),
    (re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*['\"]?)[^'\",\s}]+"), r"\1<redacted>"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1<redacted>"),
    (re.compile(r"sagemaker-api-key-[A-Za-z0-9._~+/=-]+"), "sagemaker-api-key-<redacted>"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@contextmanager
def debug_logging(enabled: bool) -> Iterator[None]:
    """``--debug``: the library's loggers at DEBUG on stderr for the command's duration."""
    if not enabled:
        yield
        return
    logger = logging.getLogger(LIBRARY_LOGGER)
    # A handler already there (SAGEMAKER_RT_AIO_LOG's, the application's) prints it: not twice.
    handler: logging.Handler | None = None
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            _RedactingFormatter("%(asctime)s %(name)s [%(levelname)s] %(message)s")
        )
        logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(previous)
