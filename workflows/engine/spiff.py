"""SpiffWorkflow wiring: the serializer, the script engine's functions, and the clock seam.

Spiff's timers read `datetime.now(timezone.utc)` inside its timer module with no hook, so that
module's `datetime` is replaced by a subclass whose `now()` asks the clock bound with
`running_at(clock)`. Outside such a block it is the real time, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from sqlalchemy.orm import Session

from workflows.engine.clock import Clock, end_of_day

# Spiff logs every state change at INFO; that is noise in a service log.
for _name in ("spiff", "spiff.task", "spiff.workflow", "spiff.metrics"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_active_clock: ContextVar[Clock | None] = ContextVar("zhibu_engine_clock", default=None)


class _ClockedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        clock = _active_clock.get()
        if clock is None:
            return datetime.now(tz)
        current = clock.now()
        return current.astimezone(tz) if tz is not None else current.astimezone(UTC).replace(tzinfo=None)


spiff_timer.datetime = _ClockedDatetime


@contextmanager
def running_at(clock: Clock) -> Iterator[None]:
    """Within this block Spiff's timers see `clock.now()`."""
    token = _active_clock.set(clock)
    try:
        yield
    finally:
        _active_clock.reset(token)


def deadline_at(deadline: str) -> str:
    """Timer expression helper: a date-only deadline expires at the following midnight, Beijing time."""
    return end_of_day(deadline).isoformat()


SCRIPT_FUNCTIONS = {"deadline_at": deadline_at}


@dataclass
class StepContext:
    """What script functions of a diagram may use while a step runs: the step's own transaction."""

    session: Session
    clock: Clock
    actor: str
    instance: Any  # the InstanceRow being advanced (its id is None while it is being started)
    start_process: Callable[..., Any]  # steps.start, passed in so this module needs no import of it
    after_save: list[Callable[[], None]] = field(default_factory=list)

    def later(self, work: Callable[[], None]) -> None:
        """Run `work` in this step's transaction once the instance is saved and its timers audited,
        so what a timer caused follows the timer in the trail (and sees the instance's id)."""
        self.after_save.append(work)


_active_step: ContextVar[StepContext | None] = ContextVar("zhibu_engine_step", default=None)


@contextmanager
def stepping(context: StepContext) -> Iterator[None]:
    """Within this block the engine runs at `context.clock` and script functions see `context`."""
    token = _active_step.set(context)
    try:
        with running_at(context.clock):
            yield
    finally:
        _active_step.reset(token)


def current_step() -> StepContext:
    """The step a script function is called from; scripts outside a step are a programming error."""
    context = _active_step.get()
    if context is None:
        raise RuntimeError("script function called outside a workflow step")
    return context


def register_script_functions(functions: dict[str, Callable[..., Any]]) -> None:
    """Make functions callable from the diagrams' scripts, expressions and timers."""
    SCRIPT_FUNCTIONS.update(functions)
    SCRIPT_ENGINE.environment.globals.update(functions)


class _StatelessWorkflowConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its specs, which are stored once per deployed version.

    Restoring expects the caller to put the parsed spec objects back under `spec` and
    `subprocess_specs`; Spiff's registry passes objects through unchanged.
    """

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


SERIALIZER = BpmnWorkflowSerializer(
    BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, BpmnWorkflow: _StatelessWorkflowConverter})
)


# Stateless (each evaluation copies its globals), so one engine serves every workflow and thread.
SCRIPT_ENGINE = PythonScriptEngine(environment=TaskDataEnvironment(dict(SCRIPT_FUNCTIONS)))


def connect_event_subprocesses(spec) -> None:
    """Wire each event subprocess of a spec to its start and end as Spiff does when one is triggered.

    Spiff connects a triggered event subprocess into the (shared) spec only at its first trigger, so a
    workflow restored onto a freshly loaded spec fails when the subprocess ends ("No input task
    connected"). Done once per loaded spec, without adding it to the start's outputs (which would start
    it in every new workflow); Spiff then finds it connected and leaves the spec alone. Idempotent.
    """
    start = getattr(spec, "start", None)
    for name in getattr(start, "trigger_specs", ()):
        task_spec = spec.task_specs.get(name)
        if task_spec is None or start in task_spec.inputs:
            continue
        task_spec._connect_notify(start)
        if spec.end not in task_spec.outputs:
            task_spec.connect(spec.end)


def all_tasks(workflow: BpmnWorkflow):
    """Every task of a workflow and its subprocesses, unordered.

    Reading the task maps directly is several times cheaper than Spiff's filtered tree iterator,
    and the indexes are rebuilt from this twice per step.
    """
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()
