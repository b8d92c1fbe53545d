"""Seasons, holidays, critical peaks per season, service fees, linked V2G prices: hand-computed
prices; the presets against the figures their sources report; validation errors with paths."""

import numpy as np
import pandas as pd
import pytest

import v2gsim
from v2gsim.errors import ScenarioError
from v2gsim.market.tariffs import Tariff, TariffConfig


def _at(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps))


def _t(**kw) -> Tariff:
    return Tariff.from_config(TariffConfig(**kw))


# --- seasons -------------------------------------------------------------------------------


def test_seasonal_periods_and_prices_hand_computed():
    t = _t(
        periods={"peak": [(18, 21)], "valley": [(0, 8)]},
        prices_cny_per_kwh={"peak": 1.0, "flat": 0.6, "valley": 0.3},
        seasons=[{"name": "summer", "months": [7, 8], "periods": {"peak": [(10, 14)], "valley": [(0, 6)]},
                  "prices_cny_per_kwh": {"peak": 1.2, "flat": 0.7, "valley": 0.35}}],
    )
    times = _at(
        "2026-07-01 11:00",  # summer peak             1.2
        "2026-07-01 19:00",  # summer: flat            0.7
        "2026-07-01 07:00",  # summer: flat (valley ends at 6)  0.7
        "2026-08-31 05:59",  # summer valley           0.35
        "2026-03-01 19:00",  # rest of year peak       1.0
        "2026-03-01 11:00",  # rest of year flat       0.6
        "2026-09-01 07:00",  # rest of year valley     0.3
    )
    np.testing.assert_allclose(t.price_cny_per_kwh(times), [1.2, 0.7, 0.7, 0.35, 1.0, 0.6, 0.3], atol=1e-12)
    assert t.period(times, names=True).tolist() == ["peak", "flat", "flat", "valley", "peak", "flat", "valley"]


def test_season_ratios_on_the_tariff_base():
    t = _t(flat_cny_per_kwh=0.5, periods={}, seasons=[
        {"name": "winter", "months": [12, 1], "periods": {"peak": [(17, 20)]}, "ratios": {"peak": 2.0}}])
    np.testing.assert_allclose(t.price_cny_per_kwh(_at("2026-12-01 18:00", "2026-06-01 18:00")), [1.0, 0.5])


def test_shanghai_summer_has_a_midday_peak_the_rest_of_the_year_has_not():
    cfg = TariffConfig(preset="shanghai_2_season", prices_cny_per_kwh={"peak": 1.0, "flat": 0.6, "valley": 0.3})
    t = Tariff.from_config(cfg)
    # source (epkeeperlib bill/tou.py, Shanghai): summer peak hours 8-10, 13-14, 18-20; else 8-10, 18-20
    assert t.period(_at("2026-07-15 13:30", "2026-03-15 13:30", "2026-03-15 22:00"), names=True).tolist() == [
        "peak", "flat", "valley"]


# --- holidays ------------------------------------------------------------------------------


def _holiday_tariff(names=None) -> Tariff:
    return _t(flat_cny_per_kwh=0.6, periods={"peak": [(10, 14)]}, ratios={"peak": 1.5, "deep_valley": 0.2},
              critical_peak={"hours": [(11, 12)], "months": [10], "multiplier": 1.2},
              holidays={"names": names, "periods": {"deep_valley": [(10, 14)]}} if names else
              {"periods": {"deep_valley": [(10, 14)]}})


def test_national_day_is_deep_valley_and_has_no_critical_peak():
    t = _holiday_tariff(["National Day"])
    times = _at(
        "2026-10-01 11:00",  # National Day (holidays.China): deep valley 0.6*0.2 = 0.12, no critical
        "2026-10-05 13:00",  # National Day (observed) in 2026: deep valley
        "2026-10-08 11:00",  # working day in October: critical 0.6*1.5*1.2 = 1.08
        "2026-10-08 13:00",  # peak 0.9
        "2026-10-07 13:00",  # a moved day off, not named 'National Day': peak 0.9
        "2026-05-01 13:00",  # Labor Day is not listed: peak 0.9
        "2026-10-01 15:00",  # holiday outside its periods: flat 0.6
    )
    np.testing.assert_allclose(t.price_cny_per_kwh(times), [0.12, 0.12, 1.08, 0.9, 0.9, 0.9, 0.6], atol=1e-12)
    assert t.is_holiday(times).tolist() == [True, True, False, False, False, False, True]


def test_all_holidays_include_moved_days_off():
    t = _holiday_tariff()
    assert t.is_holiday(_at("2026-10-07 13:00", "2026-02-17 13:00", "2026-02-14 13:00")).tolist() == [
        True, True, False]  # a moved day off; Spring Festival; 14 Feb 2026 is a working Saturday


def test_holidays_on_a_tz_aware_index_use_local_dates():
    t = _holiday_tariff(["National Day"])
    utc = pd.DatetimeIndex(["2026-10-01 03:00"], tz="UTC").tz_convert("Asia/Shanghai")  # 11:00 local
    np.testing.assert_allclose(t.price_cny_per_kwh(utc), [0.12])


def test_zhejiang_labor_day_deep_valley():
    t = Tariff.from_config(TariffConfig(preset="zhejiang_2026", flat_cny_per_kwh=0.6))
    p = t.price_cny_per_kwh(_at("2026-05-01 10:00", "2026-05-06 10:00", "2026-05-06 17:00", "2026-07-06 19:00"))
    # deep valley 0.2, flat, peak 1.85, critical 2.05 (notice ratios)
    np.testing.assert_allclose(p, [0.6 * 0.2, 0.6, 0.6 * 1.85, 0.6 * 2.05], atol=1e-12)


# --- critical peak in several seasons --------------------------------------------------------


def test_sichuan_critical_peak_summer_and_winter_is_1_92_times_flat():
    t = Tariff.from_config(TariffConfig(preset="sichuan_2023", flat_cny_per_kwh=0.6))
    times = _at("2026-07-15 15:30", "2026-12-15 19:30", "2026-12-15 15:30", "2026-07-15 19:30",
                "2026-03-15 15:30", "2026-03-15 03:00")
    # source: critical = peak +20 % = 1.92 x flat; peak 1.6 x flat; valley 0.4 x flat
    np.testing.assert_allclose(t.price_cny_per_kwh(times), [1.152, 1.152, 0.96, 0.96, 0.96, 0.24], atol=1e-12)
    assert t.period(times[:2], names=True).tolist() == ["critical", "critical"]


# --- service fee and linked V2G price -----------------------------------------------------------


def test_service_fee_is_added_to_purchase_not_to_linked_v2g_price():
    t = _t(periods={"peak": [(10, 12)], "valley": [(0, 8)]}, prices_cny_per_kwh={"peak": 1.0, "flat": 0.6, "valley": 0.3},
           critical_peak={"hours": [(11, 12)], "months": [8], "multiplier": 1.25},
           service_fee_cny_per_kwh=0.8, v2g_price_factor=1.0)
    times = _at("2026-08-01 11:00", "2026-08-01 10:00", "2026-08-01 03:00")
    np.testing.assert_allclose(t.price_cny_per_kwh(times), [1.25 + 0.8, 1.0 + 0.8, 0.3 + 0.8])
    np.testing.assert_allclose(t.v2g_price_cny_per_kwh(times), [1.25, 1.0, 0.3])  # the hour's energy price


def test_v2g_price_factor_is_a_share_of_the_hour_price():
    t = _t(flat_cny_per_kwh=0.5, periods={"peak": [(10, 12)]}, ratios={"peak": 2.0}, v2g_price_factor=0.8)
    np.testing.assert_allclose(t.v2g_price_cny_per_kwh(_at("2026-01-01 10:00", "2026-01-01 13:00")), [0.8, 0.4])


def test_guangzhou_v2g_spreads_match_the_reported_ones():
    # xianjichina.com (Guangzhou V2G rule, 2025): base 0.453 x ratios; critical-valley spread
    # 0.7905 CNY/kWh, peak-valley spread 0.598 CNY/kWh
    t = Tariff.from_config(TariffConfig(preset="guangdong"))
    crit, peak, valley = t.v2g_price_cny_per_kwh(_at("2026-08-05 11:00", "2026-08-05 10:00", "2026-08-05 03:00"))
    assert crit - valley == pytest.approx(0.7905, abs=5e-4)
    assert peak - valley == pytest.approx(0.598, abs=5e-4)


def test_v2g_price_override_drops_the_preset_linked_form():
    cfg = TariffConfig(preset="guangdong", v2g_price_factor=1.0)
    assert cfg.v2g_base_cny_per_kwh is None
    t = Tariff.from_config(cfg)
    np.testing.assert_allclose(t.v2g_price_cny_per_kwh(_at("2026-03-01 10:00")), [0.65 * 1.7])


# --- validation: YAML path and a fix ----------------------------------------------------------------


@pytest.mark.parametrize(
    "tariff, path, fragment",
    [
        ({"flat_cny_per_kwh": 0.5, "ratios": {"peak": 1.5}, "periods": {},
          "seasons": [{"name": "s", "months": [7], "periods": {"peak": [[10, 12], [11, 13]]}}]},
         "tariff.seasons[0]", "periods overlap: peak and peak both cover 11:00-12:00"),
        ({"flat_cny_per_kwh": 0.5, "ratios": {"peak": 1.5},
          "seasons": [{"name": "s", "months": [7, 8], "periods": {"peak": [[10, 12]]}}]},
         "tariff", "months 1, 2, 3, 4, 5, 6, 9, 10, 11, 12 are in no season"),
        ({"flat_cny_per_kwh": 0.5, "ratios": {"peak": 1.5}, "periods": {},
          "seasons": [{"name": "a", "months": [7, 8], "periods": {"peak": [[10, 12]]}},
                      {"name": "b", "months": [8, 9], "periods": {"peak": [[10, 12]]}}]},
         "tariff", "seasons[1].months: month 8 is also in seasons[0] (a)"),
        ({"flat_cny_per_kwh": 0.5, "periods": {},
          "seasons": [{"name": "a", "months": [13], "periods": {}}]},
         "tariff.seasons[0].months[0]", "must be ≤ 12"),
        ({"flat_cny_per_kwh": 0.5, "periods": {},
          "seasons": [{"name": "a", "months": [7, 7], "periods": {}}]},
         "tariff.seasons[0]", "month(s) 7 listed twice"),
        ({"flat_cny_per_kwh": 0.5, "ratios": {"peak": 1.5}, "periods": {},
          "seasons": [{"name": "a", "months": [7], "periods": {"peak": [[10, 12]], "flat": [[0, 10]]}}]},
         "tariff.seasons[0]", "not covered: 12:00-24:00"),
        ({"flat_cny_per_kwh": 0.5, "periods": {"peak": [[10, 12]]}, "ratios": {"peak": 1.5},
          "critical_peak": [{"hours": [[11, 12]], "months": [7], "multiplier": 1.2},
                            {"hours": [[15, 16]], "months": [7, 8], "multiplier": 1.2}]},
         "tariff", "critical_peak[1].months: month 7 is also in critical_peak[0]"),
        ({"preset": "guangdong", "critical_peak": {"hours": [[11, 25]], "months": [7], "multiplier": 1.2}},
         "tariff.critical_peak", "≤ 24"),
        ({"flat_cny_per_kwh": 0.5, "ratios": {"deep_valley": 0.2},
          "holidays": {"names": ["Labour Day"], "periods": {"deep_valley": [[10, 14]]}}},
         "tariff.holidays", "'Labour Day' matches no holiday of China's calendar; did you mean 'Labor Day'?"),
        ({"flat_cny_per_kwh": 0.5, "holidays": {"periods": {"deep_valley": [[10, 14]]}}},
         "tariff", "periods deep_valley need prices_cny_per_kwh or ratios"),
        ({"flat_cny_per_kwh": 0.5, "ratios": {"peak": 1.5}, "periods": {"peak": [[10, 12]]},
          "holidays": {"periods": {"deep_valley": [[10, 14]]}}},
         "tariff", "ratios has no value for period(s) deep_valley"),
        ({"preset": "sichuan_2023"}, "tariff", "preset 'sichuan_2023' has no sourced value for flat_cny_per_kwh; "
                                               "set tariff.flat_cny_per_kwh"),
        ({"flat_cny_per_kwh": 0.5, "demand_charge_cny_per_kw_month": 30, "capacity_charge_cny_per_kva_month": 20},
         "tariff", "bills either demand_charge_cny_per_kw_month"),
        ({"flat_cny_per_kwh": 0.5, "capacity_kva": 630}, "tariff", "capacity_kva is only used with"),
        ({"flat_cny_per_kwh": 0.5, "v2g_price_factor": 1.0, "v2g_price_cny_per_kwh": 0.5}, "tariff",
         "give either v2g_price_cny_per_kwh or v2g_price_factor, not both"),
    ],
)
def test_bad_tariffs_name_the_yaml_path_and_a_fix(tariff, path, fragment):
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario("smoke", {"tariff": tariff})
    problems = exc.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    assert problems[0].path.startswith(path), str(problems[0])
    assert fragment in str(problems[0])


# --- invariants ------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_hours = st.integers(0, 23)


@st.composite
def _seasonal_tariffs(draw):
    months = draw(st.permutations(list(range(1, 13))))
    cut = draw(st.integers(1, 11))
    def day():  # noqa: E306
        a, b = sorted(draw(st.lists(_hours, min_size=2, max_size=2, unique=True)))
        return {"peak": [(a, b)]}
    fee = draw(st.floats(0, 1))
    crit_month = draw(st.sampled_from(months[:cut]))
    return dict(flat_cny_per_kwh=draw(st.floats(0.1, 1.0)), ratios={"peak": draw(st.floats(1.0, 3.0))},
                periods=day(), seasons=[{"name": "s", "months": sorted(months[:cut]), "periods": day()}],
                critical_peak={"hours": [(0, 24)], "months": [crit_month], "multiplier": draw(st.floats(1.0, 2.0))},
                service_fee_cny_per_kwh=fee, v2g_price_factor=1.0)


@settings(max_examples=40, deadline=None)
@given(_seasonal_tariffs())
def test_any_seasonal_tariff_prices_every_minute_and_links_v2g_to_the_energy_price(kw):
    t = _t(**kw)
    times = pd.date_range("2026-01-01", "2027-01-01", freq="17min", inclusive="left")
    price, v2g = t.price_cny_per_kwh(times), t.v2g_price_cny_per_kwh(times)
    assert np.isfinite(price).all()
    np.testing.assert_allclose(v2g, price - kw["service_fee_cny_per_kwh"], atol=1e-12)
    codes = t.period(times, names=True)
    crit = times.month == kw["critical_peak"]["months"][0]
    assert (codes[crit] == "critical").all() and not (codes[~crit] == "critical").any()
    # the critical month costs the multiplier more than the flat base or peak at the same minute
    assert price[crit].min() >= kw["flat_cny_per_kwh"] + kw["service_fee_cny_per_kwh"] - 1e-12
