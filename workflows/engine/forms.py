"""Validating submitted form data against a task's JSON Schema, with messages in Chinese.

Form data is data: it is checked against the schema and stored, never evaluated.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from workflows.engine.errors import FormInvalid

_TYPE_NAMES = {
    "string": "文字",
    "integer": "整数",
    "number": "数字",
    "boolean": "“是”或“否”",
    "array": "列表",
    "object": "对象",
    "null": "空值",
}
_FORMAT_HINTS = {
    "date": "请填写有效日期，例如 2026-12-31",
    "date-time": "请填写有效的日期时间，例如 2026-12-31T17:00",
    "email": "请填写有效的电子邮箱地址",
    "uri": "请填写有效的链接地址",
}
_FORMAT_CHECKER = FormatChecker()
_validators: dict[int, Draft202012Validator] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    # Schemas live as long as their deployed version; validators are cached by schema identity.
    key = id(schema)
    validator = _validators.get(key)
    if validator is None or validator.schema is not schema:
        validator = Draft202012Validator(schema, format_checker=_FORMAT_CHECKER)
        _validators[key] = validator
    return validator


def _title(schema: dict[str, Any], path: list[Any], name: str | None = None) -> str:
    node: Any = schema
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {}) if isinstance(node, dict) else {}
        else:
            node = node.get("properties", {}).get(part, {}) if isinstance(node, dict) else {}
    if name is not None:
        node = node.get("properties", {}).get(name, {}) if isinstance(node, dict) else {}
        return node.get("title", name) if isinstance(node, dict) else name
    return node.get("title", "") if isinstance(node, dict) else ""


def _messages(error: ValidationError, schema: dict[str, Any]) -> list[tuple[str, str]]:
    path = list(error.absolute_path)
    kind, value = error.validator, error.validator_value
    if kind == "required":
        missing = [name for name in value if name not in (error.instance or {})]
        return [(_join([*path, name]), f"请填写“{_title(schema, path, name)}”") for name in missing]
    if kind == "not" and isinstance(value, dict) and set(value) == {"required"}:  # "then leave these out"
        present = [name for name in value["required"] if name in (error.instance or {})]
        return [(_join([*path, name]), "此情况下不应填写这一项") for name in present]
    if kind == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in (error.instance or {}) if k not in allowed)
        return [(_join([*path, name]), "表单中没有这一项，请勿提交") for name in extra]
    return [(_join(path), _message(error))]


def _join(path: list[Any]) -> str:
    return ".".join(str(p) for p in path)


def _message(error: ValidationError) -> str:
    kind, value = error.validator, error.validator_value
    if kind == "type":
        names = value if isinstance(value, list) else [value]
        return "应填写" + "或".join(_TYPE_NAMES.get(n, n) for n in names)
    if kind == "minLength":
        return "不能为空" if value == 1 else f"至少填写 {value} 个字"
    if kind == "maxLength":
        return f"不能超过 {value} 个字"
    if kind == "enum":
        return "请从以下选项中选择：" + "、".join(str(v) for v in value)
    if kind == "const":
        return f"只能是“{value}”"
    if kind == "format":
        return _FORMAT_HINTS.get(value, "格式不正确")
    if kind in ("minimum", "exclusiveMinimum"):
        return f"不能小于{'或等于' if kind == 'exclusiveMinimum' else ''} {value}"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"不能大于{'或等于' if kind == 'exclusiveMaximum' else ''} {value}"
    if kind == "minItems":
        return f"至少填写 {value} 项"
    if kind == "maxItems":
        return f"最多填写 {value} 项"
    if kind == "pattern":
        return error.schema.get("errorMessage", "格式不正确")
    return "填写内容不符合要求"


def form_errors(schema: dict[str, Any], data: Any) -> dict[str, str]:
    """Map field path → Chinese message for every problem in `data`; empty when valid."""
    if not isinstance(data, dict):
        return {"_form": "提交的数据应为一个表单对象（JSON 对象）"}
    errors: dict[str, str] = {}
    for error in sorted(_validator(schema).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        # `if/then` and `allOf` failures are reported by their inner errors, which carry the field.
        inner = error.context if error.validator in ("allOf", "anyOf", "oneOf") and error.context else [error]
        for each in inner:
            for key, message in _messages(each, schema):
                errors.setdefault(key or "_form", message)
    return errors


def validate(schema: dict[str, Any] | None, data: Any) -> dict[str, Any]:
    """Return `data` if it satisfies `schema`, else raise `FormInvalid` with per-field messages."""
    if schema is None:
        if data not in (None, {}):
            raise FormInvalid({"_form": "此步骤没有表单，不接受提交数据"})
        return {}
    errors = form_errors(schema, data)
    if errors:
        raise FormInvalid(errors)
    return data
