"""Sending a message out: e-mail over SMTP and a WeCom/DingTalk-style JSON webhook.

Settings come from the environment (`ZHIBU_SMTP_HOST`, `ZHIBU_SMTP_PORT`, `ZHIBU_SMTP_FROM`,
`ZHIBU_SMTP_USER`, `ZHIBU_SMTP_PASSWORD`, `ZHIBU_SMTP_STARTTLS`). Every failure is a
`DeliveryError` with a readable reason; the caller records it and retries later.
"""

from __future__ import annotations

import json
import os
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage

TIMEOUT_SECONDS = 10


class DeliveryError(Exception):
    """A message could not be handed over."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and as whom e-mail is sent."""

    host: str
    port: int = 25
    sender: str = "zhibu@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        """Settings from the environment, or None when no SMTP host is configured."""
        host = os.environ.get("ZHIBU_SMTP_HOST", "").strip()
        if not host:
            return None
        return cls(
            host=host,
            port=int(os.environ.get("ZHIBU_SMTP_PORT", "25")),
            sender=os.environ.get("ZHIBU_SMTP_FROM", "zhibu@localhost"),
            user=os.environ.get("ZHIBU_SMTP_USER") or None,
            password=os.environ.get("ZHIBU_SMTP_PASSWORD") or None,
            starttls=os.environ.get("ZHIBU_SMTP_STARTTLS", "") in ("1", "true", "yes"),
        )


def send_email(settings: SmtpSettings | None, to: str, subject: str, body: str) -> None:
    """Send one plain-text UTF-8 e-mail."""
    if settings is None:
        raise DeliveryError("未配置邮件服务器（ZHIBU_SMTP_HOST）")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.sender, to, subject
    message.set_content(body)
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"邮件发送失败：{type(exc).__name__}: {exc}") from exc


def send_webhook(url: str, subject: str, body: str) -> None:
    """POST a text message the way WeCom and DingTalk group robots accept it."""
    payload = json.dumps({"msgtype": "text", "text": {"content": f"{subject}\n{body}"}}, ensure_ascii=False)
    request = urllib.request.Request(
        url, data=payload.encode("utf-8"), headers={"Content-Type": "application/json; charset=utf-8"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            answer = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"Webhook 返回 HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise DeliveryError(f"Webhook 无法送达：{exc}") from exc
    try:
        code = json.loads(answer).get("errcode", 0) if answer.strip() else 0
    except (json.JSONDecodeError, AttributeError):
        code = 0
    if code:
        raise DeliveryError(f"Webhook 拒收：errcode={code}")
