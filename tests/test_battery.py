"""Charging physics: hand-computed cases and invariants."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gsim.physics.battery import charge_to, discharge_to


def test_constant_power_below_knee_is_linear():
    # 50 kWh battery, knee at 40 kWh; 7 kW battery-side for 1 h from 10 kWh -> 17 kWh
    assert charge_to(10.0, 50.0, 40.0, 49.5, 7.0, 70.0, 1.0) == pytest.approx(17.0, rel=1e-12)


def test_taper_by_hand():
    # cap 50, knee 40 kWh, battery max 70 kW -> k = 70 / 10 = 7 /h.
    # At 35 kW the taper limit meets the request at e = 50 - 35/7 = 45 kWh.
    # From 40 kWh: 5 kWh at 35 kW takes 1/7 h; the remaining 0.5 - 1/7 h follow
    # e = 50 - 5 exp(-7 tau).
    tau = 0.5 - 1 / 7
    expected = 50 - 5 * math.exp(-7 * tau)
    e_full = 50 - 0.05 * 10  # cut-off at 5 % of the max power
    assert charge_to(40.0, 50.0, 40.0, e_full, 35.0, 70.0, 0.5) == pytest.approx(min(expected, e_full), rel=1e-12)
    # a short step stays exponential: from 46 kWh for 0.1 h
    assert charge_to(46.0, 50.0, 40.0, 60.0, 35.0, 70.0, 0.1) == pytest.approx(50 - 4 * math.exp(-0.7), rel=1e-12)


def test_charging_stops_at_cutoff():
    assert charge_to(49.0, 50.0, 40.0, 49.5, 7.0, 70.0, 10.0) == pytest.approx(49.5)
    assert charge_to(49.6, 50.0, 40.0, 49.5, 7.0, 70.0, 1.0) == 49.6  # already above: unchanged


def test_discharge_floor():
    assert discharge_to(20.0, 5.0, 10.0, 1.0) == pytest.approx(10.0)
    assert discharge_to(20.0, 15.0, 10.0, 1.0) == pytest.approx(15.0)
    assert discharge_to(3.0, 5.0, 10.0, 1.0) == pytest.approx(3.0)  # below floor: nothing drawn


@settings(max_examples=200, deadline=None)
@given(
    e0=st.floats(0, 1),
    p=st.floats(0.1, 400),
    knee=st.floats(0.5, 0.99),
    cutoff=st.floats(0.01, 0.5),
    split=st.integers(1, 12),
    dt=st.floats(0.01, 2),
)
def test_step_length_does_not_matter(e0, p, knee, cutoff, split, dt):
    """Exact integration: one step of dt equals `split` steps of dt/split."""
    cap, p_max = 60.0, 400.0
    p = min(p, p_max)
    e_full = cap * (1 - cutoff * (1 - knee))
    e_start = e0 * e_full
    one = charge_to(e_start, cap, knee * cap, e_full, p, p_max, dt)
    e = e_start
    for _ in range(split):
        e = charge_to(e, cap, knee * cap, e_full, p, p_max, dt / split)
    assert e == pytest.approx(one, rel=1e-9, abs=1e-9)
    assert e_start - 1e-12 <= one <= e_full + 1e-12
    assert one - e_start <= p * dt + 1e-9  # never faster than the charger


def test_vectorised_equals_scalar():
    rng = np.random.default_rng(0)
    n = 50
    cap = rng.uniform(30, 100, n)
    knee = rng.uniform(0.6, 0.95, n) * cap
    e_full = cap * 0.99
    e0 = rng.uniform(0, 1, n) * e_full
    p_max = rng.uniform(20, 200, n)
    p = rng.uniform(1, 1, n) * np.minimum(p_max, 11)
    vec = charge_to(e0, cap, knee, e_full, p, p_max, 0.25)
    for i in range(n):
        assert vec[i] == charge_to(e0[i], cap[i], knee[i], e_full[i], p[i], p_max[i], 0.25)
