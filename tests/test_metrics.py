"""KPIs compare with one base: the load without EVs minus PV (``base_net_kw``)."""

import numpy as np
import pandas as pd
import pytest

from v2gsim.metrics import base_net_kw, compute_kpis

VEHICLE_COLUMNS = ("e_charged_kwh e_discharged_kwh e_loss_kwh e_driven_kwh distance_km unmet_kwh stranded_trips stranded_kwh "
                   "departures_below_min departures no_charger_events sessions sessions_turned_away unmet_turned_away_kwh "
                   "plugged_at_end pending_kwh cost_cny revenue_cny soc_final").split()


def _system(**cols):
    n = len(next(iter(cols.values())))
    base = {"ev_charge_kw": np.zeros(n), "v2g_discharge_kw": np.zeros(n), "transformer_loading_pct": np.zeros(n)}
    return pd.DataFrame({**base, **cols}, index=pd.date_range("2026-07-06", periods=n, freq="1h"))


def test_peak_increase_is_over_the_base_net_of_pv():
    # hour 0: 10 kW load, no sun, 5 kW of EVs; hour 1: 20 kW load, 15 kW PV, no EVs.
    # Net load 15 and 5 kW; the base before EVs is 10 and 5 kW: the EVs raised the peak by 5 kW
    # (50 %). Against the load alone (20 kW) it would read -25 %.
    sy = _system(base_load_kw=[10.0, 20.0], pv_kw=[0.0, 15.0], ev_charge_kw=[5.0, 0.0], net_load_kw=[15.0, 5.0])
    k = compute_kpis(sy, pd.DataFrame({c: [0.0] for c in VEHICLE_COLUMNS}), 1.0, 100.0)
    assert k["base_peak_kw"] == 10.0 and k["peak_load_kw"] == 15.0
    assert k["peak_increase_kw"] == 5.0 and k["peak_increase_pct"] == pytest.approx(50.0)
    assert k["energy_base_kwh"] == 15.0
    np.testing.assert_array_equal(base_net_kw(sy), [10.0, 5.0])
    # without a network there is no PV: the base is the load
    np.testing.assert_array_equal(base_net_kw(sy.drop(columns="pv_kw")), [10.0, 20.0])


def test_network_run_records_the_base_net_and_its_kpis():
    import v2gsim

    r = v2gsim.run(v2gsim.load_scenario("lv_feeder", {"time.horizon_days": 1, "feeder.solver": "capacity_only", "outputs.bus_voltages": False}))
    s, k = r.system, r.kpis
    assert s["pv_kw"].max() > 0
    np.testing.assert_allclose(s["base_net_kw"], s["base_load_kw"] - s["pv_kw"], rtol=0, atol=1e-12)
    # the README's formula: net load = base load - PV + EV charging - V2G (no swap stations or storage here)
    np.testing.assert_allclose(s["net_load_kw"], s["base_net_kw"] + s["ev_charge_kw"] - s["v2g_discharge_kw"], rtol=0, atol=1e-9)
    assert k["base_peak_kw"] == s["base_net_kw"].max()
    assert k["peak_increase_kw"] == pytest.approx(s["net_load_kw"].max() - s["base_net_kw"].max(), abs=1e-12)
    assert k["energy_base_kwh"] + k["energy_pv_kwh"] == pytest.approx(s["base_load_kw"].sum() * 0.25, rel=1e-12)
