"""The scenario fuzzer (tests/scenario_fuzz.py) on a fixed set of examples: every mutated bundled
scenario runs a day or is rejected with path and line; never a traceback. bench/fuzz.py runs
thousands of random ones."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scenario_fuzz


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_mutated_scenarios_run_or_are_rejected_cleanly(data):
    with tempfile.TemporaryDirectory() as tmp:
        case = data.draw(scenario_fuzz.cases(Path(tmp) / "case"))
        scenario_fuzz.check(case)
