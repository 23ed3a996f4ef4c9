"""What a task page or API shows of one task: its index fields, its form and the data it holds now.

Reads only: the workflow is restored without a lock, so what it shows may be one step behind a step
running at the same moment; completing re-checks everything under the instance's lock.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from workflows.engine import tasks
from workflows.engine.errors import NotFound
from workflows.engine.instances import restore
from workflows.engine.models import ProcessInstance, TaskRecord


def task_details(session: Session, record: TaskRecord) -> dict[str, Any]:
    """A task's index fields plus its form schema and current data (restores the workflow, no lock)."""
    instance = session.get(ProcessInstance, record.instance_id)
    if instance is None:
        raise NotFound(f"流程实例 {record.instance_id} 不存在")
    loaded = restore(session, instance)
    task = loaded.workflow.get_task_from_id(UUID(record.id))
    schema = loaded.spec.form_schema(tasks.form_filename(task)) if task is not None else None
    data = {k: v for k, v in (task.data if task is not None else {}).items() if not callable(v)}
    return {
        "id": record.id,
        "instance_id": record.instance_id,
        "bpmn_id": record.bpmn_id,
        "title": record.title,
        "subject": record.subject,
        "lane": record.lane,
        "form_key": record.form_key,
        "due_at": record.due_at.isoformat() if record.due_at else None,
        "escalation_level": record.escalation_level,
        "status": record.status,
        "schema": schema,
        "data": data,
        "instructions": task.task_spec.extensions.get("instructionsForEndUser") if task is not None else None,
    }
