"""The edge: what every request must satisfy before a view or the database sees it, and the headers
every response carries.

- The body is read (within MAX_CONTENT_LENGTH) before sign-in, CSRF or rate limits look at it, so an
  oversized body gets 413 whether or not it was sent chunked.
- Control characters (NUL and the other C0/C1 codes but tab and line breaks) and lone surrogates are
  refused with 400 in the path, query, form fields, file names and JSON strings: PostgreSQL cannot
  store NUL, UTF-8 cannot encode a lone surrogate, and no field of ours wants the others.
- JSON bodies are bounded in size and depth; numbers must be finite and fit 64 bits.
- Query integers are checked against the range of the column they end up in (`int_arg`), and path
  integers (`<int:...>`) fit PostgreSQL's INTEGER; beyond it a path names nothing (404).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

MAX_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# Control characters but tab and line breaks, and lone UTF-16 surrogates (a JSON "\\ud800" decodes to
# one; it cannot be encoded as UTF-8, so neither the database nor the password hash could take it).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}

# Our own scripts and the vendored bpmn-js only; bpmn-js sets inline styles on the diagram's elements.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class InputRejected(BadRequest):
    """A request refused at the edge; `errors` maps the offending field to a message in Chinese."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("；".join(f"{name}：{message}" for name, message in errors.items()))
        self.errors = errors


class BoundedInt(IntegerConverter):
    """`<int:...>` limited to PostgreSQL's INTEGER, so an id past it is a 404, never a database error."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's parameter name
        kwargs.setdefault("max", INT32_MAX)
        super().__init__(map, *args, **kwargs)


def int_arg(name: str, default: int | None = None, *, low: int = 0, high: int = INT32_MAX) -> int | None:
    """A query integer within [low, high], the default when absent, else 400 with a message."""
    text = request.args.get(name, "")
    if text == "":
        return default
    if not re.fullmatch(r"[+-]?\d{1,19}", text) or not low <= int(text) <= high:
        raise InputRejected({name: f"应为 {low} 到 {high} 之间的整数"})
    return int(text)


def without_control(text: str) -> str:
    """The text with its control characters removed (to show a refused form back)."""
    return _CONTROL.sub("", text)


def _control(text: str) -> bool:
    return _CONTROL.search(text) is not None


_MESSAGE = "含有不允许的控制字符（如 NUL）或无效字符，请删除后重试"


def _check_text(errors: dict[str, str], field: str, *values: str) -> None:
    for value in values:
        if isinstance(value, str) and _control(value):
            errors.setdefault(field or "_form", _MESSAGE)


class _NotFinite(Exception):
    pass


def _reject_constant(name: str) -> float:
    raise _NotFinite(name)


def _parsed_json(raw: bytes) -> Any:
    if len(raw) > MAX_JSON_BYTES:
        raise InputRejected({"_body": f"JSON 请求体不能超过 {MAX_JSON_BYTES // 1024} KB"})
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise InputRejected({"_body": f"JSON 嵌套不能超过 {MAX_JSON_DEPTH} 层"}) from None
    except _NotFinite:
        raise InputRejected({"_body": "数值超出范围（NaN、Infinity 不是有效数值）"}) from None
    except (ValueError, UnicodeDecodeError):
        return None  # not JSON: the view reports a body of the wrong shape


def _in_range(number: float) -> bool:
    return abs(number) <= INT64_MAX if isinstance(number, int) else math.isfinite(number)


def _check_json(value: Any, errors: dict[str, str]) -> None:
    """Walk a parsed body without recursion: depth, strings and numbers."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            errors["_body"] = f"JSON 嵌套不能超过 {MAX_JSON_DEPTH} 层"
            return
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(errors, f"{path}.{key}".strip(".") if not _control(key) else path or "_body", key)
                stack.append((child, f"{path}.{key}".strip("."), depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{index}".strip("."), depth + 1) for index, child in enumerate(item))
        elif isinstance(item, str):
            _check_text(errors, path or "_body", item)
        elif isinstance(item, int | float) and not isinstance(item, bool) and not _in_range(item):
            errors.setdefault(path or "_body", "数值超出范围")


def _read_whole_body() -> None:
    """Make an oversized body a 413, also when it is streamed without a Content-Length (chunked).

    Werkzeug stops reading a stream at MAX_CONTENT_LENGTH without a word, which would leave a truncated
    body (a form without its CSRF token, half a JSON document). So a streamed body is read and cached
    here; one that fills the limit is probed for one more byte, which raises 413 if it exists. A body
    with a Content-Length over the limit is refused by Werkzeug as soon as the stream is opened.
    """
    if request.content_length is not None:
        request.stream  # noqa: B018 - opening the stream checks the declared length
        return
    limit = request.max_content_length
    data = request.get_data(cache=True)
    if limit is not None and len(data) >= limit:
        request.stream.read(1)


def check_request() -> None:
    """Read and check the request before anything else runs (see the module docstring)."""
    errors: dict[str, str] = {}
    _check_text(errors, "_path", request.path)
    for name, values in request.args.lists():
        _check_text(errors, name if not _control(name) else "_query", name, *values)
    if request.method in _BODY_METHODS:
        _read_whole_body()
        if request.mimetype in _FORM_TYPES:
            for name, values in request.form.lists():  # parsing reads the body: 413 when over the limit
                _check_text(errors, name if not _control(name) else "_form", name, *values)
            for name, upload in request.files.items(multi=True):
                _check_text(errors, name if not _control(name) else "_form", name, upload.filename or "")
        else:
            raw = request.get_data(cache=True)
            if request.is_json and raw:
                parsed = _parsed_json(raw)
                if parsed is not None:
                    _check_json(parsed, errors)
    if errors:
        raise InputRejected(errors)


def secure_headers(response: Response) -> Response:
    """Every response: CSP, no framing, no sniffing, same-origin referrers."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install(app: Flask) -> None:
    """Put the checks in front of every other before-request function (CSRF, rate limits, sign-in)."""
    app.url_map.converters["int"] = BoundedInt
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)
    app.after_request(secure_headers)
