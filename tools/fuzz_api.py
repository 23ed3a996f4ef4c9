"""Fuzz /api/v1 with schemathesis (every check) against a fresh demo company, bounded and reproducible.

    python -m tools.fuzz_api [--database-url URL] [--examples N] [--seed S]

The database is a fresh SQLite file, or a fresh schema in the given PostgreSQL database; the demo
company is loaded into it and the app is served on a loopback port. schemathesis signs in as the
office (`dwgzs1`, see tools/schemathesis.toml), whose reach is the whole company. Exits with
schemathesis's exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from werkzeug.serving import make_server

from tools.deployment import fresh_postgres_schema


def _fresh_database(url: str | None, folder: Path) -> tuple[str, Callable[[], None]]:
    if not url:
        return f"sqlite:///{folder / 'fuzz.db'}", lambda: None
    return fresh_postgres_schema(url, prefix="zhibu_fuzz")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--examples", type=int, default=25, help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="zhibu-fuzz-"))
    url, drop = _fresh_database(args.database_url, folder)
    env = {
        **os.environ,
        "ZHIBU_DATABASE_URL": url,
        "ZHIBU_EVIDENCE_DIR": str(folder / "evidence"),
        "ZHIBU_CHECKPOINT_DIR": str(folder / "checkpoints"),
    }
    os.environ.update(env)
    bin_dir = Path(sys.executable).parent
    try:
        for command in (["db", "init"], ["demo"]):
            subprocess.run([str(bin_dir / "zhibu"), *command], env=env, check=True, stdout=subprocess.DEVNULL)

        from service import create_app  # after the environment names the database

        app = create_app({"SECRET_KEY": "fuzz"})
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # thousands of requests: report, not log
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}/api/v1"
        command = [
            str(bin_dir / "schemathesis"),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{base}/openapi.json",
            "--url",
            base,
            "--checks",
            "all",
            "--max-examples",
            str(args.examples),
            "--seed",
            str(args.seed),
            "--generation-database",
            "none",
            "--no-color",
            "--request-timeout",
            "30",
        ]
        print("schemathesis against", url.split("?")[0], flush=True)
        result = subprocess.run(command, env=env, check=False)
        server.shutdown()
        return result.returncode
    finally:
        drop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
