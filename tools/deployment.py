"""zhibu run as production runs it, on this machine: gunicorn workers and `zhibu scheduler` processes on a
fresh PostgreSQL schema. Used by the reliability tests, the deployment test and `make bench`.

Everything a run writes (evidence, keys, checkpoints, metrics files, logs) goes to one temporary
folder, which is also the processes' working directory; the schema is dropped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def fresh_postgres_schema(url: str, prefix: str = "zhibu_run") -> tuple[str, Callable[[], None]]:
    """A new, empty schema in the PostgreSQL database at `url`: its URL (search_path set) and a dropper."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Deployment:
    """Web workers and schedulers as real processes over one database; `stop()` ends them all."""

    def __init__(self, database_url: str, folder: Path, **env: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "ZHIBU_DATABASE_URL": database_url,
            "ZHIBU_EVIDENCE_DIR": str(folder / "evidence"),
            "ZHIBU_CHECKPOINT_DIR": str(folder / "checkpoints"),
            "ZHIBU_CHECKPOINT_KEY": str(folder / "checkpoint_key.pem"),
            "ZHIBU_AUDIT_KEY_FILE": str(folder / "audit_key"),
            "ZHIBU_SECRET_KEY": uuid.uuid4().hex,
            **env,
        }
        self.env.pop("ZHIBU_NOW", None)  # real processes on the real clock, unless the caller sets it
        self.env.update(env)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.web: subprocess.Popen | None = None
        self.schedulers: list[subprocess.Popen] = []

    def zhibu(self, *args: str) -> str:
        """Run one `zhibu` command to the end; its output (RuntimeError with its messages if it fails)."""
        done = subprocess.run(
            [str(BIN / "zhibu"), *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            output = done.stderr or done.stdout
            raise RuntimeError(f"zhibu {' '.join(args)} exited {done.returncode}: {output}")
        return done.stdout

    def _spawn(self, name: str, command: list[str], **env: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("ab")
        return subprocess.Popen(
            command, env={**self.env, **env}, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT
        )

    def start_web(self, workers: int) -> None:
        """gunicorn with `workers` sync workers and the repository's gunicorn.conf.py."""
        command = [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--workers", str(workers)]
        command += ["--bind", f"127.0.0.1:{self.port}", "service:create_app()"]
        # Only gunicorn's workers share a metrics folder; commands and schedulers keep theirs in memory.
        self.web = self._spawn("web", command, PROMETHEUS_MULTIPROC_DIR=str(self.folder / "prometheus"))

    def start_scheduler(self, interval: int = 1) -> subprocess.Popen:
        """One more `zhibu scheduler` process."""
        process = self._spawn("scheduler", [str(BIN / "zhibu"), "scheduler", "--interval", str(interval)])
        self.schedulers.append(process)
        return process

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        """GET a path of the service: (status, body)."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_until(self, ready: Callable[[], bool], timeout: float = 60, what: str = "ready") -> None:
        """Poll `ready` until true (a process starting up has no event to wait on); fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"not {what} after {timeout} s; logs in {self.folder}")

    def wait_healthy(self, timeout: float = 60) -> dict:
        """Wait for /healthz to answer 200 (web up, database reachable, a scheduler beating)."""
        self.wait_until(lambda: self.get("/healthz", timeout=2)[0] == 200, timeout, "healthy")
        return json.loads(self.get("/healthz")[1])

    def web_workers(self) -> list[int]:
        """The pids of gunicorn's live workers (children of its master)."""
        if self.web is None:
            return []
        children = Path(f"/proc/{self.web.pid}/task/{self.web.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one web worker; gunicorn's master starts another."""
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """End every process (SIGTERM, then SIGKILL after 10 s)."""
        for process in [*self.schedulers, *([self.web] if self.web else [])]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.schedulers, *([self.web] if self.web else [])]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
