"""The injectable clock and ZHIBU_NOW."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows.engine.clock import (
    LOCAL_TZ,
    FixedClock,
    SystemClock,
    clock_from_env,
    due_date,
    due_text,
    end_of_day,
    parse_instant,
)
from workflows.engine.errors import InvalidInput
from workflows.engine.spiff import deadline_at


def test_zhibu_now_freezes_time_and_naive_means_beijing():
    clock = clock_from_env({"ZHIBU_NOW": "2026-09-01T09:00"})
    assert clock.now() == datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
    assert clock_from_env({"ZHIBU_NOW": "2026-09-01T09:00+00:00"}).now().hour == 9


def test_without_zhibu_now_the_system_clock_is_used():
    assert isinstance(clock_from_env({}), SystemClock)


def test_bad_zhibu_now_is_a_readable_error():
    with pytest.raises(InvalidInput, match="无法识别的时间"):
        parse_instant("next tuesday")


def test_fixed_clock_moves_only_when_told():
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=LOCAL_TZ))
    assert clock.now() == clock.now()
    assert clock.advance(days=1, hours=2) == datetime(2026, 1, 2, 2, tzinfo=LOCAL_TZ)


def test_a_date_deadline_ends_at_the_following_beijing_midnight():
    assert end_of_day("2026-11-30") == datetime(2026, 12, 1, tzinfo=LOCAL_TZ)
    assert deadline_at("2026-12-31") == "2027-01-01T00:00:00+08:00"
    with pytest.raises(InvalidInput):
        end_of_day("2026-11-31")


def test_a_date_deadline_reads_as_its_own_date():
    end = end_of_day("2026-11-30")
    assert due_text(end) == "2026-11-30 24时前" and due_date(end).isoformat() == "2026-11-30"
    assert due_text(end, "%m-%d") == "11-30 24时前"
    noon = datetime(2026, 11, 30, 12, 0, tzinfo=LOCAL_TZ)
    assert due_text(noon) == "2026-11-30 12:00前" and due_date(noon).isoformat() == "2026-11-30"
