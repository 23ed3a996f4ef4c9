"""The trail in people's words: step names and form field titles, read from the deployed diagrams.

An event stores ids (`assign`) and submitted data (`{"responsible": "zhangsan"}`); an inspector reads
"明确责任" and "整改责任人：zhangsan". Names come from each process's newest version. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import StartEvent
from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows.engine import audit, specs
from workflows.engine.clock import LOCAL_TZ
from workflows.engine.models import AuditEvent, SpecVersion


@dataclass(frozen=True)
class Labels:
    """Names of steps (and processes) by BPMN id, and form field titles by the step that has the form."""

    steps: dict[str, str] = field(default_factory=dict)
    fields: dict[str, dict[str, str]] = field(default_factory=dict)


def labels(session: Session) -> Labels:
    """Step names and field titles of every deployed process (newest version of each)."""
    steps: dict[str, str] = {}
    fields: dict[str, dict[str, str]] = {}
    for process_id in session.scalars(select(SpecVersion.process_id).distinct()):
        deployed = specs.as_deployed(specs.latest_version(session, process_id))
        for spec in (deployed.spec, *deployed.subprocess_specs.values()):
            for task_spec in spec.task_specs.values():
                bpmn_id = getattr(task_spec, "bpmn_id", None)
                if not bpmn_id:
                    continue
                name = getattr(task_spec, "bpmn_name", None)
                if name:
                    steps.setdefault(bpmn_id, name)
                props = getattr(task_spec, "extensions", {}).get("properties", {})
                schema = deployed.form_schema(props.get("formJsonSchemaFilename"))
                if schema:
                    titles = {k: v.get("title", k) for k, v in (schema.get("properties") or {}).items()}
                    # A start form's data is recorded under the process id (instance.started).
                    fields.setdefault(process_id if isinstance(task_spec, StartEvent) else bpmn_id, titles)
        steps.setdefault(process_id, deployed.spec.description or process_id)
    return Labels(steps, fields)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_value(v) for v in value)
    if isinstance(value, dict):
        return "（" + "，".join(f"{k} {_value(v)}" for k, v in value.items()) + "）"
    return "" if value is None else str(value)


def _local(instant: Any) -> str:
    """An ISO instant as people read it: Beijing time to the minute."""
    if not isinstance(instant, str):
        return "—"
    try:
        return datetime.fromisoformat(instant).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return instant


_CORRELATION_WORDS = {"year": "年度", "branch": "党支部"}


def _message_text(action: str, payload: dict[str, Any]) -> str:
    name = payload.get("name", "")
    correlated = (payload.get("correlations") or {}).values()
    keys = "，".join(
        f"{_CORRELATION_WORDS.get(k.rsplit('_', 1)[-1], k)} {_value(v)}"
        for values in correlated
        for k, v in values.items()
    )
    about = f"（{keys}）" if keys else ""
    if action == "message.received":
        return f"收到流程实例 {payload.get('from_instance')} 的消息“{name}”{about}"
    if action == "message.delivered":
        return f"消息“{name}”已送达流程实例 {payload.get('to_instance')}"
    return f"发出消息“{name}”{about}"


def describe(found: Labels, event: AuditEvent, limit: int = 300) -> str:
    """One event's content as a line people read: submitted fields by their titles, a notice's gist."""
    payload = audit.decoded(event)
    if not isinstance(payload, dict):
        return ""
    data = payload.get("data")
    if event.action in ("task.completed", "instance.started") and isinstance(data, dict):
        titles = found.fields.get(event.bpmn_id or "", {})
        order = [k for k in titles if k in data] + sorted(k for k in data if k not in titles)  # the form's
        text = "；".join(
            f"{titles.get(k, k)}：{_value(data[k])}" for k in order if data[k] not in (None, "", [])
        )
    elif event.action == "notification.sent":
        text = f"致 {_value(payload.get('to'))}：{payload.get('title', '')}"
    elif event.action.startswith("message."):
        text = _message_text(event.action, payload)
    elif event.action == "timer.fired":
        text = f"{payload.get('timer', '')}（到期时间 {_local(payload.get('due_at'))}）"
    elif event.action == "notice.filed":
        text = str(payload.get("text", ""))
    elif event.action in ("task.cancelled", "task.claimed", "task.unclaimed", "task.reassigned"):
        text = _value(payload.get("title") or payload.get("to") or "")
    else:
        text = "；".join(f"{k}：{_value(v)}" for k, v in payload.items() if k != "data")
    return text if len(text) <= limit else text[: limit - 1] + "…"
