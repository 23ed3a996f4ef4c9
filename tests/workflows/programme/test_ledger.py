"""The ledger's status comes from where the item's process stands; a position it does not know is an error."""

from __future__ import annotations

import pytest

from workflows.engine.errors import EngineError
from workflows.programme import ledger


def test_status_follows_the_open_main_step():
    assert ledger.status_of(False, {"register"}) == "待分派"
    assert ledger.status_of(False, {"assign"}) == "待分派"
    assert ledger.status_of(False, {"fix", "supervise"}) == "整改中"
    assert ledger.status_of(False, {"signoff", "supervise", "interview"}) == "待验收"
    assert ledger.status_of(True, set()) == "已销号"


@pytest.mark.parametrize("open_steps", [set(), {"supervise"}, {"fix", "signoff"}, {"fix", "something_new"}])
def test_an_unknown_position_is_an_error_never_a_default(open_steps):
    with pytest.raises(EngineError):
        ledger.status_of(False, open_steps)


def test_an_item_of_an_older_diagram_is_closed_at_an_approved_sign_off_with_supervision_left_open():
    # Before 已销号 became a terminate end, approving left 督办/约谈 running beside a finished item.
    assert ledger.status_of(False, {"supervise"}, signed_off=True) == "已销号"
    assert ledger.status_of(False, {"supervise", "interview"}, signed_off=True) == "已销号"
    with pytest.raises(EngineError):
        ledger.status_of(False, {"supervise"}, signed_off=False)
