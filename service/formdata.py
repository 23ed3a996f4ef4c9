"""HTML forms from the JSON Schemas in `forms/`: the fields to render, and posted values back to JSON.

Naming: a top-level field is `name`; a row of a repeated group is `name.ROW.sub`; a list of short
texts (evidence file names, usernames) is one textarea, a line per item. Empty inputs are left out,
so the schema's own "required" messages apply. Anything that does not parse is kept as text, so the
validator reports it next to its field and the form comes back as it was typed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

BLANK_ROWS = 2  # empty rows offered below the filled ones of a repeated group


@dataclass
class Field:
    """One input as the template draws it."""

    name: str
    title: str
    kind: str  # text | textarea | number | integer | date | choice | yesno | lines | rows
    required: bool
    description: str = ""
    choices: list[str] = field(default_factory=list)
    columns: list[Field] = field(default_factory=list)  # for `rows`
    max_length: int | None = None


def _kind(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    if prop.get("x-zhibu") == "person" and kind == "string":
        return "person"  # a <select> of the branch's people where the page knows them, else text
    if "enum" in prop:
        return "choice"
    if kind == "boolean":
        return "yesno"
    if kind in ("integer", "number"):
        return kind
    if kind == "array":
        return "rows" if prop.get("items", {}).get("type") == "object" else "lines"
    if prop.get("format") == "date":
        return "date"
    return "textarea" if prop.get("maxLength", 0) > 300 else "text"


def fields(schema: dict[str, Any] | None) -> list[Field]:
    """The inputs of a form, in the schema's order."""
    if not schema:
        return []
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        kind = _kind(prop)
        item = Field(
            name=name,
            title=prop.get("title", name),
            kind=kind,
            required=name in required,
            description=prop.get("description", ""),
            choices=[str(c) for c in prop.get("enum", [])],
            max_length=prop.get("maxLength"),
        )
        if kind == "rows":
            item.columns = fields(prop["items"])
        out.append(item)
    return out


def _scalar(kind: str, raw: str) -> Any:
    text = raw.strip()
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "number":
        try:
            number = float(text) if "." in text or "e" in text.lower() else int(text)
        except ValueError:
            return text
        # "1e999" is inf and "nan" compares false with every bound: kept as text, the schema refuses it
        return number if math.isfinite(number) else text
    if kind == "yesno":
        return {"true": True, "false": False, "是": True, "否": False}.get(text.lower(), text)
    return raw if kind == "textarea" else text


def parse(schema: dict[str, Any] | None, posted: dict[str, str]) -> dict[str, Any]:
    """The JSON data a posted form stands for (blank inputs and blank rows left out)."""
    data: dict[str, Any] = {}
    for item in fields(schema):
        if item.kind == "lines":
            lines = [line.strip() for line in posted.get(item.name, "").splitlines() if line.strip()]
            if lines or item.name in posted:
                data[item.name] = lines
        elif item.kind == "rows":
            rows = []
            for index in range(_row_count(posted, item.name)):
                row = {
                    col.name: _scalar(col.kind, posted[key])
                    for col in item.columns
                    if (key := f"{item.name}.{index}.{col.name}") in posted and posted[key].strip()
                }
                if row:
                    rows.append(row)
            if rows or f"{item.name}.present" in posted:
                data[item.name] = rows
        elif posted.get(item.name, "").strip():
            data[item.name] = _scalar(item.kind, posted[item.name])
    return data


MAX_ROWS = 500  # a form's repeated rows; an index past it is not a row a page offered


def _row_count(posted: dict[str, str], name: str) -> int:
    prefix = f"{name}."
    indexes = [key[len(prefix) :].split(".", 1)[0] for key in posted if key.startswith(prefix)]
    # ASCII digits only ("²".isdigit() is true but int() refuses it), and a bounded count.
    numbers = [int(i) for i in indexes if re.fullmatch(r"[0-9]{1,4}", i) and int(i) < MAX_ROWS]
    return max(numbers) + 1 if numbers else 0


def _row_shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row's cells as the inputs show them (是/否 as true/false, nothing as blank); `_label` kept."""
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else ("" if value is None else value)
        for key, value in row.items()
    }


def values(
    data: dict[str, Any] | None, schema: dict[str, Any] | None, today: date | None = None
) -> dict[str, Any]:
    """What to show in each input: the task's current data, rows padded with blank ones.

    With `today` (a form being filled in), a deadline field (`"x-zhibu": "future-date"`) is never offered a
    date that is not after today, and a field marked `"x-zhibu-prefill": false` starts empty (a rejection's
    new deadline must be chosen, not kept).
    """
    data = data or {}
    shown: dict[str, Any] = {}
    props = (schema or {}).get("properties") or {}
    deadlines = {n for n, p in props.items() if p.get("x-zhibu") == "future-date"}
    fresh = {n for n, p in props.items() if p.get("x-zhibu-prefill") is False}
    for item in fields(schema):
        value = data.get(item.name)
        if today is not None and (
            item.name in fresh
            or (item.name in deadlines and isinstance(value, str) and value[:10] <= today.isoformat())
        ):
            value = None
        if item.kind == "lines":
            shown[item.name] = "\n".join(str(v) for v in value) if isinstance(value, list) else ""
        elif item.kind == "rows":
            rows = [_row_shown(r) for r in value if isinstance(r, dict)] if isinstance(value, list) else []
            # a checklist the process laid out (rows labelled with `_label`) is complete: no blank rows
            blank = 0 if rows and all("_label" in r for r in rows) else BLANK_ROWS
            shown[item.name] = rows + [{} for _ in range(blank)]
        elif isinstance(value, bool):
            shown[item.name] = "true" if value else "false"
        else:
            shown[item.name] = "" if value is None else str(value)
    return shown
