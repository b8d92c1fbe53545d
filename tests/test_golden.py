"""Every bundled scenario gives the numbers stored in tests/golden (see make_golden.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import make_golden  # noqa: E402
from ledger_checks import check_ledger  # noqa: E402
from operator_checks import check_operators  # noqa: E402


def test_every_bundled_scenario_has_a_golden_record():
    from v2gsim.scenario import bundled_scenarios

    assert set(bundled_scenarios()) == set(make_golden.OVERRIDES)


@pytest.mark.parametrize("name", sorted(make_golden.OVERRIDES))
def test_golden(name):
    res = make_golden.run(name)
    check_ledger(res)  # every bundled scenario's money balances and matches its other tables
    check_operators(res)  # and its per-operator table adds up to the system table and the ledger
    new = make_golden.record(name, res)
    diffs = make_golden.differences(new, make_golden.load(name))
    assert not diffs, f"{name} differs from tests/golden/{name} (re-record with make_golden.py only for a named fix):\n" + "\n".join(diffs[:30])
