"""The edge: hostile input gets a 4xx and writes nothing, every response carries the security headers,
a failing request renders its error page without the database, and race losers get 409."""

from __future__ import annotations

import http.client
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from service.web import db, signed_in
from tests.service.conftest import dump
from tests.support import ASSIGNED

from .test_app import app_for
from .test_app import signed_in as sign_in
from .test_web import csrf_of

PASSWORD = "Zhibu-test-2026"


@pytest.fixture
def app(db_url, deployed, clock):
    return app_for(db_url, clock)


def _bearer(client, username: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def test_control_characters_are_refused_on_every_kind_of_input(app, db_url, assign_task):
    client = sign_in(app.test_client(), "secretary1")
    api = app.test_client()
    bearer = _bearer(api, "secretary1")
    page = client.get(f"/tasks/{assign_task}").get_data(as_text=True)
    token = csrf_of(page)

    assert client.get("/inbox?q=a%00b").status_code == 400
    assert client.get("/tasks/%00").status_code == 400
    assert api.get("/api/v1/audit?branch=%00", headers=bearer).status_code == 400
    assert api.get(f"/api/v1/tasks/{assign_task}%00", headers=bearer).status_code == 400

    form = client.post(
        f"/tasks/{assign_task}",
        data={
            "csrf_token": token,
            "responsible": "zhangsan",
            "measures": "补齐\x00记录",
            "deadline": "2026-11-30",
        },
    )
    assert form.status_code == 400
    shown = form.get_data(as_text=True)
    assert "含有不允许的控制字符" in shown and "补齐记录" in shown  # by its field, the rest kept

    for body in (
        {"data": {**ASSIGNED, "measures": "a\x00b"}},
        {"data": {**ASSIGNED, "x\x00": "key"}},
        {"data": {**ASSIGNED, "measures": "bell\x07"}},
    ):
        answer = api.post(f"/api/v1/tasks/{assign_task}/complete", json=body, headers=bearer)
        assert answer.status_code == 400
        assert "控制字符" in "".join(answer.get_json()["errors"].values())

    upload = client.post(
        f"/tasks/{assign_task}/files",
        data={"csrf_token": token, "files": (io.BytesIO(b"%PDF-1.4"), "a\x01b.pdf")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 400
    # Tabs and line breaks are text, not control input.
    assert client.get("/inbox?q=a%09b%0Ac").status_code == 200


def test_nothing_is_written_by_refused_input(app, db_url, assign_task):
    client = sign_in(app.test_client(), "secretary1")
    token = csrf_of(client.get(f"/tasks/{assign_task}").get_data(as_text=True))
    api = app.test_client()
    bearer = _bearer(api, "secretary1")
    before = dump(db_url)
    client.post(f"/tasks/{assign_task}", data={"csrf_token": token, **ASSIGNED, "measures": "x\x00"})
    api.post(
        f"/api/v1/tasks/{assign_task}/complete",
        json={"data": {**ASSIGNED, "measures": "\x00"}},
        headers=bearer,
    )
    api.post("/api/v1/rectifications", json={"title": "\x00", "branch": "一支部"}, headers=bearer)
    assert dump(db_url) == before


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_bodies_are_bounded(app, assign_task):
    api = app.test_client()
    bearer = _bearer(api, "secretary1")
    url = f"/api/v1/tasks/{assign_task}/complete"
    deep = api.post(url, data=_nested(5000), content_type="application/json", headers=bearer)
    assert deep.status_code == 400 and "嵌套" in deep.get_json()["errors"]["_body"]
    deep_dict = '{"data":' * 40 + "{}" + "}" * 40
    assert api.post(url, data=deep_dict, content_type="application/json", headers=bearer).status_code == 400
    big = '{"data": {"measures": "' + "长" * 400_000 + '"}}'
    assert api.post(url, data=big, content_type="application/json", headers=bearer).status_code == 400
    for number in ("NaN", "Infinity", "1e999", str(2**70)):
        body = '{"data": {"measures": "x", "n": ' + number + "}}"
        assert api.post(url, data=body, content_type="application/json", headers=bearer).status_code == 400, (
            number
        )
    for body in ("[]", '"office1"', "[1, 2]", "null", "{"):
        answer = api.post("/api/v1/auth/token", data=body, content_type="application/json")
        assert answer.status_code == 400, body
        assert "errors" in answer.get_json()


def test_integers_out_of_range_are_refused(app, db_url):
    client = sign_in(app.test_client(), "office1")
    api = app.test_client()
    bearer = _bearer(api, "office1")
    for query in (
        "instance_id=99999999999999999999",
        "instance_id=2147483648",
        "instance_id=-1",
        "instance_id=abc",
        "limit=-351",
        "limit=0",
        "limit=5001",
        "limit=1e3",
    ):
        answer = api.get(f"/api/v1/audit?{query}", headers=bearer)
        assert answer.status_code == 400, query
        assert answer.get_json()["errors"], query
    assert api.get("/api/v1/audit?instance_id=2147483647&limit=5000", headers=bearer).status_code == 200
    assert client.get("/instances/99999999999999999999").status_code == 404
    assert client.get("/instances/2147483648").status_code == 404
    assert client.get("/files/99999999999").status_code == 404
    assert client.get("/inbox?page=100000000000000000000").status_code == 400
    assert client.get("/ledger?page=-1").status_code == 400
    assert client.get("/trail?instance_id=4294967296").status_code == 400


def test_security_headers_on_every_response(app):
    client = app.test_client()
    for response in (
        client.get("/login"),
        client.get("/api/v1/openapi.json"),
        client.get("/no-such-page"),
        client.get("/static/zhibu.css"),
        client.put("/login"),
    ):
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self';" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in client.get("/login").get_data(as_text=True)  # no inline script for CSP to block
    api_405 = client.get("/api/v1/auth/token")
    assert api_405.status_code == 405 and "POST" in api_405.headers["Allow"]


def test_a_failed_request_renders_its_error_page_without_the_database(db_url, deployed, clock):
    app = app_for(db_url, clock, PROPAGATE_EXCEPTIONS=False)

    @signed_in
    def broken():
        db().execute(text("SELECT * FROM no_such_table"))  # leaves the transaction failed (PostgreSQL)

    app.add_url_rule("/broken", view_func=broken)
    client = sign_in(app.test_client(), "office1")
    answer = client.get("/broken")
    assert answer.status_code == 500
    page = answer.get_data(as_text=True)
    assert "服务器内部错误" in page
    assert client.get("/inbox").status_code == 200  # the next request is fine


def test_every_loser_of_concurrent_completions_gets_409(app, db_url, assign_task):
    clients = [app.test_client() for _ in range(8)]
    bearer = _bearer(clients[0], "secretary1")
    start = threading.Barrier(8)

    def complete(index: int) -> int:
        start.wait()
        answer = clients[index].post(
            f"/api/v1/tasks/{assign_task}/complete", json={"data": ASSIGNED}, headers=bearer
        )
        return answer.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(complete, range(8)))
    assert codes == [200] + [409] * 7


@pytest.fixture
def server(db_url, deployed, clock):
    """The app on a real HTTP server on loopback (chunked bodies need a real server)."""
    app = app_for(db_url, clock, MAX_CONTENT_LENGTH=1024 * 1024)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_port
    httpd.shutdown()
    thread.join(timeout=10)


def _chunked(port: int, path: str, content_type: str, size: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", content_type)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b"a" * 65536
    try:
        for _ in range(size // len(chunk)):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may stop reading once it has said 413
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/login", "application/x-www-form-urlencoded"),
        ("/api/v1/tasks/x/complete", "application/json"),
        ("/api/v1/auth/token", "application/json"),
        ("/tasks/x/files", "multipart/form-data; boundary=zzz"),
    ],
)
def test_bodies_over_the_limit_get_413_chunked_or_not(server, path, content_type):
    assert _chunked(server, path, content_type, 3 * 1024 * 1024) == 413
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    conn.request("POST", path, body=b"a" * (2 * 1024 * 1024), headers={"Content-Type": content_type})
    assert conn.getresponse().status == 413
    conn.close()


def test_the_api_takes_only_the_fields_it_documents(app, db_url):
    api = app.test_client()
    bearer = _bearer(api, "office1")
    before = dump(db_url)
    for body in (
        {},
        {"branch": "", "title": "", "description": "", "source": ""},
        {"title": "x", "extra": 1},
        # a person field beside a malformed branch (found by schemathesis: the person check must not use it)
        {
            "branch": [None, None],
            "deadline": "2000-01-01",
            "description": "0",
            "measures": "0",
            "responsible": "0",
            "source": "其他",
            "standard_item": "",
            "title": "0",
        },
    ):
        answer = api.post("/api/v1/rectifications", json=body, headers=bearer)
        assert answer.status_code == 400, body
    assert (
        api.post("/api/v1/auth/token", json={"username": "office1", "password": "x", "otp": "1"}).status_code
        == 400
    )
    assert api.get("/api/v1/rectifications?status=nonsense", headers=bearer).status_code == 400
    assert dump(db_url) == before


def test_the_api_document_lists_every_answer(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "413", "500"} <= codes, (method, path)
            if operation.get("security") != []:
                assert "401" in codes, (method, path)
    assert "429" in document["paths"]["/auth/token"]["post"]["responses"]


def test_lone_surrogates_are_refused_like_control_characters(app, db_url):
    api = app.test_client()
    bearer = _bearer(api, "office1")
    before = dump(db_url)
    for path, body in (
        ("/api/v1/auth/token", '{"username": "\\ud800", "password": "x"}'),
        ("/api/v1/auth/token", '{"username": "office1", "password": "\\udfff"}'),
        ("/api/v1/rectifications", '{"source": "自查", "title": "a\\ud800", "description": "d"}'),
    ):
        answer = api.post(path, data=body, content_type="application/json", headers=bearer)
        assert answer.status_code == 400, (path, body)
    assert dump(db_url) == before


def test_hostile_page_input_gets_4xx(app, assign_task):
    client = sign_in(app.test_client(), "office1")
    token = csrf_of(client.get("/inbox").get_data(as_text=True))
    assert client.post("/tasks/bogus", data={"csrf_token": token, "x": "a\x00"}).status_code == 400
    for query in ("until=9999-12-31", "since=0001-01-01", "until=2026-13-01"):
        assert client.get(f"/trail?{query}").status_code == 400, query
    assert client.get("/trail?since=2026-01-01&until=2026-12-31").status_code == 200
