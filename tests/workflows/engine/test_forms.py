"""Form validation messages are per field and in Chinese."""

from __future__ import annotations

import json

import pytest

from workflows.engine import forms, specs
from workflows.engine.errors import FormInvalid


def schema(name: str) -> dict:
    return json.loads((specs.FORMS_DIR / f"{name}-schema.json").read_text(encoding="utf-8"))


def test_valid_data_passes_unchanged():
    data = {"responsible": "zhangsan", "measures": "补齐", "deadline": "2026-12-31"}
    assert forms.validate(schema("rectification-assign"), data) is data


def test_each_field_gets_its_own_message():
    errors = forms.form_errors(
        schema("rectification-assign"), {"responsible": "", "deadline": "2026-02-30", "x": 1}
    )
    assert errors == {
        "responsible": "不能为空",
        "measures": "请填写“整改措施”",
        "deadline": "请填写有效日期，例如 2026-12-31",
        "x": "表单中没有这一项，请勿提交",
    }


def test_nested_and_typed_fields():
    errors = forms.form_errors(schema("rectification-fix"), {"done": 5, "evidence": ["ok", ""]})
    assert errors == {"done": "应填写文字", "evidence.1": "不能为空"}
    assert forms.form_errors(schema("rectification-fix"), {"done": "x", "evidence": []}) == {
        "evidence": "至少填写 1 项"
    }


def test_conditional_requirement():
    signoff = schema("rectification-signoff")
    assert forms.form_errors(signoff, {"approved": True}) == {}
    assert forms.form_errors(signoff, {"approved": False}) == {
        "comment": "请填写“验收意见”",
        "deadline": "请填写“新的整改时限”",
    }
    rejected = {"approved": False, "comment": "", "deadline": "2026-12-10"}
    assert forms.form_errors(signoff, rejected) == {"comment": "不能为空"}
    assert forms.form_errors(signoff, {"approved": "yes"}) == {"approved": "应填写“是”或“否”"}


def test_non_object_data_is_rejected():
    with pytest.raises(FormInvalid) as err:
        forms.validate(schema("rectification-fix"), ["done"])
    assert err.value.errors == {"_form": "提交的数据应为一个表单对象（JSON 对象）"}


def test_task_without_form_accepts_no_data():
    assert forms.validate(None, {}) == {}
    with pytest.raises(FormInvalid):
        forms.validate(None, {"x": 1})
