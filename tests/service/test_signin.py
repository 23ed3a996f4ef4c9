"""Sign-in: only POST signs in, one limit per account, no enumeration by timing, sessions and tokens
that end server-side."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from workflows.engine.db import transaction
from workflows.programme import org, passwords

from .test_app import app_for, signed_in
from .test_web import csrf_of

PASSWORD = "Zhibu-test-2026"


def _signed_in_page(client) -> bool:
    return client.get("/inbox").status_code == 200


def test_head_and_other_methods_never_sign_in(db_url, deployed, clock):
    client = app_for(db_url, clock).test_client()
    head = client.head("/login", data={"username": "office1", "password": PASSWORD})
    assert head.status_code == 200
    assert not _signed_in_page(client)
    for method in ("PUT", "PATCH", "DELETE"):
        refused = client.open("/login", method=method, data={"username": "office1", "password": PASSWORD})
        assert refused.status_code == 405, method
        assert set(refused.headers["Allow"].split(", ")) >= {"GET", "POST"}
        assert not _signed_in_page(client)


def test_one_limit_per_account_across_addresses_and_the_api(db_url, deployed, clock):
    client = app_for(db_url, clock).test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    for n in range(5):  # five guesses, each from another address
        wrong = client.post(
            "/login",
            data={"username": "office1", "password": "nope", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"},
        )
        assert wrong.status_code == 401
    # The sixth, by the API and from yet another address, still counts against the same account.
    api = client.post(
        "/api/v1/auth/token",
        json={"username": "office1", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.1.1"},
    )
    assert api.status_code == 429
    page = client.post("/login", data={"username": "office1", "password": PASSWORD, "csrf_token": token})
    shown = page.get_data(as_text=True)
    assert page.status_code == 429 and "尝试过于频繁" in shown and 'name="password"' in shown
    # Another account is not locked out by it.
    other = client.post("/api/v1/auth/token", json={"username": "secretary1", "password": PASSWORD})
    assert other.status_code == 200


def test_unknown_and_known_names_cost_one_hash_each(db_url, deployed, clock, monkeypatch):
    calls = []
    real = passwords.check_password_hash
    monkeypatch.setattr(passwords, "check_password_hash", lambda h, p: calls.append(h) or real(h, p))
    client = app_for(db_url, clock).test_client()
    for username in ("office1", "nobody-at-all"):
        calls.clear()
        answer = client.post("/api/v1/auth/token", json={"username": username, "password": "wrong-guess-1"})
        assert answer.status_code == 401
        assert len(calls) == 1, username
        assert calls[0].startswith("scrypt:")  # a real hash's cost, not a shortcut


def test_a_session_ends_on_the_server_at_logout(db_url, deployed, clock):
    client = signed_in(app_for(db_url, clock).test_client(), "office1")
    kept = client.get_cookie("session").value
    page = client.get("/inbox").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 302
    replay = app_for(db_url, clock).test_client()
    replay.set_cookie("session", kept)
    assert replay.get("/inbox").status_code == 302  # back to sign-in: the old cookie opens nothing


def test_a_password_change_ends_every_session_and_token(db_url, deployed, clock):
    app = app_for(db_url, clock)
    client = signed_in(app.test_client(), "secretary1")
    token = client.post("/api/v1/auth/token", json={"username": "secretary1", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.get_json()['token']}"}
    assert client.get("/api/v1/tasks", headers=bearer).status_code == 200
    with transaction(deployed) as session:
        assert org.set_password(session, "secretary1", "Another-pass-2026", now=clock.now(), actor="t") == 2
    assert client.get("/inbox").status_code == 302
    assert client.get("/api/v1/tasks", headers=bearer).status_code == 401
    signed_in(app.test_client(), "secretary1", "Another-pass-2026")


def test_tokens_expire_and_can_be_revoked(db_url, deployed, clock):
    client = app_for(db_url, clock).test_client()
    issued = client.post("/api/v1/auth/token", json={"username": "office1", "password": PASSWORD}).get_json()
    assert set(issued) == {"token", "expires_at"}
    bearer = {"Authorization": f"Bearer {issued['token']}"}
    assert client.get("/api/v1/tasks", headers=bearer).status_code == 200
    assert client.delete("/api/v1/auth/token", headers=bearer).status_code == 204
    assert client.get("/api/v1/tasks", headers=bearer).status_code == 401

    second = client.post("/api/v1/auth/token", json={"username": "office1", "password": PASSWORD}).get_json()
    bearer = {"Authorization": f"Bearer {second['token']}"}
    clock.advance(hours=11, minutes=59)
    assert client.get("/api/v1/tasks", headers=bearer).status_code == 200
    clock.advance(minutes=2)
    assert client.get("/api/v1/tasks", headers=bearer).status_code == 401


def test_token_list_and_revoke_from_the_command_line(cli, db_url):
    from service import create_app

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "t", "TESTING": True})
    client = app.test_client()
    tokens = [
        client.post("/api/v1/auth/token", json={"username": u, "password": PASSWORD}).get_json()["token"]
        for u in ("office1", "secretary1", "secretary1")
    ]
    listed = cli("token", "list").output.splitlines()
    assert len(listed) == 3 and sum("secretary1" in line for line in listed) == 2
    first_id = listed[-1].split("\t")[0]  # newest first: the office's token is last
    assert "已吊销令牌" in cli("token", "revoke", first_id).output
    assert client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {tokens[0]}"}).status_code == 401
    assert "2 个令牌或会话" in cli("token", "revoke", "--user", "secretary1").output
    assert client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {tokens[1]}"}).status_code == 401
    assert cli("token", "list").output.strip() == "没有有效的 API 令牌"
    assert cli("token", "revoke").exit_code != 0
    assert cli("token", "revoke", "999").exit_code == 1


def test_user_passwd_from_the_command_line(cli):
    short = cli("user", "passwd", "secretary1", "--password", "short1")
    assert short.exit_code == 1 and "10 个字符" in short.output
    same_as_name = cli("user", "passwd", "secretary1", "--password", "Secretary1")
    assert same_as_name.exit_code == 1 and "与用户名相同" in same_as_name.output
    done = cli("user", "passwd", "secretary1", "--password", "Another-pass-2026")
    assert done.exit_code == 0 and "已修改 secretary1 的密码" in done.output


@pytest.mark.parametrize(
    "password", ["      ", "123456", "secretary1", "password123", "aaaaaaaaaaaa", "qwertyuiop"]
)
def test_weak_passwords_are_refused(password):
    assert passwords.problem("secretary1", password) is not None


def test_a_good_password_is_taken():
    assert passwords.problem("secretary1", "Zhibu-test-2026") is None


def test_sessions_expire_with_their_lifetime(db_url, deployed, clock):
    app = app_for(db_url, clock, PERMANENT_SESSION_LIFETIME=timedelta(hours=1))
    client = signed_in(app.test_client(), "office1")
    assert _signed_in_page(client)
    clock.advance(hours=1, seconds=1)
    assert not _signed_in_page(client)


def test_parallel_guesses_cannot_outrun_the_limit(db_url, deployed, clock):
    app = app_for(db_url, clock)
    start = threading.Barrier(16)

    def guess(n: int) -> int:
        client = app.test_client()
        start.wait()
        body = {"username": "office1", "password": f"wrong-guess-{n}"}
        return client.post("/api/v1/auth/token", json=body).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(guess, range(16)))
    assert codes.count(401) == 5 and codes.count(429) == 11, codes
    limited = app.test_client().post("/api/v1/auth/token", json={"username": "office1", "password": PASSWORD})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"


def test_signing_in_over_a_session_ends_that_session(db_url, deployed, clock):
    app = app_for(db_url, clock)
    client = signed_in(app.test_client(), "office1")
    kept = client.get_cookie("session").value
    token = csrf_of(client.get("/inbox").get_data(as_text=True))
    again = {"username": "secretary1", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=again).status_code == 302  # the same browser, another person
    assert "secretary1" in client.get("/inbox").get_data(as_text=True)
    replay = app.test_client()
    replay.set_cookie("session", kept)
    assert replay.get("/inbox").status_code == 302
