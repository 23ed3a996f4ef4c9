"""README's "Deploying" commands, run as written against the local PostgreSQL and Redis: the demo company is
served by gunicorn, /healthz answers 200 and /metrics shows the task gauges."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL
from tools.deployment import ROOT, free_port, fresh_postgres_schema

REDIS_URL = os.environ.get("ZHIBU_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def deploying_commands() -> str:
    """The shell block between README's deploy markers."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- deploy:begin -->\n```sh\n(.*?)```\n<!-- deploy:end -->", readme, re.S)
    assert block is not None, "README.md lost its Deploying commands"
    return block.group(1)


@pytest.fixture
def schema_url():
    if not POSTGRES_URL:
        pytest.skip("needs ZHIBU_TEST_POSTGRES_URL (CI always sets it)")
    url, drop = fresh_postgres_schema(POSTGRES_URL, prefix="zhibu_deploy")
    yield url
    drop()


def _get(url: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_readme_deploying_commands_serve_the_demo_company(schema_url, tmp_path):
    bind = f"127.0.0.1:{free_port()}"
    # Only what a machine has its own of: the database, Redis, the port, and folders for keys and files.
    env = {
        **os.environ,
        "ZHIBU_DATABASE_URL": schema_url,
        "ZHIBU_RATELIMIT_STORAGE": REDIS_URL,
        "ZHIBU_BIND": bind,
        "ZHIBU_SECRET_KEY": "deploy-test",
        "ZHIBU_AUDIT_KEY_FILE": str(tmp_path / "audit_key"),
        "ZHIBU_EVIDENCE_DIR": str(tmp_path / "evidence"),
        "ZHIBU_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "ZHIBU_CHECKPOINT_KEY": str(tmp_path / "checkpoint_key.pem"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    env.pop("ZHIBU_NOW", None)
    script = tmp_path / "deploy.sh"
    script.write_text("set -euo pipefail\n" + deploying_commands(), encoding="utf-8")
    log = (tmp_path / "deploy.log").open("w")
    shell = subprocess.Popen(
        ["bash", str(script)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        assert shell.wait(timeout=240) == 0, Path(log.name).read_text(encoding="utf-8")
        base = f"http://{bind}"
        status, body = _get(f"{base}/healthz")
        assert status == 200 and json.loads(body)["scheduler"]["schedulers"] >= 1
        status, body = _get(f"{base}/metrics")
        metrics = body.decode()
        assert status == 200
        assert re.search(r'^zhibu_tasks_open\{process="rectification"\} [1-9]', metrics, re.M), metrics
        assert re.search(r'^zhibu_tasks_overdue\{process="branch_programme"\} [1-9]', metrics, re.M)

        # The demo company, through gunicorn: an office login gets a token and sees its inbox.
        sign_in = urllib.request.Request(
            f"{base}/api/v1/auth/token",
            data=json.dumps({"username": "dwgzs1", "password": "zhibu-demo-2026"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(sign_in, timeout=10) as response:
            token = json.loads(response.read())["token"]
        status, body = _get(f"{base}/api/v1/tasks?view=todo", Authorization=f"Bearer {token}")
        assert status == 200 and json.loads(body)["total"] > 0
        status, body = _get(f"{base}/login")
        assert status == 200 and "登录" in body.decode()
    finally:
        _end_group(shell.pid)  # gunicorn and the schedulers the commands left running
        log.close()


def _end_group(group: int) -> None:
    """SIGTERM the process group, wait (up to 20 s) until it is gone, then SIGKILL what is left."""
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)  # processes exiting give nothing to wait on but their absence
    os.killpg(group, signal.SIGKILL)
