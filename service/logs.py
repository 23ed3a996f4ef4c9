"""Structured logs: one JSON object per line on stderr, for requests, scheduler jobs and errors alike.

`configure()` is called by whatever owns the process (gunicorn's config, `zhibu serve`, `zhibu
scheduler`); the app and the jobs only log with `extra=` fields, so tests and embedders keep their
own logging. `dict_config()` is the same set-up as a `logging.config` dictionary, for gunicorn.
This module imports nothing of zhibu: gunicorn.conf.py loads it by its path, without the app.
"""

from __future__ import annotations

import logging
import logging.config
import os
from typing import Any

from pythonjsonlogger.json import JsonFormatter

FORMAT = "%(levelname)s %(name)s %(message)s"
RENAMED = {"levelname": "level", "name": "logger"}


OPTIONS = {"fmt": FORMAT, "rename_fields": RENAMED, "json_ensure_ascii": False, "timestamp": "time"}


def formatter() -> logging.Formatter:
    """One JSON object per record: level, logger, message, each `extra=` field, the time (UTC, ISO 8601)."""
    return JsonFormatter(**OPTIONS)


def dict_config() -> dict[str, Any]:
    """Root and gunicorn's loggers as JSON lines on stderr (level from ZHIBU_LOG_LEVEL, default INFO)."""
    level = os.environ.get("ZHIBU_LOG_LEVEL", "INFO").upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # By the library's name, not ours: gunicorn's master configures its logging without the app.
        "formatters": {"json": {"()": "pythonjsonlogger.json.JsonFormatter", **OPTIONS}},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # gunicorn's own lines (start, worker boot, worker killed) in the same form, once each.
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            # zhibu writes its own request lines (with the request id); werkzeug's would repeat them.
            "werkzeug": {"level": "WARNING"},
            # zhibu writes one line per job (service/scheduler.py); APScheduler's "executed" would repeat it.
            "apscheduler": {"level": "WARNING"},
        },
    }


def configure() -> None:
    """Send every log record to stderr as one JSON line."""
    logging.config.dictConfig(dict_config())
