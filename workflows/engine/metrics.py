"""The engine's own Prometheus figures: how long steps take (service-level ones: `service.metrics`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

from prometheus_client import Histogram

# In prometheus' multiprocess mode each process writes files there: a process started beside gunicorn
# (a scheduler, a command) may come first, so the folder is made by whoever needs it.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

P = ParamSpec("P")
T = TypeVar("T")

STEP_SECONDS = Histogram(
    "zhibu_step_seconds",
    "One workflow step from locking the instance to its last statement (the commit excluded), by kind",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def timed(kind: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Observe each call's duration in `zhibu_step_seconds{kind=...}`, failures included."""
    observe = STEP_SECONDS.labels(kind).observe

    def decorate(step: Callable[P, T]) -> Callable[P, T]:
        @wraps(step)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                observe(time.perf_counter() - started)

        return run

    return decorate
