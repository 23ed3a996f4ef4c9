"""What every `zhibu` command shares: the database, the acting person, JSON arguments, error output."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Any

import click

from workflows.engine.db import database_url, make_engine, make_session_factory
from workflows.engine.errors import FormInvalid, ZhibuError


def default_actor() -> str:
    return f"cli:{getpass.getuser()}"


def factory():
    return make_session_factory(make_engine(database_url()))


def parse_json(value: str | None, option: str = "--data") -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}）", param_hint=option
        ) from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter('应为 JSON 对象，例如 \'{"title": "..."}\'', param_hint=option)
    return parsed


def fail(exc: ZhibuError) -> None:
    click.echo(f"错误：{exc.message}" if not isinstance(exc, FormInvalid) else "错误：表单填写有误", err=True)
    if isinstance(exc, FormInvalid):
        for field, message in exc.errors.items():
            click.echo(f"  {field}：{message}", err=True)
    sys.exit(1)


class Group(click.Group):
    """Turns domain errors into a message and exit code 1 for every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZhibuError as exc:
            fail(exc)
