"""Two-part tariff bills and the 2024 pilot notice's compliance tests: hand-computed cases, a
hand-built year, and both wired into a real run's KPIs."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import v2gsim
from v2gsim.market.bills import capacity_charge_cny, demand_charge_cny, monthly_demand_kw
from v2gsim.market.compliance import pilot_compliance
from v2gsim.market.tariffs import Tariff, TariffConfig

# --- demand charge ---------------------------------------------------------------------------


def _jan_feb_5min() -> pd.Series:
    """All of January 2026 and the first 7 days of February at 5-min steps."""
    idx = pd.date_range("2026-01-01", "2026-02-08", freq="5min", inclusive="left")
    p = pd.Series(50.0, index=idx)
    p[(idx >= "2026-01-10 18:00") & (idx < "2026-01-10 18:15")] = 300.0  # a full 15-min window
    p[pd.Timestamp("2026-01-20 09:05")] = 600.0  # one 5-min spike: window mean (50+600+50)/3
    p[idx >= "2026-02-01"] = 80.0
    p[pd.Timestamp("2026-02-03 12:00")] = -500.0  # export is not demand
    return p


def test_monthly_demand_is_the_highest_15_min_mean():
    d = monthly_demand_kw(_jan_feb_5min(), step_min=5)
    assert d.index.astype(str).tolist() == ["2026-01", "2026-02"]
    np.testing.assert_allclose(d.to_numpy(), [300.0, 80.0])
    # a 5-min meter would see the spike
    np.testing.assert_allclose(monthly_demand_kw(_jan_feb_5min(), step_min=5, window_min=5).to_numpy(), [600.0, 80.0])


def test_demand_charge_hand_computed_with_a_part_month():
    p = _jan_feb_5min()
    # January in full: 40 x 300 = 12,000; February 7 of 28 days: 40 x 80 x 7/28 = 800
    assert demand_charge_cny(p, 40.0, step_min=5) == pytest.approx(12_800.0)
    assert demand_charge_cny(p, 40.0, step_min=5, prorate=False) == pytest.approx(12_000.0 + 3_200.0)


def test_capacity_charge_hand_computed():
    times = pd.date_range("2026-07-01", periods=14 * 96, freq="15min")  # 14 days of July
    assert capacity_charge_cny(630.0, 24.0, times, step_min=15) == pytest.approx(630 * 24 * 14 / 31)
    assert capacity_charge_cny(630.0, 24.0, times, step_min=15, prorate=False) == pytest.approx(630 * 24)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 1000), min_size=96, max_size=96), st.floats(0.0, 2.0))
def test_demand_charge_is_monotone_and_scales_with_power(values, k):
    p = pd.Series(values, index=pd.date_range("2026-03-01", periods=96, freq="15min"))
    base = demand_charge_cny(p, 30.0, step_min=15)
    assert demand_charge_cny(p * k, 30.0, step_min=15) == pytest.approx(k * base, rel=1e-9, abs=1e-9)
    assert demand_charge_cny(p + 10.0, 30.0, step_min=15) >= base
    assert base == pytest.approx(30.0 * max(values) / 31, rel=1e-9, abs=1e-9)  # one day of March


# --- compliance on a hand-built year -------------------------------------------------------------------

_TOU = Tariff.from_config(TariffConfig(periods={"valley": [(0, 8)], "peak": [(18, 21)]},
                                       prices_cny_per_kwh={"valley": 0.3, "flat": 0.6, "peak": 1.0}))


def _year(days: int = 365):
    times = pd.date_range("2025-01-01", periods=days * 24, freq="h")
    h = times.hour.to_numpy()
    charge = np.where(h < 8, 10.0, 0.0) + np.where((h >= 12) & (h < 14), 10.0, 0.0)  # 80 valley + 20 flat kWh/day
    private = np.where(h < 8, 5.0, 0.0) + np.where(h == 12, 10.0, 0.0)  # 40 valley + 10 flat: exactly 80 %
    discharge = np.where((h >= 18) & (h < 21), 100.0, 0.0)  # 300 kWh/day at 100 kW
    return times, charge, discharge, private


def test_compliance_hand_built_year():
    times, charge, discharge, private = _year()
    k = pilot_compliance(times, charge, discharge, _TOU, step_min=60, private_charge_kw=private)
    assert k["compliance_valley_charging_share_pct"] == pytest.approx(80.0)
    assert k["compliance_valley_charging_pass"] == 1.0  # >= 60 %
    assert k["compliance_private_valley_charging_share_pct"] == pytest.approx(80.0)
    assert k["compliance_private_valley_charging_pass"] == 1.0  # exactly at >= 80 %
    assert k["compliance_discharge_peak_kw"] == 100.0
    assert k["compliance_discharge_power_pass"] == 0.0  # below 500 kW
    assert k["compliance_annual_discharge_kwh"] == pytest.approx(300.0 * 365)
    assert k["compliance_annual_discharge_extrapolated"] == 0.0
    assert k["compliance_annual_discharge_pass"] == 1.0  # 109,500 >= 100,000
    assert k["compliance_pass"] == 0.0  # the power test fails


def test_compliance_thresholds_and_extrapolation():
    times, charge, discharge, private = _year(days=73)  # a fifth of a year
    k = pilot_compliance(times, charge, discharge * 6, _TOU, step_min=60, private_charge_kw=private * 0.9 + 0.1)
    assert k["compliance_annual_discharge_extrapolated"] == 1.0
    assert k["compliance_annual_discharge_kwh"] == pytest.approx(1800.0 * 365)  # 1,800 kWh/day x 365
    assert k["compliance_discharge_peak_kw"] == 600.0 and k["compliance_discharge_power_pass"] == 1.0
    assert k["compliance_private_valley_charging_share_pct"] < 80.0
    assert k["compliance_private_valley_charging_pass"] == 0.0
    assert k["compliance_pass"] == 0.0


def test_compliance_not_applicable_without_valley_hours_or_private_piles():
    times, charge, discharge, _ = _year(days=7)
    flat = Tariff.from_config(TariffConfig(flat_cny_per_kwh=0.6))
    k = pilot_compliance(times, charge, discharge * 10, flat, step_min=60)
    for name in ("valley_charging_share_pct", "valley_charging_pass", "private_valley_charging_share_pct",
                 "private_valley_charging_pass"):
        assert "compliance_" + name not in k  # not applicable: left out, never NaN
    # the applicable tests (power 1,000 kW; 3,000 kWh/day x 365) pass
    assert k["compliance_pass"] == 1.0


def test_which_keys_exist_depends_on_the_scenario_not_the_run():
    times, charge, discharge, private = _year(days=2)
    ran = pilot_compliance(times, charge, discharge, _TOU, step_min=60, private_charge_kw=private)
    idle = pilot_compliance(times[:1], charge[:1] * 0, discharge[:1] * 0, _TOU, step_min=60,
                            private_charge_kw=private[:1] * 0)
    assert set(idle) == set(ran)
    assert np.isnan(idle["compliance_valley_charging_share_pct"]) and np.isnan(idle["compliance_valley_charging_pass"])
    assert idle["compliance_pass"] == 0.0  # the discharge tests still fail


def test_kpi_names_of_a_one_step_run_include_the_compliance_keys():
    from v2gsim.runner import kpi_names

    sc = v2gsim.load_scenario("distributed_community")
    names = kpi_names(sc, baseline=False)
    assert {"compliance_valley_charging_share_pct", "compliance_private_valley_charging_pass",
            "compliance_pass"} <= names


def test_holidays_count_as_valley_when_the_tariff_says_so():
    times = pd.date_range("2026-10-01", periods=24, freq="h")  # National Day
    t = Tariff.from_config(TariffConfig(preset="zhejiang_2026", flat_cny_per_kwh=0.6))
    charge = np.where((times.hour >= 9) & (times.hour < 15), 10.0, 0.0)  # deep valley on that day
    k = pilot_compliance(times, charge, np.zeros(24), t, step_min=60)
    assert k["compliance_valley_charging_share_pct"] == pytest.approx(100.0)


# --- wired into a run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def depot_run():
    sc = v2gsim.load_scenario("smoke", {"tariff": {"preset": "guangdong", "demand_charge_cny_per_kw_month": 40.0}})
    return v2gsim.run(sc)


def test_run_kpis_match_the_pure_functions(depot_run):
    res = depot_run
    k = res.kpis
    step = res.metadata["scenario"]["time"]["step_min"]
    by_site = res.sites.pivot_table(index="time", columns="site_id", values="p_kw", observed=False)
    expected = sum(demand_charge_cny(by_site[c], 40.0, step_min=step) for c in by_site.columns)
    assert expected > 0
    assert k["demand_charge_cny"] == pytest.approx(expected)
    assert "capacity_charge_cny" not in k
    # valley share from the system table and the Guangdong valley 0-8
    sys = res.system
    e = sys["ev_charge_kw"]
    share = e[sys.index.hour < 8].sum() / e.sum() * 100
    assert k["compliance_valley_charging_share_pct"] == pytest.approx(share)
    assert k["compliance_annual_discharge_extrapolated"] == 1.0


def test_feeder_meter_and_capacity_charge_in_a_run():
    sc = v2gsim.load_scenario("smoke", {"tariff": {"flat_cny_per_kwh": 0.6, "demand_charge_cny_per_kw_month": 40.0,
                                                   "demand_meter": "feeder"}})
    res = v2gsim.run(sc)
    step = res.metadata["scenario"]["time"]["step_min"]
    assert res.kpis["demand_charge_cny"] == pytest.approx(demand_charge_cny(res.system["net_load_kw"], 40.0, step_min=step))
    sc = v2gsim.load_scenario("smoke", {"tariff": {"flat_cny_per_kwh": 0.6, "capacity_charge_cny_per_kva_month": 24.0}})
    res = v2gsim.run(sc)
    days = len(res.system) * step / 1440
    month_days = res.system.index[0].days_in_month
    assert res.kpis["capacity_charge_cny"] == pytest.approx(24.0 * res.transformer_kva * days / month_days)


def test_report_shows_the_bills_and_compliance_topics(depot_run):
    from v2gsim.report import build_report

    page = build_report(depot_run)
    assert "<h3>Tariff bills</h3>" in page and "<h3>Policy compliance</h3>" in page
    assert "demand_charge_cny" in page and "1 pass / 0 fail" in page
    assert "demand charge 40 CNY/kW-month (sites)" in page  # the scenario's tariff line
