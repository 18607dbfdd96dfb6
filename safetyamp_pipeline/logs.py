"""Log format of every process that loads the code location (code server, run pods).

``SAFETYAMP_LOG_FORMAT=json`` (the old service's ``LOG_FORMAT=json``, for Log Analytics) makes
every stdout/stderr log handler of the process write one JSON object per line, formatted by
python-json-logger. The instance config can use the same formatter for Dagster's own run logs
(``python_logs.dagster_handler_config``, helm-values.yaml). The values of the secret variables
are replaced by ``***`` in every line, whatever a message happens to quote.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

LOG_FORMAT_ENV = "SAFETYAMP_LOG_FORMAT"
SECRET_ENV_NAMES = (
    "SAFETYAMP_TOKEN",
    "SAMSARA_API_TOKEN",
    "MS_GRAPH_CLIENT_SECRET",
    "SQL_PASSWORD",
)
# Dagster attaches its whole event (with step metadata) to its log records; the message holds
# what a reader needs, so the event object stays out of the line.
_DROPPED_ATTRS = ("dagster_meta", "dagster_event", "dagster_event_batch_metadata", "color_message")
_FIELDS = "{asctime}{levelname}{name}{message}"


def _secret_values(env: Mapping[str, str]) -> list[str]:
    return [value for name in SECRET_ENV_NAMES if len(value := env.get(name, "")) >= 4]


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger's formatter with the project's field names and secret redaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", _FIELDS)
        kwargs.setdefault("style", "{")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault(
            "reserved_attrs",
            [*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime", *_DROPPED_ATTRS],
        )
        super().__init__(*args, **kwargs)
        self._secrets = _secret_values(os.environ)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        for secret in self._secrets:
            line = line.replace(secret, "***")
        return line


def _stream_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    return [
        handler
        for logger in loggers
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
    ]


def configure_logging(env: Mapping[str, str] | None = None) -> bool:
    """Apply ``SAFETYAMP_LOG_FORMAT``; True when JSON lines are on. Idempotent.

    Without any handler yet (a plain process), the root logger gets one on stdout."""
    env = os.environ if env is None else env
    wanted = (env.get(LOG_FORMAT_ENV) or "text").strip().lower()
    if wanted not in {"text", "json"}:
        raise ValueError(f"{LOG_FORMAT_ENV} must be 'text' or 'json', not {wanted!r}")
    if wanted != "json":
        return False
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        root.addHandler(logging.StreamHandler(sys.stdout))
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
    for handler in _stream_handlers():
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
    return True
