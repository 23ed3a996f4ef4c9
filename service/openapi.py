"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

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
        "overdue": {"type": "boolean"},
        "escalation_level": {"type": "integer"},
        "status": {"type": "string"},
        "assignee": {"type": ["string", "null"]},
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
    ],
}


def _json(schema: dict, description: str = "") -> dict:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    texts = {
        400: "表单数据不符合要求",
        401: "未登录或令牌无效",
        403: "无权操作",
        404: "不存在",
        409: "已办结或被他人同时办理",
    }
    return {str(c): _json(_FIELD_ERRORS if c == 400 else _ERROR, texts[c]) for c in codes}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
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
                                "properties": {
                                    "username": {"type": "string"},
                                    "password": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"token": {"type": "string"}}, "required": ["token"]}
                    ),
                    **_errors(401),
                },
            }
        },
        "/tasks": {
            "get": {
                "summary": "调用者可见的任务",
                "parameters": [{"name": "status", "in": "query", "schema": {"enum": ["open", "completed"]}}],
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
                            "schema": {"type": "object", "properties": {"data": {"type": "object"}}}
                        }
                    },
                },
                "responses": {"200": _json({"type": "object"}), **_errors(400, 401, 403, 404, 409)},
            }
        },
        "/rectifications": {
            "post": {
                "summary": "登记问题，进入整改流程（从“明确责任”开始）",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["title", "description", "source"],
                                "properties": {
                                    k: {"type": "string"}
                                    for k in (
                                        "branch",
                                        "title",
                                        "description",
                                        "source",
                                        "deadline",
                                        "standard_item",
                                    )
                                },
                            }
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
                    {"name": "branch", "in": "query", "schema": {"type": "string"}},
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
        "/audit": {
            "get": {
                "summary": "审计事件（调用者可读的范围）",
                "parameters": [
                    {"name": "branch", "in": "query", "schema": {"type": "string"}},
                    {"name": "instance_id", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 5000}},
                ],
                "responses": {"200": _json({"type": "object"}), **_errors(401)},
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
