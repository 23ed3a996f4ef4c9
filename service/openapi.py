"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

It is exact enough for schemathesis to fuzz the API with every check (`make fuzz`): every string
refuses control characters, every integer has its range, and bodies name all the fields they take.
"""

from __future__ import annotations

import json

from workflows.engine.specs import FORMS_DIR

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_FIELD_ERRORS = {
    "type": "object",
    "properties": {"errors": {"type": "object", "additionalProperties": {"type": "string"}}},
    "required": ["errors"],
}
_TASK = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "instance_id": {"type": "integer"},
        "bpmn_id": {"type": "string"},
        "title": {"type": "string"},
        "subject": {"type": ["string", "null"]},
        "process": {"type": "string"},
        "branch": {"type": ["string", "null"]},
        "lane": {"type": ["string", "null"]},
        "form_key": {"type": ["string", "null"]},
        "due_at": {"type": ["string", "null"], "format": "date-time"},
        "due_date": {"type": ["string", "null"], "format": "date", "description": "期限日期：当天24时前"},
        "overdue": {"type": "boolean"},
        "escalation_level": {"type": "integer"},
        "status": {"type": "string"},
        "assignee": {"type": ["string", "null"]},
        "can_complete": {"type": "boolean", "description": "调用者此刻能否办理（提交）该任务"},
    },
    "required": [
        "id",
        "instance_id",
        "bpmn_id",
        "title",
        "process",
        "branch",
        "lane",
        "form_key",
        "due_at",
        "overdue",
        "escalation_level",
        "can_complete",
    ],
}


# Text fields refuse control characters at the edge (service/guard.py); lone surrogates too, which
# the pattern leaves out because generators cannot work with a surrogate range (no text holds one).
_TEXT = {"type": "string", "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"}
_INT64 = {"type": "integer", "minimum": -(2**63) + 1, "maximum": 2**63 - 1}
_SCALAR = [
    _TEXT,
    _INT64,
    {"type": "number", "minimum": -1e300, "maximum": 1e300},
    {"type": ["boolean", "null"]},
]
_ROW = {"type": "object", "propertyNames": _TEXT, "additionalProperties": {"anyOf": _SCALAR}}
# A task form's data: fields of text, numbers, yes/no, lists and rows of those. Which fields a task
# wants is its own form's JSON Schema (GET /tasks/{id} returns it), checked when it is submitted.
_FORM_DATA = {
    "type": "object",
    "propertyNames": _TEXT,
    "additionalProperties": {
        "anyOf": [*_SCALAR, {"type": "array", "maxItems": 200, "items": {"anyOf": [*_SCALAR, _ROW]}}]
    },
}


def _register_body() -> dict:
    """The start form of a rectification, as the API takes it: optional fields may also be "" or null."""
    form = json.loads((FORMS_DIR / "rectification-register-schema.json").read_text(encoding="utf-8"))
    properties = {}
    for name, prop in form["properties"].items():
        prop = {k: v for k, v in prop.items() if k in ("type", "enum", "minLength", "maxLength", "format")}
        if prop.get("type") == "string" and "enum" not in prop:
            prop["pattern"] = _TEXT["pattern"]
        if name not in form["required"]:
            prop = {"anyOf": [prop, {"enum": ["", None]}]}
        properties[name] = prop
    return {
        "type": "object",
        "required": form["required"],
        "additionalProperties": False,
        "properties": properties,
    }


def _json(schema: dict, description: str = "") -> dict:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


_TEXTS = {
    400: "请求有误（表单数据、参数或请求体不符合要求），按字段给出原因",
    401: "未登录或令牌无效",
    403: "无权操作",
    404: "不存在",
    409: "已办结或被他人同时办理",
    413: "请求体过大",
    429: "尝试过于频繁（登录按账号限速）",
    500: "服务器内部错误（已记录）",
}


def _errors(*codes: int) -> dict:
    """Error responses of an operation; 400, 413 and 500 can answer any request."""
    every = sorted({*codes, 400, 413, 500})
    return {str(c): _json(_FIELD_ERRORS if c == 400 else _ERROR, _TEXTS[c]) for c in every}


REGISTER_FIELDS = tuple(_register_body()["properties"])
_WHEN = {"type": ["string", "null"], "format": "date-time"}
_MAYBE = {"type": ["string", "null"]}
_ITEM = {
    "type": "object",
    "required": ["id", "status", "problem", "rounds", "next_steps", "deadline", "closed_at"],
    "properties": {
        "id": {"type": "integer"},
        "status": _MAYBE,
        "supervision": _MAYBE,
        "problem": {"type": "object"},
        "registered_by": {"type": "string"},
        "registered_at": _WHEN,
        "responsible": _MAYBE,
        "measures": _MAYBE,
        "deadline": _MAYBE,
        "assigned_by": _MAYBE,
        "assigned_at": _WHEN,
        "rounds": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["number", "evidence", "by", "at", "verdict"],
                "properties": {
                    "number": {"type": "integer"},
                    "done": _MAYBE,
                    "evidence": {"type": "array", "items": {"type": "object"}},
                    "listed": {"type": "array", "items": {"type": "string"}},
                    "by": {"type": "string"},
                    "at": _WHEN,
                    "verdict": {"type": ["object", "null"]},
                },
            },
        },
        "next_steps": {"type": "array", "items": {"type": "object"}},
        "closed_at": _WHEN,
    },
}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "支部 zhibu API",
        "version": "1.0.0",
        "description": "基层党支部建设标准化流程的任务、台账与审计接口。",
    },
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Task": _TASK, "Error": _ERROR, "FieldErrors": _FIELD_ERRORS},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/auth/token": {
            "post": {
                "security": [],
                "summary": "用户名和密码换取令牌",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["username", "password"],
                                "additionalProperties": False,
                                "properties": {
                                    "username": {**_TEXT, "maxLength": 100},
                                    "password": {**_TEXT, "maxLength": 1000},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "token": {"type": "string"},
                                "expires_at": {"type": "string", "format": "date-time"},
                            },
                            "required": ["token", "expires_at"],
                        }
                    ),
                    **_errors(401, 429),
                },
            },
            "delete": {
                "summary": "吊销当前使用的令牌",
                "responses": {"204": {"description": "已吊销"}, **_errors(401)},
            },
        },
        "/tasks": {
            "get": {
                "summary": "调用者可见的任务；view 与网页待办的分页签一致（待办、只读关注、已办）",
                "parameters": [
                    {"name": "view", "in": "query", "schema": {"enum": ["todo", "watch", "done"]}},
                    {"name": "status", "in": "query", "schema": {"enum": ["open", "completed"]}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 1000000},
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                                "total": {"type": "integer"},
                            },
                            "required": ["items", "total"],
                        }
                    ),
                    **_errors(400, 401),
                },
            }
        },
        "/tasks/{id}": {
            "get": {
                "summary": "任务详情（含表单 schema 与数据）",
                "parameters": [_ID],
                "responses": {
                    "200": _json(
                        {
                            "allOf": [
                                {"$ref": "#/components/schemas/Task"},
                                {
                                    "type": "object",
                                    "properties": {
                                        "schema": {"type": ["object", "null"]},
                                        "data": {"type": "object"},
                                    },
                                },
                            ]
                        }
                    ),
                    **_errors(401, 403, 404),
                },
            }
        },
        "/tasks/{id}/complete": {
            "post": {
                "summary": "提交表单、完成任务",
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"data": _FORM_DATA},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "instance_id": {"type": "integer"},
                                "status": {"const": "completed"},
                            },
                            "required": ["id", "instance_id", "status"],
                        }
                    ),
                    **_errors(400, 401, 403, 404, 409),
                },
            }
        },
        "/rectifications": {
            "post": {
                "summary": "登记问题，进入整改流程（从“明确责任”开始）",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _register_body(),
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "properties": {"id": {"type": "integer"}, "instance_id": {"type": "integer"}},
                        }
                    ),
                    **_errors(400, 401, 403),
                },
            },
            "get": {
                "summary": "整改台账",
                "parameters": [
                    {"name": "branch", "in": "query", "schema": _TEXT},
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"enum": ["待分派", "整改中", "待验收", "已销号"]},
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"items": {"type": "array"}, "total": {"type": "integer"}},
                        }
                    ),
                    **_errors(401),
                },
            },
        },
        "/rectifications/{id}": {
            "get": {
                "summary": "一个整改事项的全部情况：问题、责任、每次整改及佐证、验收意见、下一步",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    }
                ],
                "responses": {"200": _json(_ITEM), **_errors(401, 403, 404)},
            }
        },
        "/audit": {
            "get": {
                "summary": "审计事件（调用者可读的范围）",
                "parameters": [
                    {"name": "branch", "in": "query", "schema": _TEXT},
                    {
                        "name": "instance_id",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 5000},
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"items": {"type": "array"}, "total": {"type": "integer"}},
                            "required": ["items", "total"],
                        }
                    ),
                    **_errors(401),
                },
            }
        },
        "/audit/verify": {
            "get": {
                "summary": "校验审计哈希链",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"ok": {"type": "boolean"}, "events": {"type": "integer"}},
                            "required": ["ok", "events"],
                        }
                    ),
                    **_errors(401),
                },
            }
        },
    },
}
