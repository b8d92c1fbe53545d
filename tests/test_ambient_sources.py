"""The ambient presets are the sourced tables (v2gsim/data/cn_city_monthly_temperature.csv)."""

import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from v2gsim.physics.ambient import AmbientConfig, ambient_on_clock, ambient_presets

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def table() -> pd.DataFrame:
    with resources.files("v2gsim.data").joinpath("cn_city_monthly_temperature.csv").open("rb") as fh:
        return pd.read_csv(fh)


def rows(city, source):
    t = table()
    return t[(t.city == city) & (t.source == source)][MONTHS].to_numpy(float)


# preset -> the rows it is made of (CHELSA normal, or the mean of NBS yearbook years)
MADE_OF = {"guangzhou": "chelsa", "shenzhen": "chelsa", "shanghai": "chelsa", "beijing": "chelsa", "chengdu": "chelsa",
           "harbin": "nbs", "kunming": "nbs"}


@pytest.mark.parametrize("city", sorted(MADE_OF))
def test_each_preset_is_its_sourced_rows(city):
    preset = ambient_presets()[city]
    np.testing.assert_allclose(preset["monthly_mean_degc"], rows(city, MADE_OF[city]).mean(axis=0), atol=1e-9)
    assert re.search(r"\[[ABC]", preset["source"]) and ("CHELSA" in preset["source"] or "NBS" in preset["source"])


@pytest.mark.parametrize("city", ["guangzhou", "shanghai", "beijing", "chengdu"])
def test_chelsa_normals_agree_with_the_official_yearbook_years(city):
    # gridded 1981-2010 climatology vs the station means of 2008 and 2009 (NBS yearbooks)
    chelsa, nbs = rows(city, "chelsa")[0], rows(city, "nbs").mean(axis=0)
    assert np.abs(chelsa - nbs).max() <= 2.0
    assert abs(chelsa.mean() - nbs.mean()) <= 0.8


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
