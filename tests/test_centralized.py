"""Centralized strategy: plan optimality against an independent LP, limits, requests, re-planning,
and full model runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from v2gsim.engine.actor import SiteTable
from v2gsim.market.events import own_requests
from v2gsim.model import V2GModel
from v2gsim.strategies.base import FleetView, Observation, StrategyContext
from v2gsim.strategies.centralized import Centralized, CentralizedConfig

from helpers import scenario

# ------------------------------------------------------------------------------------------
# a tiny hand-stepped harness: fleet arrays, an observation per step, linear battery physics


class Harness:
    def __init__(self, n, T, *, dt=0.5, cap=50.0, e0=20.0, p=20.0, dis=True, dep=None, e_min=10.0,
                 e_stop=None, buy=None, v2g=None, limit=np.inf, headroom=None, eta=0.95, **cfg):
        self.n, self.T, self.dt = n, T, dt
        bc = lambda x, dtype=float: np.broadcast_to(np.asarray(x, dtype=dtype), (n,)).copy()  # noqa: E731
        self.e = bc(e0)
        self.cap = bc(cap)
        self.p_max = bc(p)
        self.can = bc(dis, bool)
        self.eta = bc(eta)
        self.dep = bc(T if dep is None else dep, np.int64)
        self.e_min = bc(e_min)
        self.e_stop = bc(cap if e_stop is None else e_stop)
        self.plugged = np.ones(n, bool)
        self.site = np.zeros(n, np.int64)
        self.wear = np.zeros(n)
        t_h = np.arange(T) * dt
        self.buy = np.asarray(buy if buy is not None else 0.6 + 0.4 * np.sin(2 * np.pi * (t_h - 9) / 24), float)
        self.v2g = np.asarray(v2g if v2g is not None else 0.7 * self.buy, float)
        self.headroom = headroom  # callable(step, net_kw_last) -> kW, or None
        times = pd.date_range("2026-07-06", periods=T, freq=f"{int(dt * 60)}min")
        ctx = StrategyContext(("hub",), times, dt, self.buy, self.v2g,
                              sites=SiteTable.of(("hub",), p_limit_kw=(float(limit),)))
        self.strategy = Centralized(CentralizedConfig(**cfg), ctx)
        self.requests = own_requests(self.strategy.config, ctx)  # its requests, as the grid operator publishes them
        self.p_hist = np.zeros((n, T))
        self.net_hist = np.zeros(T)
        self.room_hist = np.full(T, np.inf)

    def obs(self, s):
        known = dict(e_kwh=self.e, capacity_kwh=self.cap, e_stop_kwh=self.e_stop, e_min_departure_kwh=self.e_min,
                     p_plug_max_kw=np.where(self.plugged, self.p_max, 0.0), can_discharge=self.can & self.plugged,
                     bidirectional=self.can.copy(), eta_charge=self.eta, eta_discharge=self.eta,
                     t_depart_est_step=np.where(self.plugged, self.dep, -1), site=np.where(self.plugged, self.site, -1),
                     wear_cost_cny_per_kwh=self.wear, v2g_wear_price=None)
        # the array fields this strategy does not read are zeros
        fv = FleetView(**{k: known.get(k, np.zeros(self.n)) for k in FleetView.__dataclass_fields__})
        room = np.inf
        if self.headroom is not None:
            room = self.headroom(s) - (self.net_hist[s - 1] if s > 0 else 0.0)
        self.room_hist[s] = room + (self.net_hist[s - 1] if s > 0 else 0.0)
        return Observation(s, None, self.dt, float(self.buy[s]), float(self.v2g[s]), fv, self.plugged.copy(),
                           self.e < self.e_stop, room, tuple(q for q in self.requests if q.visible_step <= s))

    def step(self, s):
        d = self.strategy.decide(self.obs(s))
        p = np.zeros(self.n)
        p[d.idx] = d.p_kw
        assert np.all(self.plugged[d.idx])
        # linear battery, the engine's limits
        p = np.clip(p, -self.p_max * self.can, self.p_max)
        up = np.minimum(p, np.maximum(self.cap - self.e, 0) / (self.eta * self.dt))
        down = np.maximum(p, -np.maximum(self.e - self.e_min, 0) * self.eta / self.dt)
        p = np.where(p > 0, up, down)
        self.e = self.e + np.where(p > 0, self.eta * p * self.dt, p * self.dt / self.eta)
        self.p_hist[:, s] = p
        self.net_hist[s] = p.sum()
        return p

    def run(self, until=None):
        for s in range(self.T if until is None else until):
            self.step(s)
            self.plugged &= self.dep > s + 1
        return self


# ------------------------------------------------------------------------------------------
# independent formulation: dense, no energy variables, no DispatchProblem


def independent_plan_cost(h: Harness, cfg: CentralizedConfig) -> float:
    """Optimal plan cost (incl. the same penalties) from step 0 over the whole harness horizon,
    from the raw fleet arrays: x = [pc (n*T), pd (n*T), unmet (n), excess (T)]."""
    n, T, dt = h.n, h.T, h.dt
    m = cfg.departure_margin_min / 60 / dt
    dep = np.clip(h.dep - int(round(m)), 1, T)
    nT = n * T
    pk = cfg.peak_penalty_cny_per_kw  # the harness has no tariff demand charge; the peak so far is 0
    nv = 2 * nT + n + T + 1  # the last column: the plan's site peak
    w = cfg.wear_cny_per_kwh
    c = np.concatenate([np.tile(dt * (h.buy + w), n), np.tile(dt * (w - h.v2g), n),
                        np.full(n, cfg.penalty_need_cny_per_kwh), np.full(T, cfg.penalty_request_cny_per_kwh * dt), [pk]])
    A, b = [], []
    L = np.tril(np.ones((T, T)))
    for i in range(n):
        blk = np.zeros((T, nv))
        blk[:, i * T:(i + 1) * T] = L * h.eta[i] * dt
        blk[:, nT + i * T:nT + (i + 1) * T] = -L * dt / h.eta[i]
        A += [blk, -blk]
        b += [np.full(T, h.cap[i] - h.e[i]), np.full(T, h.e[i] - min(h.e_min[i], h.e[i]))]
        row = -blk[dep[i] - 1].copy()
        row[2 * nT + i] = -1.0
        A.append(row[None])
        b.append([h.e[i] - min(h.e_stop[i], h.cap[i])])
    cap_net = np.full(T, np.inf)
    times = h.strategy.context.times
    for r in cfg.requests:
        a = int(np.searchsorted(times, pd.Timestamp(r.start)))
        e = int(np.searchsorted(times, pd.Timestamp(r.start) + pd.Timedelta(hours=r.hours)))
        cap_net[a:e] = np.minimum(cap_net[a:e], r.p_kw if r.kind == "peak_shaving" else -r.p_kw)
    site = np.zeros((T, nv))
    for i in range(n):
        site[:, i * T:(i + 1) * T] += np.eye(T)
        site[:, nT + i * T:nT + (i + 1) * T] -= np.eye(T)
    fin = np.isfinite(cap_net)
    soft = site.copy()
    soft[:, 2 * nT + n:2 * nT + n + T] = -np.eye(T)
    A.append(soft[fin])
    b.append(cap_net[fin])
    lim = h.strategy._site_limit[0]
    if np.isfinite(lim):
        A += [site, -site]
        b += [np.full(T, lim), np.full(T, lim)]
    peak = site.copy()
    peak[:, -1] = -1.0  # site net - peak <= 0
    A.append(peak)
    b.append(np.zeros(T))
    tt = np.arange(T)
    bounds = ([(0, h.p_max[i] if tt[t] < dep[i] else 0) for i in range(n) for t in range(T)]
              + [(0, h.p_max[i] * h.can[i] if tt[t] < dep[i] else 0) for i in range(n) for t in range(T)]
              + [(0, None)] * n + [(0, None if fin[t] else 0) for t in range(T)] + [(0, None)])
    res = linprog(c, A_ub=np.vstack(A), b_ub=np.concatenate([np.ravel(x) for x in b]), bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return float(res.fun)


def request_caps(h: Harness, cfg: CentralizedConfig) -> np.ndarray:
    """Cap on site net power per harness step from the config's requests (inf where none)."""
    cap_net = np.full(h.T, np.inf)
    times = h.strategy.context.times
    for r in cfg.requests:
        a = int(np.searchsorted(times, pd.Timestamp(r.start)))
        e = int(np.searchsorted(times, pd.Timestamp(r.start) + pd.Timedelta(hours=r.hours)))
        cap_net[a:e] = np.minimum(cap_net[a:e], r.p_kw if r.kind == "peak_shaving" else -r.p_kw)
    return cap_net


def plan_objective(h: Harness, cfg: CentralizedConfig, P=None, short=None) -> float:
    """The held plan's cost plus penalties, evaluated from its powers alone (or from ``P``, (n, T),
    with cap shortfall ``short`` (T,))."""
    P = h.strategy._P if P is None else P
    n, T, dt = P.shape[0], P.shape[1], h.dt
    pc, pd = np.maximum(P, 0), np.maximum(-P, 0)
    w = cfg.wear_cny_per_kwh
    cost = dt * ((pc.sum(0) @ (h.buy[:T] + w)) + (pd.sum(0) @ (w - h.v2g[:T])))
    e = h.e[:, None] + np.cumsum(h.eta[:, None] * pc * dt - pd * dt / h.eta[:, None], axis=1)
    m = int(round(cfg.departure_margin_min / 60 / dt))
    dep = np.clip(h.dep - m, 1, T)
    unmet = np.maximum(np.minimum(h.e_stop, h.cap) - e[np.arange(n), dep - 1], 0)
    short = h.strategy._short if short is None else short  # the plan's power above the request caps
    peak = cfg.peak_penalty_cny_per_kw * max(float(P.sum(0).max()), 0.0)
    return float(cost + cfg.penalty_need_cny_per_kwh * unmet.sum() + cfg.penalty_request_cny_per_kwh * dt * short.sum() + peak)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("mode", ["exact", "aggregate"])
def test_plan_matches_independent_lp(seed, mode):
    rng = np.random.default_rng(seed)
    n, T = int(rng.integers(1, 5)), int(rng.integers(4, 12))
    reqs = []
    if seed % 2:
        reqs = [{"kind": "discharge_call", "start": "2026-07-06T01:00", "hours": 1.0, "p_kw": 15.0},
                {"kind": "peak_shaving", "start": "2026-07-06T02:00", "hours": 1.5, "p_kw": 25.0}]
    kw = dict(dt=0.5, cap=rng.uniform(30, 60, n), p=rng.choice([7.0, 11.0, 22.0], n), dis=rng.random(n) < 0.6,
              dep=rng.integers(2, T + 1, n), eta=rng.uniform(0.9, 0.97, n), limit=float(rng.choice([np.inf, 30.0])))
    kw["e0"] = kw["cap"] * rng.uniform(0.2, 0.6, n)
    kw["e_min"] = 0.2 * kw["cap"]
    kw["e_stop"] = np.minimum(kw["cap"], kw["e0"] + rng.uniform(0, 1, n) * kw["p"] * (kw["dep"] - 1) * 0.5 * 0.9)
    # the raw prices, as the reference LP; half the seeds with the peak charge (the reference LP has it too)
    cfg = dict(mode=mode, horizon_h=T * 0.5, departure_margin_min=0, requests=reqs, respect_feeder_headroom=False,
               wear_cny_per_kwh=0.03, charge_early_cny_per_kwh_h=0.0, peak_penalty_cny_per_kw=0.5 if seed % 4 < 2 else 0.0)
    h = Harness(n, T, **kw, **cfg)
    c = h.strategy.config
    ref = independent_plan_cost(h, c)
    e0 = h.e.copy()
    if mode == "exact":
        h.step(0)
        h.e = e0  # evaluate the plan from the state it was made in
        got = plan_objective(h, c)
        assert got == pytest.approx(ref, rel=1e-6, abs=1e-6)
    else:  # aggregate: no per-vehicle plan is held; the realised schedule is feasible, so no better
        # than the optimum (the 2 % question: test_dispatch)
        h.run()
        h.e = e0
        short = np.maximum(h.net_hist - request_caps(h, c), 0.0)
        got = plan_objective(h, c, P=h.p_hist, short=short)
        assert got >= ref - 1e-6


def test_exact_never_charges_and_discharges_a_vehicle_in_one_step_even_when_it_pays():
    # V2G price far above the buy price: an LP would burn energy by charging and discharging the
    # same vehicle in one step; the plan must not (the net column hides nothing: check the parts).
    plans = []
    import v2gsim.strategies.centralized as mod

    orig = mod.plan_exact

    def spy(prob, **kw):
        plan = orig(prob, **kw)
        plans.append(plan)
        return plan

    mod.plan_exact = spy
    try:
        T = 6
        h = Harness(3, T, dt=1.0, buy=np.full(T, 0.3), v2g=np.full(T, 4.0), e0=30.0, cap=60.0, e_min=10.0,
                    e_stop=30.0, p=10.0, dis=True, mode="exact", wear_cny_per_kwh=0.0, departure_margin_min=0,
                    respect_feeder_headroom=False, limit=15.0)
        h.run()
    finally:
        mod.plan_exact = orig
    assert plans and any(pl.n_binary_steps > 0 for pl in plans)  # the rule was binding
    for pl in plans:
        assert np.all(np.minimum(pl.p_ch_kw, pl.p_dis_kw) == 0.0)


def test_exact_plans_keep_every_limit_with_a_flat_v2g_price_and_vehicles_leaving_together(monkeypatch):
    # A flat V2G price above the night price (charging and discharging a vehicle at once would
    # pay), a site limit that binds, and all but one vehicle leaving in the same step: every
    # plan the strategy uses keeps every limit, with the strategy's time limit.
    import v2gsim.strategies.centralized as mod
    from v2gsim.strategies.dispatch import check_plan

    seen = []
    orig = mod.plan_exact

    def spy(prob, **kw):
        plan = orig(prob, **kw)
        seen.append((prob, plan, kw))
        return plan

    monkeypatch.setattr(mod, "plan_exact", spy)
    T, n = 24, 6
    buy = np.where(np.arange(T) < 10, 0.25, 1.1)
    dep = np.full(n, 16)
    dep[0] = T
    h = Harness(n, T, dt=0.5, buy=buy, v2g=np.full(T, 0.6), e0=np.linspace(15, 40, n), cap=50.0, e_min=10.0,
                e_stop=45.0, p=22.0, dis=np.arange(n) % 3 != 0, dep=dep, limit=40.0, mode="exact",
                wear_cny_per_kwh=0.02, departure_margin_min=0, respect_feeder_headroom=False, exact_time_limit_s=3.0)
    h.run()
    assert seen
    st = h.strategy.stats
    for prob, plan, kw in seen:
        assert kw == {"time_limit_s": 3.0}
        assert check_plan(prob, plan) == []
        assert plan.status in ("optimal", "time_limit_feasible", "fallback")
        assert np.abs(plan.p_site_kw).max() <= 40.0 + 1e-6
    assert any(plan.n_binary_steps > 0 for _, plan, _ in seen)  # the MIP was needed
    assert st["solve_failures"] == 0
    assert st["exact_time_limited"] == sum(plan.status != "optimal" for _, plan, _ in seen)


def test_full_run_with_a_flat_v2g_price_keeps_the_site_limit():
    # The engine's limiter clips whatever the strategy asks (the plan keeps the limit; the
    # must-charge top-ups may not), both ways.
    bm = {"kind": "centralized", "sites": ["hub"], "mode": "exact", "exact_time_limit_s": 0.5}
    hub = dict(HUB, sites=[HUB["sites"][0], dict(HUB["sites"][1], p_limit_kw=90)])
    sc = scenario(business_models=[bm, {"kind": "uncontrolled"}], tariff={"preset": "guangdong", "v2g_price_cny_per_kwh": 0.6},
                  time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 1, "warmup_days": 0}, **hub)
    res = V2GModel(sc).run()
    p_hub = res.sites.loc[res.sites.site_id == "hub", "p_kw"].to_numpy()
    assert np.abs(p_hub).max() <= 90 + 1e-9
    assert (p_hub < 0).any()  # V2G happened
    assert res.kpis["centralized_solve_failures"] == 0
    assert "centralized_exact_time_limited" in res.kpis


def test_needs_met_at_stated_departure_when_feasible():
    rng = np.random.default_rng(5)
    n, T = 12, 48
    dep = rng.integers(16, T, n)  # each need takes <= 9 full-power steps, the whole fleet's <= 12 at the site limit
    e0 = rng.uniform(10, 30, n)
    h = Harness(n, T, dt=0.25, e0=e0, cap=60.0, e_stop=55.0, p=22.0, dep=dep, dis=rng.random(n) < 0.5,
                limit=200.0, replan_every_min=60, departure_margin_min=0, respect_feeder_headroom=False)
    e_at_dep = np.full(n, np.nan)
    for s in range(T):
        h.step(s)
        leaving = h.plugged & (h.dep == s + 1)
        e_at_dep[leaving] = h.e[leaving]
        h.plugged &= h.dep > s + 1
    np.testing.assert_array_less(55.0 - 1e-6, e_at_dep)
    assert np.all(h.net_hist <= 200.0 + 1e-9)


def test_discharge_call_honoured_when_feasible_and_v2g_only_at_bidirectional_ports():
    T = 16
    dis = np.array([True, True, True, False])
    h = Harness(4, T, dt=0.5, e0=40.0, cap=60.0, e_min=10.0, e_stop=40.0, p=20.0, dis=dis,
                requests=[{"kind": "discharge_call", "start": "2026-07-06T03:00", "hours": 1.0, "p_kw": 45.0}],
                respect_feeder_headroom=False, departure_margin_min=0)
    h.run()
    call = slice(6, 8)
    assert np.all(h.net_hist[call] <= -45.0 + 1e-6)
    assert np.all(h.p_hist[~dis] >= -1e-12)  # never discharges without a bidirectional port
    assert np.all(h.p_hist[dis][:, call] <= 0)


def test_site_limit_and_feeder_headroom_respected():
    T = 24
    rating = 60.0
    base = 20.0 + 15.0 * (np.arange(T) % 6 == 0)
    h = Harness(6, T, dt=0.5, e0=10.0, cap=60.0, e_stop=30.0, p=22.0, dis=False, limit=100.0,
                headroom=lambda s: rating - base[s], departure_margin_min=0)
    h.run()
    assert np.all(h.net_hist <= 100.0 + 1e-9)
    assert np.all(h.net_hist + base <= rating + 1e-6)  # needs are reachable within the room
    assert np.all(h.e >= 30.0 - 1e-6)


def test_replans_when_a_vehicle_leaves_earlier_than_stated():
    T = 16
    h = Harness(2, T, dt=0.5, e0=40.0, cap=60.0, e_min=10.0, e_stop=30.0, p=20.0, dis=True,
                requests=[{"kind": "discharge_call", "start": "2026-07-06T04:00", "hours": 1.0, "p_kw": 20.0}],
                replan_every_min=600, respect_feeder_headroom=False, departure_margin_min=0)
    for s in range(3):
        h.step(s)
    n0 = h.strategy.stats["replans"]
    h.plugged[0] = False  # leaves at step 3, stated 16
    h.step(3)
    assert h.strategy.stats["replans"] == n0 + 1
    assert h.strategy._idx.tolist() == [1]
    for s in range(4, T):
        h.step(s)
    np.testing.assert_allclose(h.net_hist[8:10], -20.0, atol=1e-6)  # the one left answers the call alone


def test_no_replan_without_events_within_the_interval():
    h = Harness(2, 12, dt=0.5, replan_every_min=120, respect_feeder_headroom=False)
    for s in range(4):
        h.step(s)
    assert h.strategy.stats["replans"] == 1
    h.step(4)  # the interval's end
    assert h.strategy.stats["replans"] == 2


# ------------------------------------------------------------------------------------------
# full model runs


HUB = dict(
    sites=[{"id": "homes", "kind": "home", "p_max_kw": 7},
           {"id": "hub", "kind": "public", "p_max_kw": 60, "chargers": 8, "bidirectional_share": 0.5, "p_limit_kw": 250}],
    population=[
        {"archetype": "ride_hailing", "count": 10, "vehicle": "generic_private_50", "home_site": "homes",
         "home_charger_share": 0.3, "public_site": "hub"},
        {"archetype": "private_commuter", "count": 15, "vehicle": "byd_dolphin_44_v2g", "home_site": "homes",
         "home_charger_share": 0.0, "public_site": "hub", "public_charge_below_soc": 0.7},
    ],
)


@pytest.mark.parametrize("mode", ["exact", "aggregate"])
def test_full_run_conserves_energy_and_respects_limits(mode):
    bm = {"kind": "centralized", "sites": ["hub"], "mode": mode,
          "requests": [{"kind": "discharge_call", "start": "2026-07-06T19:00", "hours": 1, "p_kw": 60, "daily": True}]}
    sc = scenario(business_models=[bm, {"kind": "uncontrolled"}], **HUB)
    m = V2GModel(sc)
    f = m.fleet
    e_start = f.e_kwh.copy()
    for _ in range(m.n_clock):
        m.step()
        assert np.all(f.p_kw[f.plugged & ~f.can_discharge] >= -1e-12)
    balance = f.e_charged_kwh - f.e_discharged_kwh - f.e_loss_kwh - f.e_driven_kwh
    np.testing.assert_allclose(f.e_kwh - e_start, balance, atol=1e-9)
    hub = 1
    assert np.abs(m.recorder.site_p_kw[:, hub]).max() <= 250 + 1e-9
    assert f.e_discharged_kwh.sum() > 0  # V2G happened
    st = m.aggregators[0].strategy
    assert st.stats["replans"] > 0 and st.stats["solve_failures"] == 0


def test_kpis_reported_in_results():
    bm = {"kind": "centralized", "sites": ["hub"]}
    res = V2GModel(scenario(business_models=[bm, {"kind": "uncontrolled"}], **HUB)).run()
    assert res.kpis["centralized_replans"] > 0
    assert "centralized_planned_cap_shortfall_kwh" in res.kpis


def test_config_rejects_bad_values():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        CentralizedConfig(mode="fast")
    with pytest.raises(ValidationError):
        CentralizedConfig(wear_cny_per_kwh="wear")
    with pytest.raises(ValidationError):
        CentralizedConfig(sites=["a"], requests=[{"kind": "peak_shaving", "start": "2026-07-06T10:00", "hours": 1,
                                                  "p_kw": 5, "site": "b"}])
    assert CentralizedConfig(wear_cny_per_kwh="model").wear_cny_per_kwh == "model"


@pytest.mark.parametrize("skip_tol", [0.0, 0.05, 1.0])
def test_aggregate_plans_once_per_interval_and_serves_arrivals(skip_tol):
    # A few hundred vehicles at one site, arriving and leaving at random: the aggregate site plans
    # only on its interval (arrivals between plans are split in by least laxity), meets every
    # feasible need by the stated departure, never exceeds the site limit, and discharges only
    # bidirectional vehicles.
    rng = np.random.default_rng(21)
    n, T, dt = 300, 96, 0.25
    arr = rng.integers(0, 48, n)
    dep = np.minimum(arr + rng.integers(16, 48, n), T)
    cap = rng.uniform(40, 70, n)
    e0 = cap * rng.uniform(0.2, 0.5, n)
    p_max = 11.0
    need = np.minimum(cap, e0 + rng.uniform(0.2, 0.8, n) * 0.95 * p_max * dt * (dep - arr - 4))
    dis = rng.random(n) < 0.4
    h = Harness(n, T, dt=dt, e0=e0, cap=cap, e_stop=need, e_min=0.15 * cap, p=p_max, dis=dis, dep=dep,
                limit=1500.0, mode="aggregate", replan_every_min=60, departure_margin_min=0,
                respect_feeder_headroom=False, replan_skip_tolerance=skip_tol,
                requests=[{"kind": "discharge_call", "start": "2026-07-06T10:00", "hours": 1.0, "p_kw": 100.0}])
    e_start = h.e.copy()
    h.plugged[:] = arr == 0
    e_at_dep = np.full(n, np.nan)
    for s in range(T):
        h.plugged |= arr == s
        h.step(s)
        leaving = h.plugged & (dep == s + 1)
        e_at_dep[leaving] = h.e[leaving]
        h.plugged &= dep > s + 1
    k = h.strategy.kpis()
    steps_per_plan = 4
    assert k["aggregate_solves"] <= np.ceil(T / steps_per_plan)  # one site: at most one LP per hour
    if skip_tol == 0:
        assert k["aggregate_replans_skipped"] == 0
    if skip_tol == 1.0:  # drift never blocks a skip: every 3 h (replan_skip_max_h) only
        assert k["aggregate_replans_skipped"] > 0
        assert k["aggregate_solves"] <= np.ceil(T / (3 * steps_per_plan)) + 1
    assert k["exact_solves"] == 0 and k["solve_failures"] == 0
    assert k["replans"] <= np.ceil(T / steps_per_plan) + 1
    np.testing.assert_array_less(need - 1e-6, e_at_dep)  # every need met at its stated departure
    assert np.all(h.net_hist <= 1500.0 + 1e-9)
    assert np.all(h.p_hist[~dis] >= 0.0)
    assert np.all(h.net_hist[40:44] <= -100 + 1e-6)  # the discharge call is answered
    # energy: battery change = charged * eta - discharged / eta, vehicle by vehicle
    pc, pd_ = np.maximum(h.p_hist, 0), np.maximum(-h.p_hist, 0)
    np.testing.assert_allclose(h.e - e_start, (h.eta[:, None] * pc * dt - pd_ * dt / h.eta[:, None]).sum(1), atol=1e-9)
    assert np.all(h.e <= cap + 1e-9) and np.all(h.e >= np.minimum(0.15 * cap, e_start) - 1e-9)


def test_strategy_problems_pass_full_validation(monkeypatch):
    # The strategy builds its problems without DispatchProblem's checks (trusted_problem); every
    # problem of a full hub run must pass them unchanged.
    import dataclasses

    import v2gsim.strategies.centralized as central
    from v2gsim.strategies.dispatch import DispatchProblem, trusted_problem

    seen = []

    def checked(**fields):
        prob = trusted_problem(**fields)
        init = {f.name: getattr(prob, f.name) for f in dataclasses.fields(DispatchProblem) if f.init}
        ref = DispatchProblem(**init)  # raises on any invalid field
        for name in ("price_buy_cny_per_kwh", "departure_step", "e0_kwh", "e_need_kwh", "p_site_max_kw"):
            np.testing.assert_array_equal(getattr(ref, name), getattr(prob, name))
        assert (ref.n_vehicles, ref.n_steps) == (prob.n_vehicles, prob.n_steps)
        seen.append(prob.n_vehicles)
        return prob

    monkeypatch.setattr(central, "trusted_problem", checked)
    for mode in ("exact", "aggregate"):
        bm = {"kind": "centralized", "sites": ["hub"], "mode": mode, "wear_cny_per_kwh": "model" if mode == "exact" else 0.05}
        V2GModel(scenario(business_models=[bm, {"kind": "uncontrolled"}], **HUB)).run()
    assert len(seen) > 10 and max(seen) > 1


def test_auto_mode_plans_sites_with_many_charging_points_in_aggregate_from_the_start():
    # auto: a site with more charging points than exact_max_vehicles is an aggregate site from its
    # first plan, even while few vehicles are plugged there; a small site stays exact
    def run(exact_max):
        bm = {"kind": "centralized", "sites": ["hub"], "mode": "auto", "exact_max_vehicles": exact_max}
        m = V2GModel(scenario(business_models=[bm, {"kind": "uncontrolled"}], **HUB))
        m.run()
        return m.aggregators[0].strategy.stats

    big = run(4)  # the hub has 8 charging points
    assert big["exact_solves"] == 0 and big["aggregate_solves"] > 0
    small = run(8)
    assert small["exact_solves"] > 0 and small["aggregate_solves"] == 0


@pytest.mark.parametrize("mode", ["exact", "aggregate"])
def test_equal_prices_charge_early(mode):
    # A flat tariff: every hour costs the same, so only the time preference decides when to
    # charge. With it the plan charges at once (a driver who leaves early leaves full); the
    # energy and its cost are the same either way.
    T, dt = 16, 0.5

    def run(eps):
        return Harness(3, T, dt=dt, e0=10.0, cap=50.0, e_stop=40.0, p=11.0, dis=False, dep=T, buy=np.full(T, 0.6),
                       v2g=np.full(T, 0.4), mode=mode, departure_margin_min=0, respect_feeder_headroom=False,
                       charge_early_cny_per_kwh_h=eps, peak_penalty_cny_per_kw=0.0).run()
    early, late = run(1e-4), run(0.0)
    need_steps = int(np.ceil(30.0 / (0.95 * 11.0 * dt)))  # 30 kWh at 11 kW, eta 0.95: 6 steps
    np.testing.assert_allclose(early.p_hist[:, :need_steps - 2], 11.0)  # full power from the first step
    # and done within two steps of the fastest (the aggregate split spreads the last of it)
    assert np.all(np.abs(early.p_hist[:, need_steps + 2:]) < 1e-9)
    assert np.all(np.abs(late.p_hist[:, :T // 2]) < 1e-9)  # without it the optimum happens to be the latest hours
    np.testing.assert_allclose(early.e, 40.0, atol=1e-6)
    np.testing.assert_allclose(late.e, 40.0, atol=1e-6)
    assert early.p_hist.sum() == pytest.approx(late.p_hist.sum(), rel=1e-9)


def test_aggregate_plan_sees_vehicles_staying_under_an_hour():
    # Drivers on a 45-minute break at a V2G hub, a discharge call in that time: with the default
    # blocks (15-minute near the start of the plan) the aggregate plan has them plugged and
    # answers the call; with one-hour blocks they do not fill a whole block, drop out of the
    # plan and only charge what they must.
    T, dt = 12, 0.25
    calls = [{"kind": "discharge_call", "start": "2026-07-06T00:00", "hours": 0.75, "p_kw": 40.0}]

    def run(**cfg):
        h = Harness(4, T, dt=dt, e0=40.0, cap=50.0, e_stop=25.0, e_min=10.0, p=20.0, dis=True, dep=3,
                    mode="aggregate", departure_margin_min=0, respect_feeder_headroom=False, requests=calls, **cfg)
        return h.run()

    fine = run()
    assert fine.strategy.config.aggregate_step_min == 15
    assert np.all(fine.net_hist[:3] <= -40.0 + 1e-6)  # the call is answered in each of its steps
    np.testing.assert_array_less(25.0 - 1e-6, fine.e)  # and the drivers leave with what they wanted
    coarse = run(aggregate_step_min=60, aggregate_near_h=6)
    assert np.all(coarse.net_hist[:3] >= -1e-9)  # out of the plan: no discharge


def test_aggregate_operator_in_a_run_close_to_exact_on_the_bundled_hub():
    # Closed loop on scenarios/centralized_hub.yaml (150 EVs, 36 guns, 3 days): the aggregate
    # operator against the exact one. Measured: cost 0.99x, V2G 0.71x, unmet need 0.96x (the
    # earlier least-laxity split, aggregate_split llf with re-plans every hour: 0.98x, 0.66x,
    # 1.14x; with hourly near blocks too: V2G 0.39x, unmet 1.33x).
    # This is the split's fidelity on the energy-price objective: the peak charge and the arrival
    # forecast are off in both (measured so: cost 0.995x, V2G 0.80x, unmet 0.96x). With them (the
    # defaults) the exact plan feeds back more (613 kWh) and the aggregate less (275 kWh: the value
    # split does not move V2G away from steps whose recharge would raise the peak): cost 1.01x,
    # V2G 0.45x, unmet 0.74x -- open, docs/business_models.md.
    from pathlib import Path

    from v2gsim.scenario import load_scenario

    path = Path(__file__).resolve().parents[1] / "scenarios" / "centralized_hub.yaml"
    out = {}
    for mode in ("exact", "aggregate"):
        sc = load_scenario(path, ["time.horizon_days=3", f"business_models.0.mode={mode}", "outputs.session_sample=100000",
                                  "business_models.0.peak_penalty_cny_per_kw=0", "business_models.0.arrival_forecast=false"])
        res = V2GModel(sc).run()
        p = res.sites.loc[res.sites.site_id == "lianhua_hub", "p_kw"].to_numpy()
        buy = res.system["price_cny_per_kwh"].to_numpy()
        v2g = res.system["v2g_price_cny_per_kwh"].to_numpy()
        cost = (np.maximum(p, 0) @ buy - np.maximum(-p, 0) @ v2g + 0.05 * np.abs(p).sum()) * res.dt_h
        hub = res.sessions[res.sessions.site_id == "lianhua_hub"]
        out[mode] = (cost, np.maximum(-p, 0).sum() * res.dt_h, hub.unmet_kwh.sum())
    (c_ex, v_ex, u_ex), (c_ag, v_ag, u_ag) = out["exact"], out["aggregate"]
    assert abs(c_ag / c_ex - 1.0) <= 0.02
    assert v_ag >= 0.6 * v_ex
    assert u_ag <= 1.05 * u_ex


def test_aggregate_operator_at_a_binding_site_plans_by_classes_close_to_exact(monkeypatch):
    # The bundled hub with its grid connection cut to 600 kW (36 x 60 kW guns: the limit binds),
    # 3 days: the aggregate operator (aggregate_split auto: a class plan where it does better than
    # the value split, re-planned for arrivals) against the exact one, both with the arrival forecast
    # (the queued and arriving cars in the plan) and the peak charge. One run's ratio is not a
    # property of the planner: over seeds 42 and 1-8 the aggregate costs 0.997-1.037x the exact
    # (pooled 1.016x; unmet need 0.78-1.16x), and a 0.2 % change of the wear price moves seed 42
    # between 1.030x and 1.039x; before late trips were deferred, 0.991-1.035x (pooled 1.009x),
    # seed 42 at 1.013x, in 2 of 9 seeds above 1.02x (bench/order15b_edge.py). So the test pools
    # four seeds: measured cost 1.015x, unmet need 0.97x (before the deferral: 1.006x, 1.02x).
    # Earlier, before the drivers' queues, seed 42: cost 0.997x, unmet need 0.92x (class plans
    # alone: 0.995x, 1.05x; the value split alone: 1.01x, 0.88x; most of the unmet need is drivers
    # leaving before their stated time).
    from pathlib import Path

    from v2gsim.scenario import load_scenario

    import v2gsim.strategies.centralized as C

    class_plans = []
    plan_classes = C.plan_classes
    monkeypatch.setattr(C, "plan_classes", lambda prob: class_plans.append(prob.n_vehicles) or plan_classes(prob))
    path = Path(__file__).resolve().parents[1] / "scenarios" / "centralized_hub.yaml"
    out = {"exact": np.zeros(2), "aggregate": np.zeros(2)}
    for seed in (42, 1, 2, 3):
        for mode in ("exact", "aggregate"):
            sc = load_scenario(path, ["time.horizon_days=3", "sites.0.p_limit_kw=600", f"business_models.0.mode={mode}",
                                      "outputs.session_sample=100000", f"seed={seed}"])
            model = V2GModel(sc)
            del class_plans[:]
            res = model.run()
            p = res.sites.loc[res.sites.site_id == "lianhua_hub", "p_kw"].to_numpy()
            assert np.all(np.abs(p) <= 600.0 + 1e-6)
            buy = res.system["price_cny_per_kwh"].to_numpy()
            v2g = res.system["v2g_price_cny_per_kwh"].to_numpy()
            cost = (np.maximum(p, 0) @ buy - np.maximum(-p, 0) @ v2g + 0.05 * np.abs(p).sum()) * res.dt_h
            out[mode] += (cost, res.sessions[res.sessions.site_id == "lianhua_hub"].unmet_kwh.sum())
            if mode == "aggregate":  # classes considered whenever the vehicles there could exceed the limit
                assert len(class_plans) > 0.5 * model.aggregators[0].strategy.stats["aggregate_solves"]
    (c_ex, u_ex), (c_ag, u_ag) = out["exact"], out["aggregate"]
    assert abs(c_ag / c_ex - 1.0) <= 0.03
    assert u_ag <= 1.1 * u_ex


def test_aggregate_value_split_with_only_new_arrivals_at_a_binding_site_does_not_crash():
    """The bundled hub cut to 600 kW, aggregate mode, seed 4: on day 3 a step finds only cars that
    plugged in after the site's value plan while the limit binds; the split's look-ahead took the
    maximum of an empty array (ValueError). Those cars now share the planned power least laxity
    first, like any arrival."""
    import v2gsim

    sc = v2gsim.load_scenario("centralized_hub", ["time.horizon_days=3", "sites.0.p_limit_kw=600",
                                                  "business_models.0.mode=aggregate", "seed=4"])
    res = V2GModel(sc).run()
    p = res.sites.loc[res.sites.site_id == "lianhua_hub", "p_kw"].to_numpy()
    assert p.size and np.all(np.abs(p) <= 600.0 + 1e-6)


def test_plan_caps_later_steps_at_the_feeders_forecast_headroom():
    """The plan's soft cap: this step the measured room; later steps the transformer rating less
    the base-load forecast less what the other loads drew beyond the base last step."""
    import v2gsim

    sc = v2gsim.load_scenario("centralized_hub", ["time.horizon_days=1", "time.warmup_days=0", "feeder.transformer_kva=800"])
    m = V2GModel(sc)
    st = m.aggregators[0].strategy
    seen = []
    orig = st._problem

    def spy(obs, v, site_k, T, **kw):
        prob = orig(obs, v, site_k, T, **kw)
        seen.append((obs.step, kw["headroom_kw"], kw["pch_share"], prob.p_feeder_headroom_kw, T))
        return prob

    st._problem = spy
    for _ in range(40):
        m.step()
    assert seen
    rating = 800 * 0.95
    base = st.context.base_load_forecast_kw
    seen = [x for x in seen if np.isfinite(x[1])]  # the first step: no measurement yet, no cap
    assert seen
    for s, head, share, cap, T in seen:
        assert cap[0] == pytest.approx(max(head, 0.0) * share)
        others = max(0.0, rating - head - (base[s - 1] if s > 0 else base[0]))
        want = np.maximum(rating - base[s:s + T] - others, 0.0) * share
        np.testing.assert_allclose(cap[1:], want[1:], rtol=1e-12)
    # switched off: only the current step is capped
    m2 = V2GModel(v2gsim.load_scenario("centralized_hub", ["time.horizon_days=1", "time.warmup_days=0", "feeder.transformer_kva=800",
                                                           "business_models.0.feeder_forecast_in_plan=false"]))
    st2, seen2 = m2.aggregators[0].strategy, []
    orig2 = st2._problem
    st2._problem = lambda obs, v, site_k, T, **kw: seen2.append(orig2(obs, v, site_k, T, **kw)) or seen2[-1]
    for _ in range(40):
        m2.step()
    seen2 = [p for p in seen2 if p.p_feeder_headroom_kw is not None]
    assert seen2 and all(np.isinf(p.p_feeder_headroom_kw[1:]).all() for p in seen2)


def test_feeder_forecast_lowers_transformer_overload_on_a_tight_hub():
    """centralized_hub on an 800 kVA transformer (2 days), its own seed and seeds 1 and 2: with the
    forecast in the plan the transformer's overload energy (kVA·h above its rating, summed over the
    three runs) is about half: measured 150.6 vs 302.1 kVA·h (before late trips were deferred:
    170.5 vs 311.3). Over seeds 42 and 1-9 it is 0.67x both ways, lower in 7 of the 10 runs; the
    hours above 100 % barely move (8.75 vs 9.25 h over the ten) and were 0.75 h both ways on seed
    42 alone: the forecast trims the depth of the evening overloads, not their length, so the test
    reads the energy, over more than one run."""
    import v2gsim

    kva = 800.0

    def overload_kvah(on, seed):
        res = v2gsim.run(v2gsim.load_scenario("centralized_hub", ["time.horizon_days=2", f"feeder.transformer_kva={kva:g}",
                                                                  f"business_models.0.feeder_forecast_in_plan={on}",
                                                                  f"seed={seed}"]), baseline=False)
        load_pct = res.system["transformer_loading_pct"].to_numpy()
        return float(np.maximum(load_pct - 100.0, 0.0).sum() / 100.0 * kva * res.dt_h)

    seeds = (42, 1, 2)
    on = sum(overload_kvah("true", s) for s in seeds)
    off = sum(overload_kvah("false", s) for s in seeds)
    assert off > 50.0  # the tight transformer is overloaded without the forecast
    assert on < 0.8 * off


@pytest.mark.parametrize("wear, expect_model", [({"model": "auto"}, True), ({"model": "auto", "price_dispatch": False}, False),
                                                (None, False)])
def test_default_wear_price_is_the_wear_models_when_it_publishes_one(monkeypatch, wear, expect_model):
    # wear_cny_per_kwh: auto (default) plans with the wear model's marginal price, read through the
    # contracts' function (half the price of a kWh fed back and recharged, per direction); without
    # a published price, the constant 0.05
    import v2gsim.strategies.centralized as central
    from v2gsim.strategies.dispatch import trusted_problem

    seen = []

    def record(**fields):
        prob = trusted_problem(**fields)
        seen.append((prob.wear_cny_per_kwh, np.asarray(prob.wear_vehicle_cny_per_kwh).copy(), np.asarray(fields.get("vehicle_ids", [])).copy()))
        return prob

    monkeypatch.setattr(central, "trusted_problem", record)
    bm = {"kind": "centralized", "sites": ["hub"], "mode": "exact"}
    extra = {"wear": wear} if wear else {}
    m = V2GModel(scenario(business_models=[bm, {"kind": "uncontrolled"}], **HUB, **extra))
    st = m.aggregators[0].strategy
    assert st._wear_from_model is expect_model
    if expect_model:
        v = np.arange(m.fleet.n)
        # a vehicle it may discharge: half the price of a kWh fed back at its own V2G cycle
        # (docs/wear.md "Timing"); one it only charges: the published throughput price
        m.run_for(int(round(13 / m.dt_h)))  # 13:00: 9 plugged, 3 at bidirectional chargers
        d = np.asarray(m.fleet.can_discharge, bool)
        assert d.any() and (~d).any()
        got = st._wear_throughput_cny_per_kwh(m.fleet_view, v)
        np.testing.assert_allclose(got[d], 0.5 * m.wear.v2g_price_cny_per_kwh(v[d]), rtol=1e-15)
        np.testing.assert_allclose(got[~d], m.fleet.wear_cost_cny_per_kwh[~d], rtol=1e-15)
        assert (m.fleet.wear_cost_cny_per_kwh > 0).all()
    m.run()
    assert seen
    for c, wv, _ in seen:
        if expect_model:
            assert c == 0.0 and (wv >= 0).all() and (wv > 0.05).any()  # forecast arrivals added to the plan carry 0
        else:
            assert c == 0.05 and not np.any(wv)


def _hub_bid_at_2am(kind: str, start: str, hours: float, span_steps: int, bm_extra: dict | None = None):
    """The bundled hub with wear auto, run to 02:00 (11 plugged, 5 at bidirectional chargers), and
    the centralized operator's bid for a ``kind`` request starting 4 steps later over
    ``span_steps``: (bid, observation, strategy, (a, b))."""
    from v2gsim.market.events import GridRequest, IssuedRequest

    bm = {"kind": "centralized", "sites": ["hub"], "mode": "exact", **(bm_extra or {})}
    m = V2GModel(scenario(business_models=[bm, {"kind": "uncontrolled"}], wear={"model": "auto"}, **HUB))
    m.run_for(int(round(2 / m.dt_h)))
    obs = m.aggregators[0].observation(m.signals)
    st = m.aggregators[0].strategy
    a, b = obs.step + 4, obs.step + 4 + span_steps
    req = IssuedRequest(0, "x", GridRequest(kind=kind, start=start, hours=hours, p_kw=100, to=["centralized"]), ((a, b),), 0, {"centralized": 0})
    return st.bid(req, obs), obs, st, (a, b)


def test_the_valley_fill_bid_counts_the_wear_of_the_kwh_charged_by_hand():
    """A valley fill's wear term with the wear model's price: a grid kWh charged puts eta_c
    battery kWh in, one direction of the round trip of eta_c eta_d grid kWh fed back, so it is
    eta_c eta_d x half the price of a kWh fed back (``v2g_wear_cny_per_kwh``), the mean over the
    vehicles offering; half the price per grid kWh (before) was 1/(eta_c eta_d) ~ 10 % over."""
    from v2gsim.market.contracts import v2g_wear_cny_per_kwh

    bid, obs, st, (a, b) = _hub_bid_at_2am("valley_fill", "2026-07-06T12:00", 2, 8)
    f = obs.fleet
    v = obs.plugged_idx
    dep = f.t_depart_est_step[v]
    v = v[(dep >= b) | (dep < 0)]
    assert v.size
    prices = np.asarray(st.context.price_cny_per_kwh, float)
    day = int(round(24 / obs.dt_h))
    shift = max(float(prices[a:b].mean()) - float(prices[a:a + day].min()), 0.0)
    d = np.asarray(f.can_discharge[v], bool)
    assert d.any()
    w = np.asarray(f.wear_cost_cny_per_kwh[v], float).copy()  # only charged: the published throughput price
    w[d] = v2g_wear_cny_per_kwh(f, v[d]) / 2
    eta = np.where(d, f.eta_charge[v] * f.eta_discharge[v], 1.0)
    assert bid.price_cny_per_kwh == pytest.approx(shift + float((eta * w).mean()), rel=1e-12)
    assert float((eta * w)[d].mean()) < 0.95 * float(w[d].mean())


@pytest.mark.parametrize("wear_cfg", ["auto", 0.07])
def test_the_discharge_call_bid_counts_the_round_trips_wear_as_the_plan_does(wear_cfg):
    """A discharge call's price: buying the energy back (cheapest of the next 24 h, both losses)
    plus the wear of the kWh fed and of the 1/(eta_c eta_d) grid kWh of charging that replace it,
    each at the plan's wear per kWh: a constant, or half the V2G price of the cycle offered (each
    vehicle at its bid power over the window, not below its minimum at departure). The old term,
    wear / eta_d, was about half of it."""
    from v2gsim.market.contracts import v2g_wear_cny_per_kwh

    bid, obs, st, (a, b) = _hub_bid_at_2am("discharge_call", "2026-07-06T03:00", 1, 4, {"wear_cny_per_kwh": wear_cfg})
    f = obs.fleet
    v = obs.plugged_idx
    dep = f.t_depart_est_step[v]
    v = v[np.asarray(f.can_discharge[v], bool) & ((dep >= b) | (dep < 0))]
    assert v.size
    hours = (b - a) * obs.dt_h
    p = np.minimum(f.p_plug_max_kw[v], np.maximum(f.e_kwh[v] - f.e_min_departure_kwh[v], 0.0) * f.eta_discharge[v] / hours)
    prices = np.asarray(st.context.price_cny_per_kwh, float)
    buyback = float(prices[b:b + int(round(24 / obs.dt_h))].min())
    eta = float(f.eta_charge[v].mean()) * float(f.eta_discharge[v].mean())
    if wear_cfg == "auto":
        floor = np.maximum(f.e_min_departure_kwh[v], f.e_kwh[v] - p * hours / f.eta_discharge[v])
        w = 0.5 * float(v2g_wear_cny_per_kwh(f, v, floor).mean())
    else:
        w = wear_cfg
    assert bid.price_cny_per_kwh == pytest.approx(buyback / eta + w * (1 + 1 / eta), rel=1e-12)
    assert w * (1 + 1 / eta) > 1.9 * w / float(f.eta_discharge[v].mean())  # the old term, about half
