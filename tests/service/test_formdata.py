"""Posted page forms back to JSON: what does not parse stays text, and rows are what the page offered."""

from __future__ import annotations

from service import formdata

SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "scores": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "score": {"type": "number"}},
            },
        },
    },
}


def test_numbers_that_are_not_finite_stay_text():
    for raw in ("1e999", "-1e999", "nan", "inf"):
        assert formdata.parse(SCHEMA, {"score": raw}) == {"score": raw}, raw
    assert formdata.parse(SCHEMA, {"score": "2.5"}) == {"score": 2.5}
    assert formdata.parse(SCHEMA, {"score": "1e3"}) == {"score": 1000.0}


def test_row_indexes_are_small_ascii_numbers():
    posted = {"scores.0.code": "A", "scores.0.score": "3", "scores.².score": "1"}
    assert formdata.parse(SCHEMA, posted) == {"scores": [{"code": "A", "score": 3}]}
    huge = {"scores.99999999999.score": "1", "scores.1.code": "B"}
    assert formdata.parse(SCHEMA, huge) == {"scores": [{"code": "B"}]}
