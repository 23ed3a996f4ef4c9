"""What an operator watches: /healthz with the scheduler's heartbeat, /metrics, and one JSON log line per
request and per job."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from service import create_app, logs, scheduler
from tests.service.test_app import app_for
from tests.support import REGISTERED, Driver, deploy_timer_process
from workflows.engine import health, runner
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.models import AuditHead, TaskRecord


@pytest.fixture
def app(db_url, deployed, clock, monkeypatch):
    monkeypatch.setenv("ZHIBU_NOW", clock.now().isoformat())  # the scheduler reads its time from there
    return app_for(db_url, clock)


def _metrics(client) -> dict[tuple[str, tuple], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for sample in family.samples
    }


def test_healthz_is_503_until_a_scheduler_beats_and_again_when_it_stops(app, factory, clock):
    client = app.test_client()
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.get_json()["status"] == "stale" and answer.get_json()["scheduler"]["schedulers"] == 0

    scheduler.run_once(factory)
    answer = client.get("/healthz")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["scheduler"]["schedulers"] == 1 and body["scheduler"]["age_seconds"] == 0
    assert body["scheduler"]["failing_jobs"] == []

    clock.advance(seconds=health.STALE_AFTER.total_seconds() - 1)
    assert client.get("/healthz").status_code == 200
    clock.advance(seconds=2)
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.get_json()["status"] == "stale"
    assert answer.get_json()["scheduler"]["age_seconds"] == health.STALE_AFTER.total_seconds() + 1


def test_healthz_is_503_when_the_database_cannot_be_reached():
    closed = "postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2"
    answer = create_app({"DATABASE_URL": closed, "SECRET_KEY": "t"}).test_client().get("/healthz")
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "error", "database": "unreachable"}


def test_a_failing_job_is_logged_recorded_and_named_on_healthz(app, factory, caplog):
    def broken():
        raise RuntimeError("mail server gone")

    with caplog.at_level(logging.INFO, logger="zhibu.scheduler"):
        assert scheduler.run_job(factory, "deliver", broken, "host:1") is None
        with pytest.raises(RuntimeError):
            scheduler.run_job(factory, "deliver", broken, "host:1", reraise=True)
    line = [r for r in caplog.records if r.getMessage() == "job"][-1]
    assert line.job == "deliver" and line.ok is False and "mail server gone" in line.result
    assert isinstance(line.duration_ms, float)
    with factory() as session:
        (run,) = session.scalars(select(health.JobRun)).all()
        assert (run.scheduler, run.job, run.ok) == ("host:1", "deliver", False)
        assert run.error == "RuntimeError: mail server gone"
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200  # the scheduler is alive; what fails is named
    assert answer.get_json()["scheduler"]["failing_jobs"] == ["deliver"]


def test_metrics_report_tasks_timers_the_trail_and_requests(app, db_url, factory, clock, tmp_path):
    deploy_timer_process(factory, clock, tmp_path, "ticker")  # due 2026-11-25 00:00 Beijing time
    driver = Driver(db_url, clock, "straight")
    driver.start(None, process="ticker")
    driver.start(REGISTERED, actor="office1")
    driver.close()
    client = app.test_client()
    client.get("/healthz")
    before = _metrics(client)
    client.get("/healthz")
    client.get("/no/such/page")
    figures = _metrics(client)
    with factory() as session:
        open_rectification = session.scalar(
            select(func.count()).where(TaskRecord.status == "open", TaskRecord.process_id == "rectification")
        )
        head = session.scalar(select(AuditHead.seq))
    assert open_rectification == 1
    assert figures[("zhibu_tasks_open", (("process", "rectification"),))] == open_rectification
    assert figures[("zhibu_tasks_overdue", (("process", "rectification"),))] == 0
    assert figures[("zhibu_audit_chain_length", ())] == head
    assert figures[("zhibu_timers_due", ())] == 0 and figures[("zhibu_timer_lag_seconds", ())] == 0
    assert figures[("zhibu_scheduler_heartbeat_age_seconds", ())] == -1  # no scheduler ever ran
    healthz = ("zhibu_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "503")))
    assert figures[healthz] == before[healthz] + 1
    unmatched = (
        "zhibu_http_requests_total",
        (("method", "GET"), ("route", "(unmatched)"), ("status", "404")),
    )
    assert figures[unmatched] == before.get(unmatched, 0) + 1

    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=LOCAL_TZ))  # the ticker's timer is 9 hours late
    figures = _metrics(client)
    assert figures[("zhibu_timers_due", ())] == 1
    assert figures[("zhibu_timer_lag_seconds", ())] == 9 * 3600
    fired_before = figures[("zhibu_step_seconds_count", (("kind", "timer"),))]
    assert runner.sweep(factory, clock=clock).fired == 1
    figures = _metrics(client)
    assert figures[("zhibu_timers_due", ())] == 0 and figures[("zhibu_timer_lag_seconds", ())] == 0
    assert figures[("zhibu_step_seconds_count", (("kind", "timer"),))] == fired_before + 1


def test_metrics_can_require_a_token(app, monkeypatch):
    monkeypatch.setenv("ZHIBU_METRICS_TOKEN", "s3cret")
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_each_request_is_one_json_line_with_its_request_id(app, caplog):
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="zhibu.request"):
        given = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.1"})
        made = client.get("/login", headers={"X-Request-ID": "not an id; x=1"})
    assert given.headers["X-Request-ID"] == "lb-7f3a.1"
    assert made.headers["X-Request-ID"] != "not an id; x=1" and len(made.headers["X-Request-ID"]) == 32
    first, second = (
        json.loads(logs.formatter().format(r)) for r in caplog.records if r.name == "zhibu.request"
    )
    assert first["request_id"] == "lb-7f3a.1" and first["route"] == "/healthz" and first["status"] == 503
    assert first["level"] == "INFO" and first["message"] == "request" and first["method"] == "GET"
    assert isinstance(first["duration_ms"], float) and first["time"].endswith("+00:00")
    assert second["request_id"] == made.headers["X-Request-ID"] and second["status"] == 200


def test_metrics_labels_stay_bounded_and_a_strange_token_is_a_401(app, monkeypatch):
    client = app.test_client()
    before = _metrics(client)
    assert client.open("/healthz", method="FOOBARBAZ").status_code == 405
    after = _metrics(client)
    other = ("zhibu_http_requests_total", (("method", "other"), ("route", "(unmatched)"), ("status", "405")))
    assert after[other] == before.get(other, 0) + 1
    assert not [key for key in after if ("method", "FOOBARBAZ") in key[1]]
    monkeypatch.setenv("ZHIBU_METRICS_TOKEN", "s3cret")
    assert client.get("/metrics", headers={"Authorization": "Bearer café"}).status_code == 401


def test_logs_never_show_a_calendar_feed_token_and_a_500_carries_its_request_id(app, caplog):
    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/boom", view_func=boom)
    client = app.test_client()
    with caplog.at_level(logging.INFO):
        client.get("/calendar/secret-feed-token.ics")
        assert client.get("/boom", headers={"X-Request-ID": "req-500"}).status_code == 500
    assert "secret-feed-token" not in caplog.text
    feed = next(r for r in caplog.records if r.name == "zhibu.request" and "calendar" in r.route)
    assert feed.path == "/calendar/<token>.ics"
    failure = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert failure.request_id == "req-500" and failure.exc_info is not None


def test_forwarded_headers_are_believed_only_from_the_proxy(db_url, deployed, clock, monkeypatch, caplog):
    monkeypatch.setenv("ZHIBU_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("ZHIBU_FORWARDED_ALLOW_IPS", "10.0.0.5")
    client = app_for(db_url, clock).test_client()
    forwarded = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Prefix": "//evil",
    }
    with caplog.at_level(logging.INFO, logger="zhibu.request"):
        via_proxy = client.get("/", headers=forwarded, environ_base={"REMOTE_ADDR": "10.0.0.5"})
        direct = client.get("/", headers=forwarded, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert via_proxy.headers["Location"] == direct.headers["Location"] == "/login"  # never the prefix
    remotes = [r.remote for r in caplog.records if r.name == "zhibu.request"]
    assert remotes == ["203.0.113.9", "198.51.100.7"]
