"""Exit codes (the AWS CLI's), and the one line a person reads when a command fails."""

from __future__ import annotations

import re

import botocore.exceptions

from .._errors import (
    AsyncInferenceFailure,
    CredentialsError,
    NoRegionError,
    ParamValidationError,
    SageMakerRuntimeError,
    ServiceError,
)

EXIT_OK = 0
#: Some items of a ``batch`` failed (or have an unknown outcome); the command itself ran. The AWS
#: CLI uses 1 the same way for ``aws s3`` transfers that failed.
EXIT_ITEMS_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_USAGE = 252
EXIT_CONFIG = 253
EXIT_SERVICE = 254
EXIT_OTHER = 255

EPILOG = """\
exit codes (as the AWS CLI's):
  0    success
  1    batch: some lines failed or have an unknown outcome (see --output)
  130  interrupted (Ctrl-C)
  252  usage: bad or missing arguments, unreadable --body file; nothing was sent
  253  configuration: no region, no credentials, unknown --profile
  254  the service (or the model) answered with an error
  255  any other error: connection, timeout, TLS, I/O

global options (--region, --debug, ...) go before or after the command."""

# Client arguments whose bad value is the environment's fault, not the command line's.
_CONFIG_FIELDS = frozenset({"profile_name", "region_name"})


class UsageError(Exception):
    """The command line cannot run as given (exit 252). Raised by the parser and by commands."""


class CommandError(Exception):
    """A command failed for a reason its message says in full (exit 255)."""


# botocore's errors for a broken shared config or credential setup: the environment's fault.
_BOTOCORE_CONFIG_ERRORS = (
    botocore.exceptions.ConfigParseError,
    botocore.exceptions.ConfigNotFound,
    botocore.exceptions.ProfileNotFound,
    botocore.exceptions.InvalidConfigError,
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.CredentialRetrievalError,
    botocore.exceptions.UnknownCredentialError,
)


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, (NoRegionError, CredentialsError, *_BOTOCORE_CONFIG_ERRORS)):
        return EXIT_CONFIG
    if isinstance(error, ParamValidationError):
        return EXIT_CONFIG if error.field in _CONFIG_FIELDS else EXIT_USAGE
    if isinstance(error, (ServiceError, AsyncInferenceFailure)):
        return EXIT_SERVICE
    return EXIT_OTHER


def describe_error(error: BaseException) -> str:
    """One line for a person: what failed, and the request id to quote to AWS support."""
    if isinstance(error, (UsageError, CommandError)):
        text = str(error)
    elif isinstance(error, ServiceError):
        text = f"{error.code} (HTTP {error.status_code}): {error.message or ''}".rstrip(": ")
        if error.request_id:
            text += f" [request id {error.request_id}]"
    elif isinstance(error, SageMakerRuntimeError):
        text = f"{type(error).__name__}: {error}"
    elif isinstance(error, OSError) and error.strerror:
        # "FileNotFoundError: [Errno 2] No such file or directory: 'x'" says it twice.
        where = f": {error.filename}" if error.filename else ""
        text = f"{type(error).__name__}: {error.strerror}{where}"
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    # One line, whatever the message holds (a model's error text may span several).
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()
