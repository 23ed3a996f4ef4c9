"""The standard catalog: loaded from a file, replaceable, validated, and graded by its bands."""

from __future__ import annotations

import copy
import json

import pytest

from workflows.engine.db import transaction
from workflows.engine.errors import InvalidInput
from workflows.programme import catalog

DEFAULT = catalog.read_file(catalog.DEFAULT_CATALOG)


def load(factory, clock, content):
    with transaction(factory) as session:
        return catalog.load(session, content, now=clock.now(), actor="office1").id


def test_default_catalog_has_the_ten_areas_and_100_points(factory, clock):
    first = load(factory, clock, DEFAULT)
    with factory() as session:
        items = catalog.items(session)
        assert len({i.area_no for i in items}) == 10
        assert sum(i.points for i in items) == 100
        assert {i.code for i in items if i.veto} == {"2.2", "3.4"}
    assert load(factory, clock, DEFAULT) == first  # same content: same version


def test_a_loaded_catalog_replaces_the_active_one(factory, clock, tmp_path):
    first = load(factory, clock, DEFAULT)
    own = {
        "name": "本公司细则",
        "areas": [
            {
                "no": 1,
                "name": "组织生活",
                "items": [
                    {"code": "A", "text": "三会一课", "points": 60},
                    {"code": "B", "text": "主题党日", "points": 40},
                ],
            }
        ],
    }
    path = tmp_path / "own.json"
    path.write_text(json.dumps(own, ensure_ascii=False), encoding="utf-8")
    second = load(factory, clock, catalog.read_file(path))
    with factory() as session:
        assert catalog.active(session).id == second != first
        assert [i["code"] for i in catalog.checklist(session)["items"]] == ["A", "B"]
        assert len(catalog.items(session, first)) == 38  # the old version stays on record


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda c: c.pop("areas"), "方面"),
        (lambda c: c["areas"][0]["items"][0].update(points=-1), "分值"),
        (lambda c: c["areas"][1]["items"][0].update(code="1.1"), "1.1"),
        (lambda c: c["areas"][0].update(colour="red"), "colour"),
    ],
)
def test_a_bad_catalog_is_refused_with_a_reason(factory, clock, change, message):
    content = copy.deepcopy(DEFAULT)
    change(content)
    with pytest.raises(InvalidInput) as caught:
        load(factory, clock, content)
    assert message in caught.value.message
    with factory() as session:
        assert catalog.active(session, required=False) is None


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(InvalidInput, match="找不到"):
        catalog.read_file(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(InvalidInput, match="不是有效的 JSON"):
        catalog.read_file(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "fraction,vetoed,grade,passed",
    [
        (1.0, [], "示范", True),
        (0.9, [], "示范", True),
        (0.85, [], "达标", True),
        (0.79, [], "不达标", False),
        (1.0, ["2.2"], "不达标", False),
        (1.0, ["1.1"], "示范", True),
    ],
)
def test_grade_bands(factory, clock, fraction, vetoed, grade, passed):
    catalog_id = load(factory, clock, DEFAULT)
    with factory() as session:
        scores = {i.code: i.points * fraction for i in catalog.items(session)}
        scores["1.1"] = 999  # capped at the item's points
        result = catalog.grade(session, catalog_id, scores, vetoed)
    assert (result.grade, result.passed) == (grade, passed)
    assert result.total <= 100
