"""Commands for operators: back up the database with the evidence files; restore into an empty database."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from workflows import backup as backups
from workflows.engine.clock import LOCAL_TZ, clock_from_env
from workflows.engine.db import database_url, make_engine
from workflows.programme import evidence

_METHODS = {"sqlite-backup": "SQLite 在线备份", "pg_dump": "pg_dump", "copy": "逻辑导出（COPY）"}


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--logical", is_flag=True, help="PostgreSQL：不用 pg_dump，改用逻辑导出（COPY）")
def backup(file: Path, logical: bool) -> None:
    """备份数据库与佐证材料到一个文件（服务运行时也可备份；不含审计链密钥）。"""
    engine = make_engine(database_url())
    made = backups.backup(
        engine, file, evidence_root=evidence.store_root(), now=clock_from_env().now(), logical=logical
    )
    click.echo(f"备份已写入 {made.file}（{_size(made.size)}，仅所有者可读）")
    click.echo(f"数据库：{made.dialect}，表结构版本 {made.revision}，方式：{_METHODS[made.method]}")
    click.echo(f"数据：{made.tables} 张表，共 {made.rows} 行")
    click.echo(f"审计事件 {made.events} 条，链尾 {made.head_hash[:16]}…")
    click.echo(f"佐证材料：{made.evidence} 个文件")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def restore(file: Path) -> None:
    """把备份恢复到空数据库，核对审计链与 zhibu check 后才报告成功（需要制作备份时的审计链密钥）。"""
    engine = make_engine(database_url())
    done = backups.restore(engine, file, evidence_root=evidence.store_root())
    made_at = datetime.fromisoformat(done.created_at).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    click.echo(
        f"已从 {done.file}（制作于 {made_at}）恢复到 {engine.url.render_as_string(hide_password=True)}"
    )
    upgraded = f"，已升级到 {done.upgraded_to}" if done.upgraded_to != done.revision else ""
    click.echo(f"数据：{done.tables} 张表，共 {done.rows} 行；表结构版本 {done.revision}{upgraded}")
    click.echo(f"审计链完整：共 {done.events} 条事件，链尾与备份一致（{done.head_hash[:16]}…）")
    click.echo(f"佐证材料：{done.evidence} 个文件，哈希均已核对")
    click.echo("0 处不一致")


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} KB"
