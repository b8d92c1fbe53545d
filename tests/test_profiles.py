"""Base load from standard profiles shipped by packages (demandlib's BDEW, SimBench)."""

import numpy as np
import pandas as pd
import pytest

from v2gsim.data.profiles import available_profiles, bdew_profile, profile_on_clock, simbench_profile


def test_profiles_are_real_and_normalised():
    h0 = simbench_profile("H0-A")
    assert h0.shape == (366 * 96,) and h0.mean() == pytest.approx(1.0)
    assert h0.min() > 0 and h0.max() > 3  # one household: peaky
    b = bdew_profile("h0", 2026)
    assert b.shape == (365 * 96,) and b.mean() == pytest.approx(1.0)
    assert 1.5 < b.max() < 2.5  # the aggregate standard profile: smooth
    assert "bdew:h0" in available_profiles() and "simbench:H0-L" in available_profiles()


@pytest.mark.parametrize("name", ["bdew:h0", "simbench:H0-A"])
def test_resampling_conserves_energy(name):
    def energy(step_min):
        t = pd.date_range("2026-03-02", periods=7 * 1440 // step_min, freq=f"{step_min}min")
        return profile_on_clock(name, t, step_min).sum() * step_min / 60

    e15 = energy(15)
    assert energy(60) == pytest.approx(e15, rel=1e-12)
    assert energy(5) == pytest.approx(e15, rel=1e-12)
    assert energy(20) == pytest.approx(e15, rel=1e-12)  # steps that do not align with 15 min


def test_simbench_weekdays_line_up():
    h0 = simbench_profile("H0-A").reshape(366, 96)
    # 2026-03-07 is a Saturday; the nearest Saturday of 2016 to day-of-year 66 is 5 March (index 64)
    got = profile_on_clock("simbench:H0-A", pd.date_range("2026-03-07", periods=96, freq="15min"), 15)
    assert pd.Timestamp("2016-01-01") + pd.Timedelta(days=64) == pd.Timestamp("2016-03-05")
    np.testing.assert_allclose(got, h0[64], rtol=1e-12)


def test_bdew_follows_the_calendar_across_new_year():
    t = pd.date_range("2026-12-31 12:00", periods=96, freq="15min")
    got = profile_on_clock("bdew:h0", t, 15)
    np.testing.assert_allclose(got[:48], bdew_profile("h0", 2026)[-48:])
    np.testing.assert_allclose(got[48:], bdew_profile("h0", 2027)[:48])


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown standard load profile"):
        profile_on_clock("bdew:h9", pd.date_range("2026-01-01", periods=4, freq="15min"), 15)


def test_base_load_scales_with_households():
    import v2gsim

    r1 = v2gsim.run(v2gsim.load_scenario("smoke", {"feeder.households": 100}))
    r2 = v2gsim.run(v2gsim.load_scenario("smoke", {"feeder.households": 200}))
    np.testing.assert_allclose(r2.system["base_load_kw"], 2 * r1.system["base_load_kw"])
    # 100 households x 2,700 kWh/yr: one day carries about a 365th of it
    assert r1.kpis["energy_base_kwh"] == pytest.approx(100 * 2700 / 365, rel=0.2)
    assert r1.kpis["base_peak_kw"] < 3 * 100 * 2700 / 8760  # an aggregate, not a single home


def test_user_series_files_name_every_bad_row_and_column(tmp_path):
    # base load (feeder.base_load.csv) and ambient temperature (wear.ambient.csv) files are read
    # by one reader; each problem names the YAML path, the file, the row and the column
    from v2gsim.data.profiles import read_load_csv
    from v2gsim.physics.ambient import read_ambient_csv

    load = tmp_path / "load.csv"
    load.write_text("time,p_kw\n2026-07-06 00:00,10\nyesterday,11\n2026-07-06 00:30,abc\n2026-07-06 00:15,12\n")
    series, problems = read_load_csv(load, "feeder.base_load.csv")
    assert series is None
    msgs = [str(p) for p in problems]
    assert all("feeder.base_load.csv" in m for m in msgs)
    assert any("load.csv row 3, column time: not a date-time" in m for m in msgs)
    assert any("load.csv row 4, column p_kw: not a number" in m for m in msgs)
    assert any("load.csv row 5, column time: not after the previous row" in m for m in msgs)

    temp = tmp_path / "temp.csv"
    temp.write_text("time,t_degc\n2026-07-06 00:00,25\n2026-07-06 01:00,85\n")
    series, problems = read_ambient_csv(temp)
    assert series is None and len(problems) == 1
    assert "temp.csv row 3, column t_degc: not a number in -60..70 degC; got '85'" in str(problems[0])
    _, problems = read_ambient_csv(tmp_path / "none.csv")
    assert "does not exist" in str(problems[0])
    _, problems = read_load_csv(temp, "feeder.base_load.csv")
    assert "missing column(s) p_kw" in str(problems[0])

    temp.write_text("time,t_degc\n2026-07-06 00:00,25\n2026-07-06 01:00,27.5\n")
    series, problems = read_ambient_csv(temp)
    assert problems == [] and series.tolist() == [25.0, 27.5]
    assert series.index[1] == pd.Timestamp("2026-07-06 01:00")
