"""cn:<province>:office / :mall / :commercial: the standard's hourly schedules on China's calendar."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import v2gsim
from v2gsim.data.cn_buildings import (
    building_metadata,
    building_profile,
    building_profile_names,
    building_provinces,
    daily_mean_temperature,
    day_power_w_per_m2,
)
from v2gsim.data.profiles import available_profiles, profile_on_clock
from v2gsim.errors import ScenarioError
from v2gsim.physics.ambient import ambient_presets
from helpers import write_base_load_scenario

# Installed power densities of the YAML (W/m2, [C]); the schedule fractions below are the
# source's (GB 55015-2021 App. C as transcribed, [B]), read off its tables by hand.
OFFICE_LIGHT, OFFICE_EQUIP, MALL_LIGHT, MALL_EQUIP, HOTEL_LIGHT, HOTEL_EQUIP = 9.0, 15.0, 10.0, 13.0, 7.0, 15.0
AC_W_PER_M2_PER_K, BALANCE_DEGC = 1.5, 20.0


def day(profile: np.ndarray, date: str) -> np.ndarray:
    d = pd.Timestamp(date).dayofyear - 1
    return profile.reshape(-1, 24)[d]


def test_names_cover_the_provinces_with_a_temperature_normal_and_are_listed():
    names = building_profile_names()
    assert len(names) == 29 * 4  # 31 provinces less Tibet and Gansu, whose capitals have no sourced normal
    assert {"cn:guangdong:commercial", "cn:guangdong:office", "cn:guangdong:mall", "cn:guangdong:hotel",
            "cn:beijing:commercial"} <= set(names)
    assert set(names) <= set(available_profiles())
    assert not any(n.endswith(":residential") for n in available_profiles())  # none sourced: none shipped
    for city in building_provinces().values():
        assert city in ambient_presets()


@pytest.mark.parametrize(
    ("kind", "day_type", "hour", "light", "equip"),
    [
        # office workday: 07:00 arrival 10 %, 09:00-12:00 95 %, lunch 12:00-14:00 lighting 80 % /
        # equipment 50 %, 18:00-20:00 30 %, off at night
        ("office", "workday", 7, 0.1, 0.1),
        ("office", "workday", 10, 0.95, 0.95),
        ("office", "workday", 12, 0.8, 0.5),
        ("office", "workday", 19, 0.3, 0.3),
        ("office", "workday", 3, 0.0, 0.0),
        ("office", "rest_day", 10, 0.0, 0.0),
        # mall, every day: lighting 100 % 19:00-22:00 and 10 % at night, equipment 80 % 10:00-20:00
        ("mall", "workday", 19, 1.0, 0.8),
        ("mall", "rest_day", 20, 1.0, 0.7),
        ("mall", "workday", 11, 0.6, 0.8),
        ("mall", "workday", 23, 0.1, 0.0),
        # hotel, every day: lighting 30 % 07:00-15:00, 90 % 18:00-22:00, 80 % at 22:00; equipment
        # 80 % 18:00-23:00 only
        ("hotel", "workday", 10, 0.3, 0.0),
        ("hotel", "rest_day", 19, 0.9, 0.8),
        ("hotel", "workday", 22, 0.8, 0.8),
        ("hotel", "workday", 23, 0.1, 0.0),
    ],
)
def test_hours_match_the_standard_table(kind, day_type, hour, light, equip):
    lpd, epd = {"office": (OFFICE_LIGHT, OFFICE_EQUIP), "mall": (MALL_LIGHT, MALL_EQUIP), "hotel": (HOTEL_LIGHT, HOTEL_EQUIP)}[kind]
    # at the balance temperature the AC draws nothing: lighting + equipment only
    w = day_power_w_per_m2(kind, day_type, BALANCE_DEGC)
    assert w[hour] == pytest.approx(lpd * light + epd * equip, abs=1e-12)


def test_air_conditioning_runs_in_the_standard_hours_with_the_degree_day_level():
    hot = 30.0
    for kind, on_hours in (("office", range(7, 19)), ("mall", range(8, 19)), ("hotel", range(24))):
        ac = day_power_w_per_m2(kind, "workday", hot) - day_power_w_per_m2(kind, "workday", BALANCE_DEGC)
        expected = np.zeros(24)
        expected[list(on_hours)] = AC_W_PER_M2_PER_K * (hot - BALANCE_DEGC)
        np.testing.assert_allclose(ac, expected, atol=1e-12)
    cold = day_power_w_per_m2("mall", "workday", -20.0)
    np.testing.assert_allclose(cold, day_power_w_per_m2("mall", "workday", BALANCE_DEGC))  # no electric heating


@given(st.floats(-40, 45), st.floats(0, 10), st.sampled_from(["office", "mall", "hotel"]), st.sampled_from(["workday", "rest_day"]))
def test_power_is_non_negative_and_grows_with_temperature(t, dt, kind, day_type):
    lo, hi = day_power_w_per_m2(kind, day_type, t), day_power_w_per_m2(kind, day_type, t + dt)
    assert (lo >= 0).all() and (hi >= lo - 1e-12).all()


def test_daily_temperature_passes_through_the_monthly_normals():
    t = daily_mean_temperature("guangzhou", 2026)
    monthly = ambient_presets()["guangzhou"]["monthly_mean_degc"]
    assert t.shape == (365,)
    # mid-month (16 July is day 196, 0-based; its middle is 196.5) gives the normal itself
    assert t[196] == pytest.approx(monthly[6], abs=1e-12)
    assert t.min() >= min(monthly) - 1e-9 and t.max() <= max(monthly) + 1e-9


@pytest.mark.parametrize("name", ["cn:guangdong:office", "cn:beijing:mall", "cn:heilongjiang:commercial"])
@pytest.mark.parametrize("year", [2024, 2026])
def test_a_year_has_mean_one_and_one_value_per_hour(name, year):
    p = building_profile(name, year)
    assert p.shape == ((366 if year == 2024 else 365) * 24,) and p.mean() == pytest.approx(1.0, rel=1e-12)
    assert p.min() >= 0


def test_office_days_follow_chinas_official_calendar():
    p = building_profile("cn:shanghai:office", 2026)
    tue, sat = day(p, "2026-03-03"), day(p, "2026-03-07")
    assert tue.sum() > 0 and sat.sum() == 0  # offices rest on weekends
    assert day(p, "2026-02-17").sum() == 0  # Spring Festival holiday on a Tuesday
    # Saturday 14 Feb 2026 is worked in exchange (调休): the workday of Friday 13 Feb (no AC in a
    # Shanghai February, so the two days are equal)
    np.testing.assert_allclose(day(p, "2026-02-14"), day(p, "2026-02-13"), rtol=1e-12)
    assert day(p, "2026-02-14").sum() > 0
    # the mall runs every day
    m = building_profile("cn:shanghai:mall", 2026)
    assert day(m, "2026-03-07").sum() > 0 and day(m, "2026-02-17").sum() > 0


def test_office_hours_ratio_is_the_hand_computed_one_on_a_hot_day():
    # 16 July in Guangzhou: daily mean = the July normal 29.5 degC, AC = 1.5 x 9.5 = 14.25 W/m2;
    # 10:00 = 0.95 x 9 + 0.95 x 15 + 14.25 = 37.05 W/m2; 19:00 (AC off) = 0.3 x 9 + 0.3 x 15 = 7.2
    d = day(building_profile("cn:guangdong:office", 2026), "2026-07-16")
    assert d[10] / d[19] == pytest.approx(37.05 / 7.2, rel=1e-12)


def test_mall_evening_peak_is_where_the_standard_puts_it():
    # without air conditioning (a Harbin or Beijing winter day) the mall's load peaks at
    # 19:00-20:00, where the standard's lighting reaches 100 % while equipment is still at 80 %
    for name in ("cn:heilongjiang:mall", "cn:beijing:mall"):
        d = day(building_profile(name, 2026), "2026-01-15")
        assert d.argmax() == 19
        assert d[19] / d[3] == pytest.approx((MALL_LIGHT + 0.8 * MALL_EQUIP) / (0.1 * MALL_LIGHT), rel=1e-12)
    # the commercial mix on a winter Sunday is the mall alone: the same evening peak
    assert day(building_profile("cn:beijing:commercial", 2026), "2026-01-18").argmax() == 19
    # hotels peak 18:00-22:00 (lighting 90 %, equipment 80 %), at the same level in every hour of it
    h = day(building_profile("cn:heilongjiang:hotel", 2026), "2026-01-15")
    assert h.argmax() == 18 and np.allclose(h[18:22], h.max())
    assert h[18] / h[3] == pytest.approx((0.9 * HOTEL_LIGHT + 0.8 * HOTEL_EQUIP) / (0.1 * HOTEL_LIGHT), rel=1e-12)


def test_summer_air_conditioning_lifts_the_south_more_than_the_north():
    def july_over_january(name):
        p = building_profile(name, 2026).reshape(-1, 24)
        return p[181:212].mean() / p[0:31].mean()

    gd, hl = july_over_january("cn:guangdong:commercial"), july_over_january("cn:heilongjiang:commercial")
    assert gd > hl > 1.0  # Guangzhou July 29.5 degC vs Harbin 23.5 degC over a 20 degC balance


def test_resampling_conserves_energy():
    def energy(step_min):
        t = pd.date_range("2026-07-06", periods=7 * 1440 // step_min, freq=f"{step_min}min")
        return profile_on_clock("cn:guangdong:commercial", t, step_min).sum() * step_min / 60

    assert energy(15) == pytest.approx(energy(60), rel=1e-12)
    assert energy(20) == pytest.approx(energy(60), rel=1e-12)




def test_a_scenario_selects_a_commercial_profile(tmp_path):
    path = write_base_load_scenario(tmp_path, "cn:guangdong:commercial")
    r = v2gsim.run(v2gsim.load_scenario(path))
    expected = 100.0 * day(building_profile("cn:guangdong:commercial", 2026), "2026-07-06")
    np.testing.assert_allclose(r.system["base_load_kw"].to_numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize(("typo", "meant"), [("cn:guangdong:comercial", "cn:guangdong:commercial"),
                                             ("cn:shanghai:ofice", "cn:shanghai:office")])
def test_a_misspelt_profile_gets_a_did_you_mean_with_its_line(tmp_path, typo, meant):
    path = write_base_load_scenario(tmp_path, typo)
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(path)
    (p,) = exc.value.problems
    assert p.path == "feeder.base_load.profile" and p.line == 3
    assert f"unknown standard load profile {typo!r}" in p.message
    assert p.hint.startswith(f"did you mean {meant!r}")
    assert "cn:<province>:office, :mall, :hotel or :commercial for anhui, beijing, chongqing" in p.hint


def test_metadata_names_the_source_and_tags():
    meta = building_metadata()
    assert "GB 55015-2021" in meta["source"] and "[B]" in meta["source"]
    assert sum(meta["commercial_mix"].values()) == pytest.approx(1.0)


def test_daily_temperature_agrees_with_the_ambient_preset_over_a_day():
    # the AC is driven by the same temperature the battery-wear model sees: the preset's mean
    # over each day (its cosine diurnal cycle averages out)
    from v2gsim.physics.ambient import AmbientConfig, ambient_on_clock

    clock = pd.date_range("2024-01-01", "2024-12-31 23:00", freq="h")  # a leap year
    hourly = ambient_on_clock(AmbientConfig(preset="shanghai"), clock, 60).reshape(-1, 24).mean(axis=1)
    np.testing.assert_allclose(daily_mean_temperature("shanghai", 2024), hourly, atol=0.05)


@pytest.mark.parametrize("province", sorted(building_provinces()))
def test_every_supported_province_has_commercial_profiles_of_mean_one(province):
    for kind in ("office", "mall", "hotel", "commercial"):
        p = building_profile(f"cn:{province}:{kind}", 2026)
        assert p.shape == (365 * 24,) and p.mean() == pytest.approx(1.0, rel=1e-12) and p.min() >= 0


def test_the_hotter_july_air_conditions_more():
    # NBS July means (2008/2009): Wuhan 29.8, Haikou 28.15, Harbin 23.5 degC; all three Januaries
    # lie below the 20 degC balance, so January is lighting and equipment only and July/January
    # orders the cities by their July AC
    def july_over_january(name):
        p = building_profile(name, 2026).reshape(-1, 24)
        return p[181:212].mean() / p[0:31].mean()

    assert ambient_presets()["wuhan"]["monthly_mean_degc"][6] == pytest.approx(29.8)
    assert july_over_january("cn:hubei:hotel") > july_over_january("cn:hainan:hotel") > july_over_january("cn:heilongjiang:hotel") > 1


def test_a_province_without_a_normal_is_explained(tmp_path):
    path = write_base_load_scenario(tmp_path, "cn:tibet:office")
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(path)
    (p,) = exc.value.problems
    assert p.path == "feeder.base_load.profile"
    assert p.hint.startswith("no sourced temperature normal for tibet's capital lhasa") and "cn:tibet:province" in p.hint


def test_a_scenario_selects_a_new_province(tmp_path):
    path = write_base_load_scenario(tmp_path, "cn:hubei:commercial")
    r = v2gsim.run(v2gsim.load_scenario(path))
    expected = 100.0 * day(building_profile("cn:hubei:commercial", 2026), "2026-07-06")
    np.testing.assert_allclose(r.system["base_load_kw"].to_numpy(), expected, rtol=1e-9)
