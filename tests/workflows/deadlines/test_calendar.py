"""Working days: 2026 from the package, 2027 from the administrator's table or the weekday fallback."""

from __future__ import annotations

from datetime import date

import pytest

from workflows.deadlines import calendar
from workflows.engine.clock import end_of_day
from workflows.engine.db import transaction
from workflows.engine.errors import InvalidInput

EMPTY = calendar.WorkCalendar()


@pytest.mark.parametrize(
    "start,days,expected",
    [
        (date(2026, 9, 30), 3, date(2026, 10, 10)),  # National Day off 10/1–7, 10/10 (Saturday) is worked
        (date(2026, 9, 30), 1, date(2026, 10, 8)),
        (date(2026, 2, 13), 1, date(2026, 2, 14)),  # Saturday 2/14 is a make-up working day
        (date(2026, 2, 14), 1, date(2026, 2, 24)),  # Spring Festival 2/15–23
        (date(2026, 10, 12), -3, date(2026, 10, 8)),  # backwards: 10/9, 10/10 (make-up), 10/8
        (date(2026, 11, 24), 5, date(2026, 12, 1)),
        (date(2026, 10, 1), 0, date(2026, 10, 8)),  # a deadline on a holiday moves to the next working day
        (date(2026, 11, 24), 0, date(2026, 11, 24)),
    ],
)
def test_2026_from_the_package(start, days, expected):
    assert EMPTY.shift(start, days) == (expected, True)


def test_2027_without_data_falls_back_to_weekdays_unconfirmed():
    assert EMPTY.status(date(2027, 1, 1)) == (True, False)  # New Year's Day, but nobody said so yet
    assert EMPTY.shift(date(2026, 12, 30), 2) == (date(2027, 1, 1), False)
    assert EMPTY.shift(date(2026, 12, 25), 2) == (date(2026, 12, 29), True)
    assert calendar.deadline(EMPTY, "2027-01-02") == (end_of_day("2027-01-04"), False)


def test_2027_from_the_administrators_table(factory, clock):
    with transaction(factory) as session:
        for day in ("2027-01-01", "2027-01-02", "2027-01-03"):
            calendar.add_day(
                session, date.fromisoformat(day), "holiday", "元旦", now=clock.now(), actor="office1"
            )
        calendar.add_day(session, date(2027, 1, 9), "workday", "元旦调休", now=clock.now(), actor="office1")
    with factory() as session:
        cal = calendar.load(session)
        assert [e.day.isoformat() for e in calendar.entries(session, 2027)] == [
            "2027-01-01",
            "2027-01-02",
            "2027-01-03",
            "2027-01-09",
        ]
    assert cal.shift(date(2026, 12, 31), 1) == (date(2027, 1, 4), True)
    assert cal.shift(date(2027, 1, 8), 1) == (date(2027, 1, 9), True)  # the make-up Saturday
    assert cal.shift(date(2027, 3, 1), 0) == (date(2027, 3, 1), True)  # an entered year counts as published
    assert calendar.deadline(cal, "2027-01-01", -1) == (end_of_day("2026-12-31"), True)
    with transaction(factory) as session:
        assert calendar.remove_day(session, date(2027, 1, 9), now=clock.now(), actor="office1")
        assert not calendar.remove_day(session, date(2027, 1, 9), now=clock.now(), actor="office1")


def test_csv_import_names_the_bad_line():
    rows = calendar.parse_csv("date,kind,name\n2027-02-06,holiday,春节\n2027-02-14,workday,春节调休\n")
    assert rows == [(date(2027, 2, 6), "holiday", "春节"), (date(2027, 2, 14), "workday", "春节调休")]
    with pytest.raises(InvalidInput, match="第 2 行"):
        calendar.parse_csv("2027-02-06,holiday\n2027-02-30,holiday\n")
    with pytest.raises(InvalidInput, match="holiday 或 workday"):
        calendar.parse_csv("2027-02-06,rest\n")
