"""E-mail and webhook delivery against real servers on loopback; failures are retried and recorded."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from workflows.deadlines import jobs, notify
from workflows.deadlines.channels import SmtpSettings
from workflows.engine.db import transaction
from workflows.engine.models import AuditEvent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, SmtpSettings(host="127.0.0.1", port=controller.port, sender="zhibu@example.cn")
    controller.stop()


@pytest.fixture
def webhook():
    """A robot endpoint that refuses the first call (HTTP 500) and accepts the rest."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
            received.append(body)
            ok = len(received) > 1
            self.send_response(200 if ok else 500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}' if ok else b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, f"http://127.0.0.1:{server.server_address[1]}/robot/send?key=test"
    server.shutdown()
    server.server_close()


def deliveries(factory) -> list[tuple[str, str, int]]:
    with factory() as session:
        rows = session.scalars(select(notify.Delivery).order_by(notify.Delivery.channel))
        return [(d.channel, d.status, d.attempts) for d in rows]


def audited(factory) -> list[tuple[str, str]]:
    with factory() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("notification.deliver%")).order_by(AuditEvent.seq)
        )
        return [(e.action, json.loads(e.data)["channel"]) for e in events]


def test_email_and_webhook_delivered_and_retried(deployed, clock, smtp, webhook):
    mails, settings = smtp
    calls, url = webhook
    with transaction(deployed) as session:
        notify.set_preferences(
            session,
            "zhangsan",
            email="zhangsan@example.cn",
            webhook_url=url,
            email_enabled=True,
            webhook_enabled=True,
        )
        notify.send(
            session,
            ["zhangsan"],
            kind="escalation",
            title="【逾期】支委会记录不全",
            body="请及时整改。",
            now=clock.now(),
            actor="tester",
        )
    first = jobs.deliver(deployed, clock=clock, smtp=settings)
    assert (first.sent, first.failed) == (1, 1)
    [mail] = mails.messages
    assert mail["To"] == "zhangsan@example.cn" and mail["Subject"] == "【逾期】支委会记录不全"
    assert "请及时整改。" in mail.get_content()
    assert calls[0]["msgtype"] == "text" and "支委会记录不全" in calls[0]["text"]["content"]
    assert deliveries(deployed) == [("email", "sent", 1), ("webhook", "pending", 1)]
    assert jobs.deliver(deployed, clock=clock, smtp=settings).sent == 0  # not before its backoff
    clock.advance(minutes=1)
    assert jobs.deliver(deployed, clock=clock, smtp=settings).sent == 1
    assert deliveries(deployed) == [("email", "sent", 1), ("webhook", "sent", 2)]
    assert len(mails.messages) == 1 and len(calls) == 2
    assert audited(deployed) == [
        ("notification.delivered", "email"),
        ("notification.delivery_failed", "webhook"),
        ("notification.delivered", "webhook"),
    ]


def test_a_dead_mail_server_is_retried_with_backoff_then_given_up(deployed, clock):
    dead = SmtpSettings(host="127.0.0.1", port=free_port())
    with transaction(deployed) as session:
        notify.set_preferences(session, "zhangsan", email="zhangsan@example.cn", email_enabled=True)
        notify.send(session, ["zhangsan"], kind="escalation", title="t", body="b", now=clock.now(), actor="t")
    waits = []
    for attempt in range(1, notify.MAX_ATTEMPTS + 1):
        assert jobs.deliver(deployed, clock=clock, smtp=dead).failed == 1
        with deployed() as session:
            delivery = session.scalars(select(notify.Delivery)).one()
            assert delivery.attempts == attempt and "邮件发送失败" in delivery.last_error
            waits.append(delivery.next_attempt_at - clock.now())
        clock.advance(hours=1)
    assert delivery.status == "failed"
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert jobs.deliver(deployed, clock=clock, smtp=dead).failed == 0  # given up: never tried again
    with deployed() as session:  # the in-app notification is there regardless
        assert notify.unread_count(session, "zhangsan") == 1


def test_an_expired_lease_is_taken_again(deployed, clock):
    with transaction(deployed) as session:
        notify.set_preferences(session, "zhangsan", email="z@example.cn", email_enabled=True)
        notify.send(session, ["zhangsan"], kind="escalation", title="t", body="b", now=clock.now(), actor="t")
    with transaction(deployed) as session:
        assert len(notify.claim(session, clock.now())) == 1  # a scheduler took it, then died
    with transaction(deployed) as session:
        assert notify.claim(session, clock.now()) == []  # leased
    clock.advance(minutes=3)
    with transaction(deployed) as session:
        assert len(notify.claim(session, clock.now())) == 1
