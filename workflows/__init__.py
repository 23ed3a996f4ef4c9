"""zhibu's domain core: BPMN processes run by SpiffWorkflow, persisted with SQLAlchemy.

Three layers, imports pointing down only (`make lint` holds them with import-linter):
- `workflows.deadlines`: working-day calendar, escalation ladder, notifications and their channels,
  iCalendar feeds, digests — the programme's clock and its reminders;
- `workflows.programme`: the standardization programme — organization, catalog, the functions the
  diagrams call, ledger, spot checks, obligations, inboxes, task actions, evidence, read models, demo;
- `workflows.engine`: running BPMN durably; it knows no process and no domain.
Importing `workflows` registers the upper layers with the engine (`workflows.plugins`).
Nothing here imports Flask; functions take a `Session` and never commit, except units of work.
"""

from workflows import plugins  # noqa: F401  (registers the domain with the engine)
