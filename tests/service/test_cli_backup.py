"""`zhibu backup FILE` and `zhibu restore FILE`: a round trip from the command line, and a refusal."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from service.cli import main
from tests.support import REGISTERED
from tests.workflows.test_backup import PDF, attach_evidence, empty_database, stored
from workflows.engine.db import make_engine, make_session_factory


def test_backup_then_restore_into_an_empty_database(cli, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ZHIBU_EVIDENCE_DIR", str(tmp_path / "store"))
    assert (
        cli("start", "rectification", "--data", json.dumps(REGISTERED), "--actor", "office1").exit_code == 0
    )
    engine = make_engine(db_url)
    attach_evidence(make_session_factory(engine), tmp_path / "store", ("支委会记录.pdf", PDF))
    engine.dispose()
    file = tmp_path / "backups" / "zhibu.backup"

    made = cli("backup", str(file))
    assert made.exit_code == 0, made.output
    method = "SQLite 在线备份" if db_url.startswith("sqlite") else "pg_dump"
    assert f"备份已写入 {file}" in made.output and f"方式：{method}" in made.output
    assert "佐证材料：1 个文件" in made.output
    events = int(re.search(r"审计事件 (\d+) 条", made.output).group(1))

    refused = cli("restore", str(file))  # the database it came from is not empty
    assert refused.exit_code == 1 and "错误：目标数据库不是空的" in refused.output

    with empty_database(db_url, tmp_path) as other:
        monkeypatch.setenv("ZHIBU_EVIDENCE_DIR", str(tmp_path / "restored"))
        env = {"ZHIBU_DATABASE_URL": other, "ZHIBU_NOW": "2026-11-24T10:00:00"}

        def run(*args: str):
            return CliRunner().invoke(main, list(args), env=env)

        done = run("restore", str(file))
        assert done.exit_code == 0, done.output
        assert f"审计链完整：共 {events} 条事件，链尾与备份一致" in done.output
        assert "佐证材料：1 个文件，哈希均已核对" in done.output and "0 处不一致" in done.output
        assert run("check").output.strip() == "0 处不一致"
        verified = run("audit", "verify")
        assert verified.exit_code == 0 and f"共 {events} 条事件" in verified.output
        assert stored(tmp_path / "restored", PDF).read_bytes() == PDF
        again = run("restore", str(file))
        assert again.exit_code == 1 and "错误：目标数据库不是空的" in again.output
