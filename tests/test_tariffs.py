"""Tariff configs and vectorised price evaluation."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from v2gsim.market.tariffs import PERIOD_CODES, Tariff, TariffConfig, load_tariff_presets


def _at(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps))


# what a scenario gives for the fields a preset has no sourced value for (``requires``)
_REQUIRED_GIVEN = {
    "flat_cny_per_kwh": 0.6,
    "prices_cny_per_kwh": {"peak": 1.0, "flat": 0.6, "valley": 0.3},
}


def _preset(name: str) -> TariffConfig:
    req = load_tariff_presets()[name].get("requires", [])
    kw = {f: _REQUIRED_GIVEN[f] for f in req}
    if name == "jiangsu_residential":  # two periods: no flat price
        kw["prices_cny_per_kwh"] = {"peak": 0.6, "valley": 0.3}
    return TariffConfig(preset=name, **kw)


def _gd(**kw) -> Tariff:
    return Tariff.from_config(TariffConfig(preset="guangdong", **kw))


# --- hand-computed prices ------------------------------------------------------------------


def test_guangdong_hand_computed_august_critical_peak():
    t = _gd(flat_cny_per_kwh=0.60)
    times = _at(
        "2026-08-05 03:00",  # valley      0.60*0.38 = 0.228
        "2026-08-05 09:59",  # flat        0.60
        "2026-08-05 10:00",  # peak        0.60*1.7 = 1.02
        "2026-08-05 11:00",  # critical    1.02*1.25 = 1.275
        "2026-08-05 11:45",  # critical
        "2026-08-05 12:00",  # flat again (end exclusive)
        "2026-08-05 15:30",  # critical
        "2026-08-05 17:00",  # peak (critical ends at 17)
        "2026-08-05 19:00",  # flat
        "2026-08-05 23:45",  # flat
    )
    expected = [0.228, 0.60, 1.02, 1.275, 1.275, 0.60, 1.275, 1.02, 0.60, 0.60]
    np.testing.assert_allclose(t.price_cny_per_kwh(times), expected, rtol=0, atol=1e-12)
    names = t.period(times, names=True).tolist()
    assert names == [
        "valley", "flat", "peak", "critical", "critical", "flat", "critical", "peak", "flat",
        "flat",
    ]
    assert t.period(times)[3] == PERIOD_CODES["critical"]


def test_guangdong_no_critical_peak_in_march():
    t = _gd(flat_cny_per_kwh=0.60)
    times = _at("2026-03-05 11:00", "2026-03-05 15:30", "2026-03-05 10:00", "2026-03-05 12:00")
    np.testing.assert_allclose(t.price_cny_per_kwh(times), [1.02, 1.02, 1.02, 0.60], atol=1e-12)
    assert t.period(times, names=True).tolist() == ["peak", "peak", "peak", "flat"]


def test_guangdong_v2g_price_matches_domain_md():
    t = _gd()
    times = _at("2026-08-05 10:00", "2026-08-05 09:00", "2026-08-05 02:00", "2026-08-05 11:00")
    v2g = t.v2g_price_cny_per_kwh(times)
    # DOMAIN.md: 0.770 / 0.453 / 0.172, critical 0.963 (rounded to 3 d.p.)
    np.testing.assert_allclose(v2g, [0.770, 0.453, 0.172, 0.963], atol=5e-4)
    # V2G follows the critical peak only in Jul-Sep.
    assert t.v2g_price_cny_per_kwh(_at("2026-03-05 11:00"))[0] == pytest.approx(0.453 * 1.7)


def test_beijing_public_2016_with_service_fee_and_wrap():
    t = Tariff.from_config(TariffConfig(preset="beijing_public_2016"))
    times = _at("2026-01-01 23:30", "2026-01-01 06:59", "2026-01-01 07:00", "2026-01-01 10:00",
                "2026-01-01 15:00", "2026-01-01 20:59", "2026-01-01 21:00")
    expected = np.array([0.3946, 0.3946, 0.6950, 1.0044, 0.6950, 1.0044, 0.6950]) + 0.8
    np.testing.assert_allclose(t.price_cny_per_kwh(times), expected, atol=1e-12)
    np.testing.assert_array_equal(t.v2g_price_cny_per_kwh(times), 0.0)


def test_custom_tou_with_explicit_prices_and_fixed_v2g():
    cfg = TariffConfig(
        periods={"peak": [(10, 12), (14, 19)], "valley": [(0, 8)]},
        prices_cny_per_kwh={"peak": 1.1, "flat": 0.65, "valley": 0.25},
        v2g_price_cny_per_kwh=0.9,
    )
    t = Tariff.from_config(cfg)
    times = _at("2026-05-01 07:59", "2026-05-01 08:00", "2026-05-01 18:59", "2026-05-01 19:00")
    np.testing.assert_allclose(t.price_cny_per_kwh(times), [0.25, 0.65, 1.1, 0.65])
    np.testing.assert_allclose(t.v2g_price_cny_per_kwh(times), 0.9)


def test_vectorised_over_a_year_of_15min_steps():
    t = _gd()
    times = pd.date_range("2026-01-01", periods=365 * 96, freq="15min")
    p = t.price_cny_per_kwh(times)
    assert p.shape == (365 * 96,)
    crit = t.period(times) == PERIOD_CODES["critical"]
    # 3 critical hours per day, 92 days in Jul-Sep, 4 steps per hour
    assert crit.sum() == 3 * 92 * 4
    assert set(np.round(np.unique(p), 6)) == {0.247, 0.65, 1.105, 1.38125}


def test_tz_aware_index_uses_its_own_wall_clock():
    t = _gd()
    times = pd.date_range("2026-08-05 10:00", periods=2, freq="h", tz="Asia/Shanghai")
    assert t.period(times, names=True).tolist() == ["peak", "critical"]


# --- presets ------------------------------------------------------------------------------


def test_presets_equal_domain_md_figures():
    presets = load_tariff_presets()
    gd = presets["guangdong"]
    assert gd["ratios"] == {"peak": 1.7, "flat": 1.0, "valley": 0.38}
    assert gd["periods"] == {"peak": [[10, 12], [14, 19]], "valley": [[0, 8]]}
    assert gd["critical_peak"] == {"hours": [[11, 12], [15, 17]], "months": [7, 8, 9],
                                   "multiplier": 1.25}
    assert gd["v2g_base_cny_per_kwh"] == 0.453
    assert "[C]" in gd["sources"]["flat_cny_per_kwh"]
    bj = presets["beijing_public_2016"]
    assert bj["prices_cny_per_kwh"] == {"peak": 1.0044, "flat": 0.6950, "valley": 0.3946}
    assert bj["service_fee_cny_per_kwh"] == 0.8
    cd = presets["chengdu_2023"]
    assert cd["prices_cny_per_kwh"] == {"peak": 0.7536, "flat": 0.5464, "valley": 0.2602}
    assert cd["periods"]["peak"] == [[11, 12], [14, 21]]
    assert presets["beijing_private"]["flat_cny_per_kwh"] == 0.4733
    for name, p in presets.items():
        assert p["sources"], name
        for field in p:
            if field not in ("description", "sources"):
                assert field in p["sources"], (name, field)
        _preset(name)  # every preset validates


def test_every_preset_covers_the_day_with_finite_prices():
    times = pd.date_range("2026-08-01", periods=1440, freq="min")
    for name in load_tariff_presets():
        t = Tariff.from_config(_preset(name))
        assert np.isfinite(t.price_cny_per_kwh(times)).all(), name
        assert np.isfinite(t.v2g_price_cny_per_kwh(times)).all(), name


# --- overrides ----------------------------------------------------------------------------


def test_override_flat_base_scales_ratios():
    t = _gd(flat_cny_per_kwh=0.5)
    p = t.price_cny_per_kwh(_at("2026-03-01 10:00", "2026-03-01 03:00"))
    np.testing.assert_allclose(p, [0.85, 0.19])


def test_override_prices_replaces_preset_ratios():
    cfg = TariffConfig(preset="guangdong",
                       prices_cny_per_kwh={"peak": 1.0, "flat": 0.5, "valley": 0.2})
    assert cfg.ratios is None and cfg.flat_cny_per_kwh is None
    t = Tariff.from_config(cfg)
    np.testing.assert_allclose(t.price_cny_per_kwh(_at("2026-03-01 10:00")), [1.0])
    # V2G base still follows the (now derived) ratios: 0.453 * 1.0/0.5
    np.testing.assert_allclose(t.v2g_price_cny_per_kwh(_at("2026-03-01 10:00")), [0.906])


def test_override_fixed_v2g_drops_preset_base_and_keeps_preset_name():
    cfg = TariffConfig(preset="guangdong", v2g_price_cny_per_kwh=4.0)
    assert cfg.v2g_base_cny_per_kwh is None and cfg.preset == "guangdong"
    t = Tariff.from_config(cfg)
    np.testing.assert_allclose(t.v2g_price_cny_per_kwh(_at("2026-03-01 03:00")), [4.0])


def test_override_critical_peak_months():
    cfg = TariffConfig(preset="guangdong",
                       critical_peak={"hours": [(11, 12)], "months": [3], "multiplier": 2.0})
    t = Tariff.from_config(cfg)
    p = t.price_cny_per_kwh(_at("2026-03-01 11:00", "2026-08-01 11:00", "2026-03-01 15:00"))
    np.testing.assert_allclose(p, [0.65 * 1.7 * 2, 0.65 * 1.7, 0.65 * 1.7])


def test_config_is_frozen():
    cfg = TariffConfig(flat_cny_per_kwh=0.5)
    with pytest.raises(ValidationError):
        cfg.flat_cny_per_kwh = 0.6


# --- bad configs: one clear sentence each --------------------------------------------------


@pytest.mark.parametrize(
    "kw, fragment",
    [
        ({"preset": "shanghai"}, "unknown tariff preset 'shanghai'; known presets: "
                                 "beijing_private, beijing_public_2016, chengdu_2023, guangdong"),
        ({"periods": {"peak": [(10, 12)], "valley": [(11, 14)]},
          "prices_cny_per_kwh": {"peak": 1, "flat": 0.5, "valley": 0.2}},
         "periods overlap: peak and valley both cover 11:00-12:00"),
        ({"periods": {"peak": [(10, 12), (11, 13)]}, "ratios": {"peak": 1.5},
          "flat_cny_per_kwh": 0.5},
         "periods overlap: peak and peak both cover 11:00-12:00"),
        ({"periods": {"peak": [(19, 7)]}, "ratios": {"peak": 1.5}, "flat_cny_per_kwh": 0.5},
         "periods.peak: hour range [19, 7] must have start < end"),
        ({"periods": {"peak": [(10, 25)]}, "ratios": {"peak": 1.5}, "flat_cny_per_kwh": 0.5},
         "less than or equal to 24"),
        ({"periods": {"peak": [(10, 12)], "flat": [(0, 10)]},
          "prices_cny_per_kwh": {"peak": 1, "flat": 0.5}},
         "periods list 'flat' explicitly, so they must cover all 24 hours; not covered: 12:00-24:00"),
        ({"periods": {"peak": [(10, 12)]}, "prices_cny_per_kwh": {"peak": 1.0}},
         "prices_cny_per_kwh has no value for period(s) flat"),
        ({"periods": {"peak": [(10, 12)]}, "prices_cny_per_kwh": {"peak": 1.0, "flat": 0.5,
                                                                  "valley": 0.2}},
         "prices_cny_per_kwh gives period(s) valley that have no hours in periods"),
        ({"periods": {"peak": [(10, 12)]}, "ratios": {"peak": 1.7}},
         "ratios need the base price flat_cny_per_kwh"),
        ({"flat_cny_per_kwh": 0.5, "prices_cny_per_kwh": {"flat": 0.5}},
         "flat_cny_per_kwh cannot be combined with prices_cny_per_kwh"),
        ({"preset": "beijing_public_2016", "flat_cny_per_kwh": 0.5},
         "flat_cny_per_kwh cannot override preset 'beijing_public_2016'"),
        ({}, "a tariff needs flat_cny_per_kwh, prices_cny_per_kwh, or a preset"),
        ({"flat_cny_per_kwh": 0.5, "v2g_price_cny_per_kwh": 1, "v2g_base_cny_per_kwh": 0.4},
         "give either v2g_price_cny_per_kwh or v2g_base_cny_per_kwh, not both"),
        ({"flat_cny_per_kwh": -0.1}, "greater than or equal to 0"),
        ({"flat_cny_per_kwh": 0.5, "flat_price": 0.4}, "Extra inputs are not permitted"),
        ({"preset": "guangdong", "critical_peak": {"hours": [(11, 12)], "months": [13],
                                                   "multiplier": 1.25}},
         "less than or equal to 12"),
        ({"periods": {"peak": [(10.01, 12)]}, "ratios": {"peak": 1.5}, "flat_cny_per_kwh": 0.5},
         "must fall on whole minutes"),
    ],
)
def test_bad_configs_give_one_clear_sentence(kw, fragment):
    with pytest.raises(ValidationError) as exc:
        TariffConfig(**kw)
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    assert fragment in str(exc.value)


def test_a_preset_that_is_not_a_name_is_a_scenario_error():
    import v2gsim
    from v2gsim.errors import ScenarioError

    for bad in ({"a": 1}, [1], 3):
        with pytest.raises(ScenarioError, match="preset must be the name of a tariff preset"):
            v2gsim.load_scenario("smoke", {"tariff.preset": bad})
