"""The peak charge of the dispatch LPs (DispatchProblem.peak_cny_per_kw / peak_ref_kw): a
demand charge seen from a rolling horizon, hand-computed small cases."""

from __future__ import annotations

import numpy as np
import pytest

from v2gsim.strategies.dispatch import DispatchProblem, plan_aggregate, plan_exact
from v2gsim.strategies.dispatch.problem import schedule_score


def _problem(**kw) -> DispatchProblem:
    # two cars, 4 half-hour steps at one flat price, each needs 10 kWh (eta 1), 20 kW chargers:
    # without a peak charge every schedule that delivers the energy costs the same
    base = dict(dt_h=0.5, price_buy_cny_per_kwh=np.full(4, 0.6), price_v2g_cny_per_kwh=np.zeros(4),
                arrival_step=[0, 0], departure_step=[4, 4], e0_kwh=[0.0, 0.0], e_cap_kwh=[40.0, 40.0],
                e_min_kwh=[0.0, 0.0], e_need_kwh=[10.0, 10.0], p_ch_max_kw=[20.0, 20.0], p_dis_max_kw=[0.0, 0.0],
                eta_ch=1.0, eta_dis=1.0)
    base.update(kw)
    return DispatchProblem(**base)


@pytest.mark.parametrize("planner", ["exact", "aggregate"])
def test_peak_charge_spreads_charging_over_equal_prices(planner):
    # 20 kWh in 2 h: the lowest possible peak is 10 kW, flat
    prob = _problem(peak_cny_per_kw=0.2)
    site = plan_exact(prob).p_site_kw if planner == "exact" else plan_aggregate(prob).p_kw
    np.testing.assert_allclose(site, 10.0, atol=1e-6)


def test_peak_charge_is_free_up_to_the_peak_so_far():
    # a billing-period peak of 15 kW already set: any schedule under it costs nothing more, so the
    # plan may charge unevenly up to 15 kW but never above
    prob = _problem(peak_cny_per_kw=5.0, peak_ref_kw=15.0, price_buy_cny_per_kwh=np.array([0.6, 0.5, 0.6, 0.6]))
    site = plan_exact(prob).p_site_kw
    assert site.max() == pytest.approx(15.0, abs=1e-6)  # the cheap step is filled to the reference peak
    assert site.sum() * 0.5 == pytest.approx(20.0, abs=1e-6)
    # the score counts the rise above the reference only: 5 CNY/kW x (20 - 15) kW for a 20 kW step
    p = np.array([[20.0, 0.0, 0.0, 0.0], [0.0, 0.0, 20.0, 0.0]])
    energy = 0.5 * (20 * 0.6 + 20 * 0.6)
    assert schedule_score(prob, p) == pytest.approx(energy + 5.0 * 5.0)


def test_without_a_peak_charge_the_problem_is_unchanged():
    a, b = plan_exact(_problem()), plan_exact(_problem(peak_cny_per_kw=0.0, peak_ref_kw=30.0))
    assert a.cost_cny == pytest.approx(b.cost_cny)
    with pytest.raises(ValueError, match="peak_cny_per_kw"):
        _problem(peak_cny_per_kw=-1.0)
