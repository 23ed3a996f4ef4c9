"""The rows a programme form starts from: one per catalog item of a self-check or an acceptance, the items
that lost points for a 复验 or a 限期改正 order. Each row carries `_label` (the item as people read it),
which the form shows and never posts back. Pure functions of the checklist and the results so far.
"""

from __future__ import annotations

from typing import Any


def corrective_rows(checklist: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of the acceptance that lost points, as the rows a 限期改正 order starts from."""
    by_code = {item["code"]: item for item in checklist["items"]}
    return [
        {
            "title": f"限期改正：{code} {by_code[code]['text']}"[:100],
            "description": f"验收未得满分：{by_code[code]['text']}"[:2000],
            "standard_item": code,
        }
        for code in result.get("failed_items", [])
        if code in by_code
    ]


def _label(item: dict[str, Any]) -> str:
    return f"{item['code']} {item['text']}（{item['points']:g} 分）"


def check_rows(checklist: dict[str, Any]) -> list[dict[str, Any]]:
    """One self-check row per catalog item, labelled with the item (what the secretary answers)."""
    return [
        {"code": item["code"], "met": None, "note": "", "_label": _label(item)} for item in checklist["items"]
    ]


def score_rows(checklist: dict[str, Any], unfinished: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One acceptance row per catalog item; the items of unfinished phase steps already at 0, saying why."""
    forced = set((unfinished or {}).get("items", []))
    return [
        {
            "code": item["code"],
            "score": 0 if item["code"] in forced else None,
            "note": "阶段任务未完成" if item["code"] in forced else "",
            "_label": _label(item),
        }
        for item in checklist["items"]
    ]


def recheck_rows(checklist: dict[str, Any], scores: list[dict[str, Any]], result: dict[str, Any]) -> list:
    """The rows a 复验 form starts from: each item that lost points, with the score it has now."""
    now = {score["code"]: score["score"] for score in scores}
    forced = set(result.get("forced", []))
    by_code = {item["code"]: item for item in checklist["items"]}
    return [
        {
            "code": code,
            "score": 0 if code in forced else now.get(code, 0),
            "note": "",
            "_label": _label(by_code[code]) if code in by_code else code,
        }
        for code in result.get("failed_items", [])
    ]
