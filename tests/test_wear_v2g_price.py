"""The fleet's V2G wear price (``FleetWear.v2g_price_cny_per_kwh``, read through
``contracts.v2g_wear_cny_per_kwh``): a kWh fed back priced at its own cycle's stressors.

The published throughput price (``fleet.wear_cost_cny_per_kwh``) is set at the last period's
stressors held fixed; the attribution (real minus the no-V2G shadow) books what V2G adds: its own
throughput and the deeper cycle it makes of the day's driving throughput, at the V2G C-rate.
Dispatch priced V2G at ~1/10 of what the attribution books (docs/wear.md, "The fleet's timing").
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_wear_integration import V2G_BASE, sc
from v2gsim.market.contracts import v2g_wear_cny_per_kwh, wear_price_cny_per_kwh_discharged
from v2gsim.model import V2GModel

W = 100.0  # marginal_window_fec (default)


def _aged(**wear):
    """Two V2G Dolphins, packs 3 years old at SOH 0.9 (the cycle law continues from a few hundred
    virtual cycles), Naumann LFP at a constant 25 degC; built, not run."""
    pop = {**V2G_BASE["population"][0], "count": 2, "initial_age_years": 3.0, "initial_soh": 0.9}
    return V2GModel(sc(time__horizon_days=2, population=[pop],
                       wear={"model": "naumann_lfp", "ambient": {"constant_degc": 25.0}, **wear}))


def _k(dod, c):
    """Naumann's cycle coefficient (fraction per sqrt(FEC)) at the marginal function's floors."""
    dod, c = max(dod, 0.1), max(c, 0.1)
    return (0.0630 * c + 0.0971) * (4.0253 * (dod - 0.6) ** 3 + 1.0923) / 100.0


def _per_fec(q_cyc, dod, c):
    k = _k(dod, c)
    f = (q_cyc / k) ** 2  # virtual cycles under this stress
    return k * (np.sqrt(f + W) - np.sqrt(f)) / W


def test_v2g_price_by_hand():
    """Vehicle 0 holds 35 kWh of its usable capacity, floor 12 kWh, 7 kW charger.

    Without driving: the V2G cycle alone, depth (35 - 12) / cap at 7 / cap C; price = fade per FEC
    over the window x cost per unit fade / (eta_d x C_nom) (a grid kWh fed back is 1/eta_d
    battery kWh out and back, 1 / (eta_d C_nom) FEC).
    With 8 kWh of driving a day: the day's cycle (depth at the floor 0.1, traction C-rate) without
    V2G against the deeper one with it, C-rate throughput-weighted:
    (m1 (fec0 + fv) - m0 fec0) / fv."""
    m = _aged()
    f, w = m.fleet, m.wear
    v = np.array([0])
    cap, cap_nom = f.capacity_kwh[0], w.cap_nom_kwh[0]
    f.e_kwh[0] = 35.0
    q = w.pop.state.q_loss_cyc[0]
    assert q > 0.01  # a cycle history: not the steep start of sqrt(FEC)
    cost = w.cost_per_q_cny[0] / (f.eta_discharge[0] * cap_nom)
    dod1, c_v = (35.0 - 12.0) / cap, 7.0 / cap
    got = w.v2g_price_cny_per_kwh(v, 12.0, 7.0)[0]
    assert got == pytest.approx(_per_fec(q, dod1, c_v) * cost, rel=1e-9)

    w._drive_last_kwh[0] = 8.0
    fec0, fv = 8.0 / cap_nom, 23.0 / cap_nom
    c0 = w.c_drive[0]
    c1 = (c0 * 16.0 + c_v * 46.0) / (16.0 + 46.0)
    m0, m1 = _per_fec(q, 0.0, c0), _per_fec(q, dod1, c1)
    want = (m1 * (fec0 + fv) - m0 * fec0) / fv * cost
    got = w.v2g_price_cny_per_kwh(v, 12.0, 7.0)[0]
    assert got == pytest.approx(want, rel=1e-9)
    # deepening the day's driving cycle costs more than the V2G kWh alone at its depth
    assert got > m1 * cost
    # the one reader: the strategies' fleet view and the contracts read this, with the driver's
    # minimum at departure and the charger's power as the cycle's floor and power
    f.e_min_departure_kwh[0], f.p_plug_max_kw[0] = 12.0, 7.0
    assert v2g_wear_cny_per_kwh(m.fleet_view, v)[0] == pytest.approx(got, rel=1e-12)
    # without the wear model's V2G price: twice the published throughput price
    assert v2g_wear_cny_per_kwh(f, v)[0] == pytest.approx(2 * f.wear_cost_cny_per_kwh[0], rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 30.0), min_size=2, max_size=5), st.lists(st.floats(1.0, 40.0), min_size=2, max_size=5),
       st.floats(0.0, 12.0), st.floats(0.0, 30.0), st.floats(1.0, 40.0))
def test_v2g_price_is_monotone_in_depth_and_c_rate(floors, kws, drive_kwh, floor_held, kw_held):
    """Without a day's driving the price grows with the depth (a lower floor) and the C-rate (the
    charger's power): Naumann's depth and C-rate factors. With driving, where the V2G cycle
    deepens the day's at no lower C-rate, it is at least the price of the day's own cycle (the
    published kind of price, at the day's stressors) and at least the old published price
    (typical stressors: depth 0.3, 0.2C) wherever it is at least that deep and fast."""
    m = _aged()
    f, w = m.fleet, m.wear
    f.e_kwh[:] = 38.0
    old = wear_price_cny_per_kwh_discharged(f.wear_cost_cny_per_kwh[:1])[0]  # the initial published price, x2
    v = np.zeros(len(floors), np.int64)
    deeper = w.v2g_price_cny_per_kwh(v, np.sort(floors)[::-1], kw_held)  # floors falling: depth growing
    assert (np.diff(deeper) >= -1e-15).all()
    faster = w.v2g_price_cny_per_kwh(np.zeros(len(kws), np.int64), floor_held, np.sort(kws))
    assert (np.diff(faster) >= -1e-15).all()
    cap = f.capacity_kwh[0]
    # at least as deep and fast as the typical stressors: at least the old published price (its
    # unit (eta_c + 1/eta_d) / 2 per FEC is smaller than 1/eta_d: also at least)
    alone = w.v2g_price_cny_per_kwh(v[:1], floor_held, kw_held)[0]
    if (38.0 - floor_held) / cap >= 0.3 and kw_held / cap >= 0.2:
        assert alone >= old
    w._drive_last_kwh[0] = drive_kwh
    kw = max(kw_held, w.c_drive[0] * cap)  # no slower than driving
    at_day = w.v2g_price_cny_per_kwh(v[:1], 38.0, kw)[0]  # no V2G left: the day's own cycle
    with_v2g = w.v2g_price_cny_per_kwh(v[:1], floor_held, kw)[0]
    if floor_held < 38.0 - 1e-9:
        assert with_v2g >= at_day * (1 - 1e-12)


def _reconcile(over):
    """wear_compensation_on (the aggregator pays each driver the wear model's price per kWh fed
    back, so the compensation paid is V2G energy x the price dispatch saw): the V2G cycle wear
    the attribution books (real minus no-V2G shadow) over what was paid for it."""
    import v2gsim

    res_model = V2GModel(v2gsim.load_scenario("wear_compensation_on", over))
    res = res_model.run()
    pop, w = res_model.wear.pop, res_model.wear
    cyc = float(((pop.state.q_loss_cyc - pop.shadow.q_loss_cyc) * w.cost_per_q_cny).sum())
    paid = float(res.kpis["contract_wear_compensation_cny"])
    return cyc, paid, float(res.kpis["v2g_energy_kwh"])


def test_attributed_v2g_wear_reconciles_with_the_price_dispatch_saw():
    """Two weeks of weekday evening V2G (wear_compensation_on), packs 2 years old at SOH 0.92 (a
    cycle history). Measured: attributed V2G cycle wear 216 CNY, V2G energy x the price paid
    176 CNY, 1.23 x; with the published period price (the old reader) 203 against 71, 2.84 x.
    Held in [0.6, 1.6]."""
    aged = [f"population.{g}.{k}={v}" for g in (0, 1) for k, v in (("initial_age_years", 2), ("initial_soh", 0.92))]
    cyc, paid, e = _reconcile(aged)
    assert e > 300 and paid > 50
    assert 0.6 <= cyc / paid <= 1.6, (cyc, paid)


def test_cycle_history_leaves_the_young_packs_front_loading():
    """The bundled pair's packs start at China's NEV stock ages with the cycles of their own driving
    over that age (docs/wear.md, Initial age): a 2-year-old private commuter's pack has ~80 FEC
    behind it, not 0. Measured: 671 CNY attributed against 298 paid, 2.25 x (5.8 x when the age was
    calendar only: 2,292 against 397). What is left is the sqrt(FEC) law's curvature over the
    price's 100-FEC window on the young packs (36 % of the stock is under a year old, with < 40 FEC):
    the same run with every pack 0.5 / 2 / 5 years old gives 2.90 / 1.90 / 1.49 x. Held in
    [1.6, 3.0] (about +-30 % around the measured value) so a change to either side is seen."""
    cyc, paid, _ = _reconcile([])
    assert 1.6 <= cyc / paid <= 3.0, (cyc, paid)


def test_distributed_drivers_price_the_cycle_an_invitation_asks_for():
    """A distributed driver (``wear_cny_per_kwh: model``) prices the V2G cycle an invitation asks
    for: down to their reserve, and where plugged at most the window's hours at the pile's power;
    the contract's compensation pays the cycle down to the minimum at departure."""
    import v2gsim

    m = V2GModel(v2gsim.load_scenario("wear_compensation_off", ["time.horizon_days=2"]))
    m.run_for(int(round(19 / m.dt_h)))  # 19:00 on the first day: some drivers plugged at home
    st = m.aggregators[0].strategy
    f = m.fleet_view
    idx = np.flatnonzero(np.asarray(f.bidirectional))[:40]
    plugged = f.p_plug_max_kw[idx] > 0
    assert plugged.any() and (~plugged).any()
    reserve = st.reserve_kwh(f)[idx]
    floor = np.where(plugged, np.maximum(reserve, f.e_kwh[idx] - f.p_plug_max_kw[idx] * 0.5 / f.eta_discharge[idx]), reserve)
    # per battery kWh discharged, as the constant it replaces (the profitability test divides by eta_d)
    eta_d = f.eta_discharge[idx]
    np.testing.assert_allclose(st._wear_cost(f, idx, 0.5), m.wear.v2g_price_cny_per_kwh(idx, floor) * eta_d, rtol=1e-12)
    np.testing.assert_allclose(st._wear_cost(f, idx), m.wear.v2g_price_cny_per_kwh(idx, reserve) * eta_d, rtol=1e-12)
    np.testing.assert_allclose(v2g_wear_cny_per_kwh(f, idx), m.wear.v2g_price_cny_per_kwh(idx, f.e_min_departure_kwh[idx]), rtol=1e-12)
    # a short window asks for less than the room to the reserve: a different cycle, a different price
    assert not np.allclose(st._wear_cost(f, idx, 0.25)[plugged], st._wear_cost(f, idx)[plugged])


def test_the_centralized_plan_prices_v2g_near_the_wear_it_books():
    """centralized_hub with the wear model on and the plan reading it (``wear_cny_per_kwh: auto``),
    3 days, packs 2 years old at SOH 0.92: the V2G cycle wear the attribution books over the V2G
    energy x the price the plan saw before each step (half on each direction: a round trip costs
    the price of a kWh fed back). Measured: 165 CNY booked against 184 priced, 0.90 x, V2G 404 kWh;
    with the published period price the plan fed back 746 kWh and booked 2.27 x what it saw."""
    import v2gsim

    over = ["wear.model=auto", "time.horizon_days=3", "business_models.0.wear_cny_per_kwh=auto"]
    over += [f"population.{g}.{k}={v}" for g in (0, 1) for k, v in (("initial_age_years", 2), ("initial_soh", 0.92))]
    m = V2GModel(v2gsim.load_scenario("centralized_hub", over))
    f, fv = m.fleet, m.fleet_view
    seen, dis0 = 0.0, f.e_discharged_kwh.copy()
    while m.steps < m.n_clock:
        v = np.flatnonzero(f.can_discharge)
        price = v2g_wear_cny_per_kwh(fv, v)  # what the plan reads for these vehicles this step
        m.run_for(1)
        seen += float((price * (f.e_discharged_kwh[v] - dis0[v])).sum())
        dis0 = f.e_discharged_kwh.copy()
    pop, w = m.wear.pop, m.wear
    cyc = float(((pop.state.q_loss_cyc - pop.shadow.q_loss_cyc) * w.cost_per_q_cny).sum())
    assert f.e_discharged_kwh.sum() > 100 and seen > 50
    assert 0.6 <= cyc / seen <= 1.6, (cyc, seen, f.e_discharged_kwh.sum())
