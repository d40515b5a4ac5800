"""One environment switch for the library's own logging: ``SAGEMAKER_RT_AIO_LOG=debug``.

The library logs to the ``sagemaker_rt_aio`` logger tree and, like any library, adds no handler of
its own: the application decides. For a quick look without touching the application, set
``SAGEMAKER_RT_AIO_LOG`` to ``debug`` (or ``info``, ``warning``, ``error``; ``1``/``true`` mean
``debug``) and the library logs at that level to stderr. It is read when the package is imported
and again when a client is built. Log lines never carry credentials, signatures, session tokens,
custom attributes or bodies (the pipeline logs headers through ``_transport.redacted``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

LOG_ENV_VAR = "SAGEMAKER_RT_AIO_LOG"
LOGGER_NAME = "sagemaker_rt_aio"

_LEVELS = {
    "debug": logging.DEBUG,
    "1": logging.DEBUG,
    "true": logging.DEBUG,
    "yes": logging.DEBUG,
    "on": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_OFF = frozenset({"", "0", "false", "no", "off", "none"})
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler the switch installs (recognised so that it is installed once)."""


def configure_logging_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    """Apply ``SAGEMAKER_RT_AIO_LOG``; return the level it set, or None when it is off."""
    value = (environ if environ is not None else os.environ).get(LOG_ENV_VAR, "")
    value = value.strip().lower()
    if value in _OFF:
        return None
    logger = logging.getLogger(LOGGER_NAME)
    level = _LEVELS.get(value)
    if level is None:
        logger.warning("%s=%r is not a log level (debug, info, warning, error)", LOG_ENV_VAR, value)
        return None
    if not any(isinstance(handler, _EnvHandler) for handler in logger.handlers):
        handler = _EnvHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(level)
    return level
