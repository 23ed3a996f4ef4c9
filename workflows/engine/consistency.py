"""`zhibu check`: compare the task index, the timer index and the message index with each workflow.

The timers expected are every one SpiffWorkflow itself would refresh (see `timers.scan`), so a timer
the index misses, e.g. an event gateway's, is reported rather than silently never fired."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows.engine import instances, messages, tasks, timers
from workflows.engine.models import ProcessInstance, TaskRecord


def _fmt(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else repr(value)


def mismatches(session: Session, instance_ids: list[int] | None = None) -> Iterator[str]:
    """Yield one line per difference between the indexes and the workflows (all instances, or some)."""
    query = select(ProcessInstance).order_by(ProcessInstance.id)
    rows_query = select(TaskRecord).where(TaskRecord.status == "open")
    if instance_ids is not None:
        query = query.where(ProcessInstance.id.in_(instance_ids))
        rows_query = rows_query.where(TaskRecord.instance_id.in_(instance_ids))
    indexed: dict[int, dict[str, tasks.TaskView]] = defaultdict(dict)
    for row in session.scalars(rows_query):
        indexed[row.instance_id][row.id] = tasks.view_of(row)
    known = set()
    for instance in session.scalars(query):
        known.add(instance.id)
        loaded = instances.restore(session, instance)
        expected = tasks.snapshot(loaded.workflow)
        actual = indexed.get(instance.id, {})
        for task_id in sorted(expected.keys() - actual.keys()):
            yield f"实例 {instance.id}：任务 {task_id}（{expected[task_id].title}）已就绪，但任务索引中没有"
        for task_id in sorted(actual.keys() - expected.keys()):
            yield f"实例 {instance.id}：任务索引中的 {task_id}（{actual[task_id].title}）在流程中并未就绪"
        for task_id in sorted(expected.keys() & actual.keys()):
            want, have = expected[task_id], actual[task_id]
            for name in ("bpmn_id", "title", "lane", "form_key", "due_at", "escalation_level", "assignee"):
                if getattr(want, name) != getattr(have, name):
                    yield (
                        f"实例 {instance.id}：任务 {task_id} 的 {name} 应为 {_fmt(getattr(want, name))}，"
                        f"索引中为 {_fmt(getattr(have, name))}"
                    )
        due = None if loaded.workflow.is_completed() else timers.next_due_at(timers.scan(loaded.workflow))
        # Backing off or parked after failed firings, next_due_at is the retry time (or none) on purpose.
        if not instance.timer_failures and due != instance.next_due_at:
            yield f"实例 {instance.id}：next_due_at 应为 {_fmt(due)}，索引中为 {_fmt(instance.next_due_at)}"
        yield from _waits(session, instance.id, loaded.workflow)
        status = "completed" if loaded.workflow.is_completed() else "running"
        if instance.status != status:
            yield f"实例 {instance.id}：状态应为 {status}，记录为 {instance.status}"
    for instance_id in sorted(indexed.keys() - known):
        yield f"任务索引引用了不存在的实例 {instance_id}"


def _waits(session: Session, instance_id: int, workflow) -> Iterator[str]:
    expected, indexed = messages.scan(workflow), messages.indexed_waits(session, instance_id)
    for key in sorted(expected.keys() - indexed.keys()):
        yield f"实例 {instance_id}：等待消息“{key[1]}”（任务 {key[0]}），但消息索引中没有"
    for key in sorted(indexed.keys() - expected.keys()):
        yield f"实例 {instance_id}：消息索引中的“{key[1]}”（任务 {key[0]}）在流程中并未等待"
    for key in sorted(expected.keys() & indexed.keys()):
        if expected[key].digest != indexed[key].digest:
            yield (
                f"实例 {instance_id}：等待消息“{key[1]}”的关联值应为 {expected[key].correlations}，"
                f"索引中为 {indexed[key].correlations}"
            )
