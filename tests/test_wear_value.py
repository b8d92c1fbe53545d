"""Fade by cause, V2G revenue against V2G wear, the second-life figure: hand-computed small
tables, and one short real run whose per-vehicle figures must add up to its KPIs."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from v2gsim.metrics import fade_by_cause, v2g_value_per_vehicle
from v2gsim.plotting import plot_fade_by_cause, plot_second_life, plot_v2g_value


def _results(retirement_soh=0.8):
    # three vehicles: two commuters (one did V2G), one leased-pack ride-hailer
    vehicles = pd.DataFrame({
        "vehicle": [0, 1, 2],
        "group": pd.Categorical(["commuter", "commuter", "taxi"]),
        "archetype": pd.Categorical(["private_commuter", "private_commuter", "ride_hailing"]),
        "e_discharged_kwh": [100.0, 0.0, 50.0],
        "revenue_cny": [40.0, 0.0, 20.0],
    })
    wear = pd.DataFrame({
        "vehicle": [0, 1, 2],
        "fade_calendar_pct": [2.0, 3.0, 1.0],
        "fade_driving_pct": [0.5, 0.5, 2.0],
        "fade_charging_pct": [0.25, 0.25, 0.5],
        "fade_v2g_pct": [0.25, 0.0, -0.5],
        "fade_pct": [3.0, 3.75, 3.0],
        "wear_cost_v2g_cny": [10.0, 0.0, 0.0],
        "battery_leased": [False, False, True],
    })
    index = pd.date_range("2026-01-05", periods=48, freq="1h", name="time")
    system = pd.DataFrame({"second_life_charge_kw": np.r_[np.zeros(24), np.full(24, 10.0)],
                           "second_life_discharge_kw": np.r_[np.zeros(30), np.full(18, 5.0)]}, index=index)
    packs = pd.DataFrame({"origin": ["vehicle", "swap", "swap"], "retired_step": [10, 20, 30], "recycled_step": [-1, 40, -1]})
    return SimpleNamespace(vehicles=vehicles, extra={"wear": wear, "wear_packs": packs}, system=system, dt_h=1.0,
                           metadata={"scenario": {"wear": {"retirement_soh": retirement_soh}}})


def test_fade_by_cause_means_per_group_and_fleet():
    t = fade_by_cause(_results())
    assert list(t.index) == ["commuter", "taxi", "all vehicles"]
    assert t.loc["commuter", "vehicles"] == 2 and t.loc["all vehicles", "vehicles"] == 3
    assert t.loc["commuter", "calendar_pct"] == pytest.approx(2.5)
    assert t.loc["commuter", "v2g_pct"] == pytest.approx(0.125)
    assert t.loc["commuter", "total_pct"] == pytest.approx(3.375)
    assert t.loc["commuter", "v2g_share_pct"] == pytest.approx(0.125 / 3.375 * 100)
    assert t.loc["all vehicles", "cycle_driving_pct"] == pytest.approx(1.0)
    assert t.loc["taxi", "v2g_pct"] == pytest.approx(-0.5)  # V2G can slow calendar ageing
    causes = ["calendar_pct", "cycle_driving_pct", "cycle_charging_pct", "v2g_pct"]
    np.testing.assert_allclose(t[causes].sum(axis=1), t["total_pct"], rtol=1e-12)
    assert list(fade_by_cause(_results(), "archetype").index) == ["private_commuter", "ride_hailing", "all vehicles"]
    with pytest.raises(ValueError, match="not a column of the vehicles table"):
        fade_by_cause(_results(), "colour")


def test_v2g_value_per_vehicle_by_hand():
    t = v2g_value_per_vehicle(_results(retirement_soh=0.8)).set_index("vehicle")
    assert t.loc[0, "v2g_net_cny"] == pytest.approx(30.0)  # 40 CNY paid, 10 CNY of wear
    # 0.25 points of fade out of the 20 points from new to retirement at SOH 0.8: 1.25 % of the pack's life
    assert t.loc[0, "pack_life_used_by_v2g_pct"] == pytest.approx(1.25)
    assert t.loc[1, "v2g_net_cny"] == 0.0
    assert bool(t.loc[2, "battery_leased"]) and t.loc[2, "v2g_wear_cost_cny"] == 0.0
    assert t.loc[2, "pack_life_used_by_v2g_pct"] == pytest.approx(-2.5)


def test_without_wear_the_error_says_how_to_turn_it_on():
    r = _results()
    r.extra = {}
    with pytest.raises(ValueError, match="wear.model"):
        fade_by_cause(r)
    with pytest.raises(ValueError, match="wear"):
        v2g_value_per_vehicle(r)


def test_figures_draw_what_the_tables_say():
    r = _results()
    fig = plot_v2g_value(r)
    ax = fig.axes[0]
    # only the commuter that fed back and owns its pack is drawn; it came out ahead
    assert sum(len(c.get_offsets()) for c in ax.collections) == 1
    assert "1 of 1 vehicles came out ahead" in ax.get_title()
    assert fig._repr_png_()[:4] == b"\x89PNG"
    fig = plot_fade_by_cause(r)
    assert [t.get_text().split("\n")[0] for t in fig.axes[0].get_xticklabels()] == ["commuter", "taxi", "all vehicles"]
    assert fig._repr_png_()[:4] == b"\x89PNG"
    fig = plot_second_life(r)
    ax_n, ax_e = fig.axes
    counts = {ln.get_label(): ln.get_ydata() for ln in ax_n.get_lines()}
    swap = counts["from swap stations (2 retired)"]
    assert swap[19] == 0 and swap[20] == 1 and swap[30] == 2 and swap[40] == 1  # one recycled at step 40
    assert counts["from vehicles (1 retired)"][-1] == 1
    heights = sorted(p.get_height() for p in ax_e.patches)
    assert heights == pytest.approx([-90.0 / 1000, 0.0, 0.0, 240.0 / 1000])  # MWh per day
    assert fig._repr_png_()[:4] == b"\x89PNG"


def test_a_real_run_adds_up_to_its_kpis():
    import v2gsim

    sc = v2gsim.load_scenario("centralized_hub", {"time.horizon_days": 3, "time.step_min": 60, "wear.model": "auto"})
    res = v2gsim.run(sc, baseline=False)
    k = res.kpis
    t = v2g_value_per_vehicle(res)
    assert k["v2g_energy_kwh"] > 0
    assert t["v2g_revenue_cny"].sum() == pytest.approx(k["v2g_revenue_cny"], rel=1e-12)
    assert t["v2g_wear_cost_cny"].sum() == pytest.approx(k["wear_cost_v2g_cny"], rel=1e-12)
    f = fade_by_cause(res)
    assert f.loc["all vehicles", "total_pct"] == pytest.approx(k["wear_fade_mean_pct"], rel=1e-12)
    assert f.loc["all vehicles", "v2g_pct"] == pytest.approx(k["wear_fade_v2g_mean_pct"], rel=1e-12)
    assert f.loc["all vehicles", "calendar_pct"] == pytest.approx(k["wear_fade_calendar_mean_pct"], rel=1e-12)
