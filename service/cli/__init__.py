"""The `zhibu` command: parse arguments, call one `workflows` function per command, print.

Each command that writes is one unit of work (one transaction). Errors print a readable message
in Chinese on stderr and exit non-zero (1 for a refused action, 2 for a malformed argument);
nothing is half-written. Commands live in one module per area; this assembles them.
"""

from __future__ import annotations

import click

from service.cli import deadlines, engine, ops, programme
from service.cli.common import Group


@click.group(cls=Group)
def main() -> None:
    """支部：基层党支部建设标准化流程管理。"""


for command in (
    engine.db,
    engine.deploy,
    engine.start,
    engine.list_tasks,
    engine.complete,
    engine.tick,
    engine.check,
    engine.audit_group,
    engine.serve,
    engine.demo_command,
    programme.branch,
    programme.group,
    programme.user,
    programme.token,
    programme.contact,
    programme.programme,
    programme.obligations_group,
    programme.spotcheck_group,
    programme.catalog_group,
    deadlines.scheduler_command,
    deadlines.calendar_group,
    deadlines.timers_group,
    deadlines.notify_prefs,
    deadlines.feed_command,
    deadlines.notices_command,
    ops.backup,
    ops.restore,
):
    main.add_command(command)
