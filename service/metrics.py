"""Prometheus metrics at /metrics, and the per-request hooks that count requests and log them.

Counters and histograms live in each process; under gunicorn, `PROMETHEUS_MULTIPROC_DIR` (set by
`service/gunicorn_conf.py`) lets any worker's scrape add up every worker's (and a scheduler's on the
same host). Figures of the whole deployment (open and overdue tasks, timer lag, failed deliveries,
audit chain length, the scheduler's heartbeat) are read from the database at scrape time, so every
worker reports the same.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
import uuid

from flask import Blueprint, Flask, Response, abort, current_app, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from workflows.deadlines import notify
from workflows.engine import health

bp = Blueprint("metrics", __name__)
log = logging.getLogger("zhibu.request")
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"
SECRET_IN_PATH = frozenset({"calendar_feed"})  # endpoints whose URL is the credential: logged by route

REQUESTS = Counter(
    "zhibu_http_requests", "HTTP requests by route, method and status", ["route", "method", "status"]
)
REQUEST_SECONDS = Histogram("zhibu_http_request_seconds", "HTTP request duration by route", ["route"])


class DeploymentCollector:
    """Figures of the whole deployment, read from the database when scraped."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        """The gauges, from one session at the app's clock's now."""
        with self.app.extensions["zhibu.sessions"]() as session:
            figures = health.figures(session, self.app.config["CLOCK"].now())
            failed = notify.failed_deliveries(session)
        open_tasks = GaugeMetricFamily("zhibu_tasks_open", "Open human tasks by process", labels=["process"])
        overdue = GaugeMetricFamily(
            "zhibu_tasks_overdue", "Open tasks past their deadline", labels=["process"]
        )
        for process, count in sorted(figures.open_tasks.items()):
            open_tasks.add_metric([process], count)
            overdue.add_metric([process], figures.overdue_tasks.get(process, 0))
        yield open_tasks
        yield overdue
        yield GaugeMetricFamily(
            "zhibu_timers_due", "Instances with a due timer not yet fired", value=figures.timers_due
        )
        yield GaugeMetricFamily(
            "zhibu_timer_lag_seconds",
            "Age of the oldest due timer not yet fired (0: none)",
            value=figures.timer_lag,
        )
        yield GaugeMetricFamily(
            "zhibu_timers_parked", "Instances whose timer failed too often", value=figures.parked
        )
        yield GaugeMetricFamily(
            "zhibu_deliveries_failed", "Notifications given up after retries", value=failed
        )
        yield GaugeMetricFamily(
            "zhibu_audit_chain_length", "Events in the audit chain", value=figures.audit_events
        )
        age = -1.0 if figures.heartbeat.age_seconds is None else figures.heartbeat.age_seconds
        yield GaugeMetricFamily(
            "zhibu_scheduler_heartbeat_age_seconds",
            "Since any scheduler last finished a job (-1: never)",
            value=age,
        )
        yield GaugeMetricFamily(
            "zhibu_sweep_seconds_last",
            "Duration of the latest timer sweep",
            value=figures.sweep_seconds or 0.0,
        )


@bp.get("/metrics")
def metrics() -> Response:
    """The metrics in Prometheus' text format (a bearer token when ZHIBU_METRICS_TOKEN is set)."""
    token = os.environ.get("ZHIBU_METRICS_TOKEN", "")
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    if token and not secrets.compare_digest(given, f"Bearer {token}".encode()):
        abort(401)
    deployment = CollectorRegistry()
    deployment.register(DeploymentCollector(current_app._get_current_object()))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    body = generate_latest(processes) + generate_latest(deployment)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def logged_path() -> str:
    """The request's path as logs may show it: a route whose URL is a secret shows as its rule."""
    if request.endpoint in SECRET_IN_PATH and request.url_rule is not None:
        return request.url_rule.rule
    return request.path


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every record logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = g.get("request_id")
        return True


def install(app: Flask) -> None:
    """Give every request an id, then count, time and log it as one JSON line."""

    def start_clock():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    app.before_request_funcs.setdefault(None, []).insert(0, start_clock)  # before even the edge checks

    @app.after_request
    def count_and_log(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(route, method, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(route).observe(seconds)
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        user = g.get("api_user") or getattr(g.get("user"), "username", None)
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": method,
                "path": logged_path(),
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "user": user,
                "remote": request.remote_addr,
            },
        )
        return response

    app.logger.addFilter(RequestIdFilter())  # the traceback of a 500 carries the request id too
    app.register_blueprint(bp)
