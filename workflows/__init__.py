"""zhibu's domain core: BPMN processes run by SpiffWorkflow, persisted with SQLAlchemy.

Nothing here imports Flask; functions take a `Session` and never commit, except the
unit-of-work owners in `workflows.runner`.
"""
