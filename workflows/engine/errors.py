"""Domain errors. Each carries a message in Chinese for the person who caused it.

The service maps them to HTTP statuses (`http_status`); the CLI prints the message and exits non-zero.
"""

from __future__ import annotations


class ZhibuError(Exception):
    """Base of every error a user may see."""

    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ZhibuError):
    """Malformed input (bad JSON, bad date, unknown option value)."""

    http_status = 400


class FormInvalid(ZhibuError):
    """Submitted form data failed the task's JSON Schema; `errors` maps field → message."""

    http_status = 400

    def __init__(self, errors: dict[str, str]):
        super().__init__("表单填写有误：" + "；".join(f"{k}：{v}" for k, v in errors.items()))
        self.errors = errors


class Forbidden(ZhibuError):
    """The actor may not act on this object."""

    http_status = 403


class NotFound(ZhibuError):
    """No such task, instance or process."""

    http_status = 404


class Conflict(ZhibuError):
    """The object changed under the caller: task no longer ready, completed concurrently."""

    http_status = 409


class DeployError(ZhibuError):
    """A BPMN diagram or form cannot be deployed."""

    http_status = 400


class EngineError(ZhibuError):
    """The workflow engine failed while running a step; the step was rolled back."""

    http_status = 500
