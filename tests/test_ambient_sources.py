"""The ambient presets are the sourced tables (v2gsim/data/cn_city_monthly_temperature.csv)."""

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import v2gsim
from v2gsim.data.cn_capitals import province_capitals
from v2gsim.data.cn_load import cn_metadata
from v2gsim.errors import ScenarioError
from v2gsim.physics.ambient import AmbientConfig, ambient_on_clock, ambient_presets

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def table() -> pd.DataFrame:
    with resources.files("v2gsim.data").joinpath("cn_city_monthly_temperature.csv").open("rb") as fh:
        return pd.read_csv(fh)


def rows(city, source):
    t = table()
    return t[(t.city == city) & (t.source == source)][MONTHS].to_numpy(float)


# the CHELSA normal where the package has the city, else the mean of its NBS yearbook years,
# else the mean of its NOAA GSOD station-years
CHELSA_CITIES = {"guangzhou", "shenzhen", "shanghai", "beijing", "chengdu"}
GSOD_CITIES = {"urumqi", "xining", "yinchuan"}
# provinces whose capital has no sourced row (the yearbook copy read ends before them, the
# package has no mainland city beyond the five above, and the GSOD copy has no file for their
# stations): docs/data.md
WITHOUT_NORMAL = {"tibet": "lhasa", "gansu": "lanzhou"}
GSOD_DAILY = Path(__file__).resolve().parents[1] / "docs" / "cn_gsod_daily_temperature.csv"


@pytest.mark.parametrize("city", sorted(ambient_presets()))
def test_each_preset_is_its_sourced_rows(city):
    preset = ambient_presets()[city]
    source = "chelsa" if city in CHELSA_CITIES else "cma" if city == "xian" else "gsod" if city in GSOD_CITIES else "nbs"
    np.testing.assert_allclose(preset["monthly_mean_degc"], rows(city, source).mean(axis=0), atol=1e-9)
    assert re.search(r"\[[ABC]", preset["source"]) and source.upper() in preset["source"]


def test_every_row_averages_to_its_published_annual_mean():
    # a transcription check: the yearbook prints each city's annual average, the package its
    # annual_c, both means of the unrounded months, so rounding alone allows 0.1 degC (the
    # largest gap here is 0.083). It catches a swapped sign or a tens digit, not a single month
    # off by 1 degC (0.083 on the mean): the hand-picked cells below check those
    t = table()
    gap = (t[MONTHS].mean(axis=1) - t["annual"]).abs()
    assert gap.max() <= 0.1, t.loc[gap.idxmax(), ["city", "source", "period"]].tolist()


def test_chelsa_rows_are_the_packages():
    # the package (world-temperature-data 0.1.0) when installed; else the values it holds,
    # read from it by docs/cn_city_temperature.py
    try:
        import world_temperature_data as wtd
    except ImportError:
        wtd = None
    if wtd is not None:
        for city in CHELSA_CITIES:
            rec = wtd.by_city("Shenzhen" if city == "shenzhen" else city.capitalize(), "CN")
            np.testing.assert_allclose(rows(city, "chelsa")[0], [rec["monthly"][m] for m in MONTHS], atol=1e-9)
    else:
        assert rows("beijing", "chelsa")[0][[0, 6]].tolist() == [-3.8, 27.5]
        assert rows("guangzhou", "chelsa")[0][[0, 6]].tolist() == [14.6, 29.5]
        assert rows("shenzhen", "chelsa")[0][6] == 28.9 and rows("chengdu", "chelsa")[0][0] == 6.5


@pytest.mark.parametrize(("city", "year", "month", "degc"), [
    # hand-picked cells of the NBS yearbook tables (2009 table 11-13 for 2008, 2010 table 12-13 for 2009)
    ("hohhot", "2008", "jan", -12.1), ("wuhan", "2009", "jul", 30.3), ("haikou", "2008", "jan", 16.9),
    ("chongqing", "2009", "aug", 28.4), ("guiyang", "2008", "dec", 6.3), ("changchun", "2009", "dec", -14.3),
    # Xi'an's CMA normal (Wikipedia template): January 0.3, July 27.0 degC
    ("xian", "1981-2010", "jan", 0.3), ("xian", "1981-2010", "jul", 27.0),
])
def test_source_cells(city, year, month, degc):
    t = table()
    (value,) = t[(t.city == city) & (t.source != "chelsa") & (t.period.astype(str) == year)][month]
    assert value == degc


def test_xian_half_range_is_its_mean_daily_max_and_min():
    assert ambient_presets()["xian"]["diurnal_half_range_degc"] == pytest.approx((19.5 - 9.7) / 2)


def both_sources():
    t = table()
    return sorted(set(t[t.source == "chelsa"].city) & set(t[t.source == "nbs"].city))


def test_the_cross_check_covers_every_city_with_both_sources():
    assert both_sources() == ["beijing", "chengdu", "guangzhou", "shanghai"]  # Shenzhen is not in the yearbook


@pytest.mark.parametrize("city", both_sources())
def test_chelsa_normals_agree_with_the_official_yearbook_years(city):
    # gridded 1981-2010 climatology vs the station means of 2008 and 2009 (NBS yearbooks)
    chelsa, nbs = rows(city, "chelsa")[0], rows(city, "nbs").mean(axis=0)
    assert np.abs(chelsa - nbs).max() <= 2.0
    assert abs(chelsa.mean() - nbs.mean()) <= 0.8


def test_every_province_maps_to_its_capital():
    capitals = province_capitals()
    assert len(capitals) == 31 and len(set(capitals.values())) == 31
    assert set(capitals) == set(cn_metadata()["provinces"].values())  # the province-load keys
    assert {"guangdong": "guangzhou", "hubei": "wuhan", "heilongjiang": "harbin", "yunnan": "kunming"}.items() <= capitals.items()
    missing = {p: c for p, c in capitals.items() if c not in ambient_presets()}
    assert missing == WITHOUT_NORMAL


def test_the_normals_are_plausible():
    p = {c: np.asarray(v["monthly_mean_degc"]) for c, v in ambient_presets().items()}
    assert p["harbin"][0] < -15 and p["changchun"][0] < -10 and p["hohhot"][0] < -8  # north-east, Inner Mongolia
    assert p["haikou"][0] > 15 and p["guangzhou"][0] > 12  # tropical / subtropical south
    assert p["kunming"][6] < 23 and p["guiyang"][6] < 24  # the Yunnan-Guizhou plateau stays cool in July
    for city, t in p.items():  # every city: warmest in summer, coldest in winter
        assert t.argmax() in (5, 6, 7) and t.argmin() in (0, 11), city


@pytest.mark.parametrize(("given", "resolved"), [("hubei", "wuhan"), ("guangdong", "guangzhou"), ("shaanxi", "xian"), ("wuhan", "wuhan")])
def test_a_province_stands_for_its_capital(given, resolved):
    assert AmbientConfig(preset=given).resolved_preset == resolved


@pytest.mark.parametrize(("given", "says"), [
    ("wuhna", "did you mean 'wuhan'?"),
    ("tibet", "no sourced temperature normal for 'lhasa'"),
    ("lanzhou", "no sourced temperature normal for 'lanzhou'"),
])
def test_unknown_or_unsourced_presets_are_explained(given, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        AmbientConfig(preset=given)


def test_the_presets_order_the_cities_by_climate():
    annual = {c: np.mean(p["monthly_mean_degc"]) for c, p in ambient_presets().items()}
    assert annual["harbin"] < annual["beijing"] < annual["shanghai"] < annual["guangzhou"] < annual["shenzhen"]


def test_a_preset_on_the_clock_has_its_monthly_means():
    clock = pd.date_range("2026-01-01", "2026-12-31 23:00", freq="h")
    t = ambient_on_clock(AmbientConfig(preset="shenzhen"), clock, 60)
    by_month = pd.Series(t, index=clock).groupby(clock.month).mean().to_numpy()
    # linear interpolation between mid-month points smooths the peaks a little
    np.testing.assert_allclose(by_month, ambient_presets()["shenzhen"]["monthly_mean_degc"], atol=0.6)
    day = t[(clock.month == 7) & (clock.day == 15)]
    assert day.max() - day.min() == pytest.approx(2 * 2.5, abs=0.05)  # HKO diurnal range


SCENARIO = """\
name: ambient by province
time: {start: 2026-07-06T00:00, step_min: 60, horizon_days: 1, warmup_days: 0}
feeder: {transformer_kva: 500, households: 10}
population: [{archetype: private_car_cn, count: 2, vehicle: byd_dolphin_44}]
wear:
  model: auto
  ambient: {preset: PRESET}
"""


def test_a_scenario_takes_a_province_as_its_ambient_preset(tmp_path):
    (tmp_path / "s.yaml").write_text(SCENARIO.replace("PRESET", "hubei"))
    s = v2gsim.load_scenario(tmp_path / "s.yaml")
    assert s.wear.ambient.resolved_preset == "wuhan"


def test_a_scenario_with_an_unsourced_province_names_the_line(tmp_path):
    (tmp_path / "s.yaml").write_text(SCENARIO.replace("PRESET", "gansu"))
    with pytest.raises(ScenarioError) as exc:
        v2gsim.load_scenario(tmp_path / "s.yaml")
    (p,) = exc.value.problems
    assert p.path.startswith("wear.ambient") and p.line == 7
    text = f"{p.message} {p.hint or ''}"
    assert "no sourced temperature normal for 'lanzhou'" in text and "wear.ambient.csv" in text


def gsod_daily() -> pd.DataFrame:
    return pd.read_csv(GSOD_DAILY, parse_dates=["date"])


def test_gsod_rows_are_the_monthly_means_of_the_daily_extract():
    # each month the mean of its days (degF -> degC), rounded to 0.1 as the table prints
    d = gsod_daily()
    degc = (d.temp_f - 32.0) / 1.8
    means = degc.groupby([d.city, d.date.dt.year.astype(str), d.date.dt.month]).mean().unstack()
    t = table()
    gsod = t[t.source == "gsod"]
    assert sorted(zip(gsod.city, gsod.period.astype(str))) == [
        ("urumqi", "2022"), ("xining", "2022"), ("yinchuan", "2022"), ("yinchuan", "2023")]
    for _, row in gsod.iterrows():
        np.testing.assert_allclose(row[MONTHS].to_numpy(float), means.loc[(row.city, str(row.period))], atol=0.051)


def test_the_gsod_extract_has_the_source_files_days():
    # the source files miss a few days (all 2022 ones: 10 Sep, 16-17 Nov); no date twice
    d = gsod_daily()
    assert not d.duplicated(["city", "date"]).any()
    days = d.groupby([d.city, d.date.dt.year]).size().to_dict()
    assert days == {("urumqi", 2022): 362, ("xining", 2022): 362, ("yinchuan", 2022): 362, ("yinchuan", 2023): 349}
    per_month = d.groupby([d.city, d.date.dt.year, d.date.dt.month]).size()
    assert per_month.min() >= 20 and len(per_month) == 4 * 12
    assert d.temp_f.between(-30, 100).all()


@pytest.mark.parametrize(("city", "date", "temp_f"), [
    # hand-picked TEMP cells (degF) of the GSOD files as printed
    ("urumqi", "2022-01-01", 10.8), ("urumqi", "2022-11-27", 4.6), ("xining", "2022-08-06", 75.0),
    ("xining", "2022-11-28", 20.4), ("yinchuan", "2023-06-14", 84.5), ("yinchuan", "2023-12-29", 34.2),
])
def test_gsod_daily_cells(city, date, temp_f):
    d = gsod_daily()
    (value,) = d[(d.city == city) & (d.date == date)].temp_f
    assert value == temp_f


def test_urumqi_gsod_year_against_the_cma_normal():
    # CMA 1971-2000 normal for Urumqi as reproduced by the English Wikipedia climate box
    # (January -12.6, July 23.7, year 6.9 degC). 2022 was a warm year on a warming trend: warmer
    # everywhere, by 3.6 degC in January, 1.4 in July and 2.2 over the year
    (urumqi,) = rows("urumqi", "gsod")
    jan, jul, year = urumqi[0] - -12.6, urumqi[6] - 23.7, urumqi.mean() - 6.9
    assert 0 < jan <= 4.5 and 0 < jul <= 2.5 and 0 < year <= 3.0


def test_the_gsod_presets_are_plausible_and_tagged_weak():
    p = ambient_presets()
    assert p["urumqi"]["monthly_mean_degc"][0] < -5  # continental Dzungarian winter
    assert max(p["xining"]["monthly_mean_degc"]) < 20  # 2262 m on the Qinghai plateau
    assert max(p["yinchuan"]["monthly_mean_degc"]) > 23
    assert p["yinchuan"]["source"].count("2022 and 2023") == 1
    for city in GSOD_CITIES:
        assert "GSOD" in p[city]["source"] and "[C as a normal]" in p[city]["source"]
        assert p[city]["diurnal_half_range_degc"] == 5.5  # cold winters: the [C] rule
