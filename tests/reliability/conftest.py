"""A production-shaped deployment for the reliability tests: PostgreSQL, gunicorn workers, schedulers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.deployment import Deployment, fresh_postgres_schema
from workflows.engine import specs
from workflows.engine.clock import SystemClock
from workflows.engine.db import make_engine, make_session_factory, transaction

POSTGRES_URL = os.environ.get("ZHIBU_TEST_POSTGRES_URL", "").strip()
PROBE = Path(__file__).parent / "probe"


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """A fresh schema with the demo company and the load probe deployed; no process started yet."""
    if not POSTGRES_URL:
        pytest.skip("needs ZHIBU_TEST_POSTGRES_URL (CI always sets it)")
    url, drop = fresh_postgres_schema(POSTGRES_URL, prefix="zhibu_load")
    run = Deployment(url, tmp_path / "deployment")
    for name in ("ZHIBU_DATABASE_URL", "ZHIBU_EVIDENCE_DIR", "ZHIBU_AUDIT_KEY_FILE", "ZHIBU_CHECKPOINT_DIR"):
        monkeypatch.setenv(name, run.env[name])  # this process writes the same trail as the deployment
    monkeypatch.delenv("ZHIBU_NOW", raising=False)
    engine = make_engine(url)
    try:
        run.zhibu("db", "init")
        run.zhibu("demo")
        with transaction(make_session_factory(engine)) as session:
            specs.deploy_all(
                session,
                now=SystemClock().now(),
                actor="tester",
                bpmn_dir=PROBE / "bpmn",
                forms_dir=PROBE / "forms",
            )
        yield run, engine
    finally:
        run.stop()
        engine.dispose()
        drop()
