"""Regulation (调频): availability, capacity and mileage payments, the signal, and valley fills in a run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import v2gsim
from v2gsim.errors import ScenarioError
from v2gsim.market.events import GridRequest
from v2gsim.market.regulation import (
    GUANGDONG_CAPACITY_CNY_PER_MWH,
    GUANGDONG_MILEAGE_PRICE_CNY_PER_MW,
    MILEAGE_PER_MW_H,
    follow_signal,
    headroom_kw,
    read_signal,
    settle_regulation,
)
from v2gsim.operators import actor_money
from v2gsim.scenario import find_scenario

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger_checks import check_ledger  # noqa: E402


def _reg(**kw) -> GridRequest:
    return GridRequest(kind="regulation", start="2026-07-07T10:00", hours=1, **kw)


def test_the_guangdong_figures_are_those_the_source_reports():
    # Guangdong FM market trial rules (2018), as summarised by China Energy Storage Network [B]:
    # mileage offers 6-15 CNY/MW before the spot market; capacity 12 CNY/MWh for accepted units
    assert GUANGDONG_MILEAGE_PRICE_CNY_PER_MW == (6.0, 15.0)
    assert GUANGDONG_CAPACITY_CNY_PER_MWH == 12.0


def test_settlement_by_hand():
    r = _reg(p_kw=100, capacity_price_cny_per_kw=2.0, mileage_price_cny_per_mw=10.0)
    # 4 steps of 15 min: 100, 100, 60, 100 kW available (120 counts as 100): A = 0.9
    out = settle_regulation(r, np.array([100.0, 120.0, 60.0, 100.0]), 0.25)
    assert out["availability"] == pytest.approx(0.9)
    assert out["capacity_cny"] == pytest.approx(2.0 * 100 * 0.9) and out["regulation_penalty_cny"] == 0.0
    # no signal: 5 MW of mileage per MW held per hour x 0.1 MW x 1 h x 0.9
    assert out["mileage_mw"] == pytest.approx(MILEAGE_PER_MW_H * 0.1 * 1.0 * 0.9)
    assert out["mileage_cny"] == pytest.approx(10.0 * out["mileage_mw"])
    # below the threshold (0.8): no capacity paid, the share short of it penalised
    low = settle_regulation(r, np.array([100.0, 0.0, 60.0, 100.0]), 0.25)
    assert low["availability"] == pytest.approx(0.65)
    assert low["capacity_cny"] == 0.0 and low["regulation_penalty_cny"] == pytest.approx(2.0 * 100 * (0.8 - 0.65))
    # a signal: what the fleet followed, signal x min(available, p); 2 samples a step
    sig = np.array([[0.0, 1.0], [1.0, -1.0], [-1.0, 0.5], [0.5, 0.5]])
    s = settle_regulation(r, np.array([100.0, 100.0, 50.0, 100.0]), 0.25, sig)
    followed = np.array([0, 100, 100, -100, -50, 25, 50, 50])
    assert s["mileage_mw"] == pytest.approx(np.abs(np.diff(followed)).sum() / 1000.0)


def test_headroom_by_hand():
    # 10 kW drawn now, 60 kW charger both ways, 30 kWh above the floor, 5 kWh below full, 15 min to sustain
    up, down = headroom_kw(np.array([10.0]), 60.0, 60.0, np.array([45.0]), 15.0, 50.0, 1.0, 1.0, 0.25)
    assert up == pytest.approx([10.0 + 60.0])  # 30 kWh over 0.25 h would allow 120 kW: the charger limits
    assert down == pytest.approx([5.0 / 0.25 - 10.0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(1, 100), st.floats(0.5, 1.0)), min_size=1, max_size=12),
       st.floats(-1, 1), st.floats(0, 500), st.sampled_from([0.25, 1.0 / 60, 1.0]))
def test_following_a_signal_keeps_every_battery_in_its_bounds(vehicles, signal, p_kw, dt_h):
    a = np.array(vehicles)
    cap = a[:, 2]
    lo = 0.2 * cap
    e = lo + a[:, 0] * (cap - lo)
    eta = a[:, 3]
    pmax = 11.0
    hi_kw = np.minimum(pmax, (cap - e) / (eta * dt_h))
    lo_kw = -np.minimum(pmax, (e - lo) * eta / dt_h)
    p = lo_kw + a[:, 1] * (hi_kw - lo_kw)  # a plan within the bounds
    new = follow_signal(p, -signal * p_kw, pmax, pmax, e, lo, cap, eta, eta, dt_h)
    e_next = e + np.where(new > 0, eta * new, new / eta) * dt_h
    assert np.all(e_next <= cap + 1e-6) and np.all(e_next >= lo - 1e-6)
    assert np.all(np.abs(new) <= pmax + 1e-9)
    moved = float(new.sum() - p.sum())
    # it moves by what the signal asks, or as far as the fleet can
    room = (hi_kw - p).clip(0).sum() if signal < 0 else (p - lo_kw).clip(0).sum()
    assert moved == pytest.approx(np.sign(-signal) * min(abs(signal) * p_kw, room), abs=1e-6)


def test_bad_signals_are_reported_with_their_yaml_path(tmp_path):
    raw = yaml.safe_load(find_scenario("centralized_hub").read_text())
    req = {"kind": "regulation", "start": "2026-07-07T10:00", "hours": 1, "p_kw": 100, "to": ["centralized"], "signal": "none.csv"}
    raw["grid_operator"] = {"requests": [req]}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(p)
    assert e.value.problems[0].path == "grid_operator.requests[0].signal" and "does not exist" in e.value.problems[0].message
    pd.DataFrame({"signal": [0.0, 1.5, 0.2, 0.1]}).to_csv(tmp_path / "none.csv", index=False)
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(p)
    assert "outside [-1, 1]" in e.value.problems[0].message and "row 2" in e.value.problems[0].message
    pd.DataFrame({"signal": [0.0, 0.5, 0.2]}).to_csv(tmp_path / "none.csv", index=False)  # 3 values over 4 steps
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(p)
    assert "split evenly" in e.value.problems[0].message
    pd.DataFrame({"signal": [0.0, 0.5, 0.2, 0.1]}).to_csv(tmp_path / "none.csv", index=False)
    v2gsim.load_scenario(p)  # one value per 15-min step: valid
    with pytest.raises(ValueError, match="signal is for regulation"):
        GridRequest(kind="valley_fill", start="2026-07-07T10:00", hours=1, p_kw=10, signal="x.csv")


def _hub(tmp_path, requests) -> v2gsim.Results:
    raw = yaml.safe_load(find_scenario("centralized_hub").read_text())
    raw["time"]["horizon_days"] = 2
    if requests:
        raw["grid_operator"] = {"requests": requests}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    return v2gsim.run(v2gsim.load_scenario(p), baseline=False)


def _hub_kw(r) -> pd.Series:
    s = r.sites
    return s[s["site_id"].astype(str) == "lianhua_hub"].set_index("time")["p_kw"]


def test_centralized_plans_a_valley_fill(tmp_path):
    fill = {"id": "fill", "kind": "valley_fill", "start": "2026-07-07T04:00", "hours": 1, "p_kw": 300, "notice_h": 12,
            "price_cny_per_kwh": 1.0, "to": ["centralized"], "site": "lianhua_hub"}
    without, with_ = _hub(tmp_path, []), _hub(tmp_path, [fill])
    w = slice("2026-07-07 04:00", "2026-07-07 04:45")
    before, after = _hub_kw(without)[w].to_numpy(), _hub_kw(with_)[w].to_numpy()
    assert after.sum() > before.sum() + 100.0  # the floor pulls charging into the window
    s = with_.extra["grid_settlement"].iloc[0]
    assert s["kind"] == "valley_fill" and s["delivered_kwh"] > 0
    assert s["paid_cny"] == pytest.approx(min(s["delivered_kwh"], 1.2 * s["asked_kwh"]) * 1.0)
    check_ledger(with_)
    assert actor_money(with_.ledger)["net_cny"].sum() == pytest.approx(0.0, abs=1e-6)


def test_a_regulation_day_with_a_signal(tmp_path):
    n = 8 * 900  # 2 h at 1 s
    sig = 0.8 * np.sin(np.arange(n) / 60.0)
    pd.DataFrame({"signal": sig}).to_csv(tmp_path / "fm.csv", index=False)
    req = {"id": "fm", "kind": "regulation", "start": "2026-07-07T10:00", "hours": 2, "p_kw": 200, "notice_h": 12,
           "capacity_price_cny_per_kw": 1.0, "mileage_price_cny_per_mw": 10.0, "to": ["centralized"], "signal": "fm.csv"}
    r = _hub(tmp_path, [req])
    s = r.extra["grid_settlement"].iloc[0]
    assert 0.0 <= s["availability"] <= 1.0
    assert s["capacity_cny"] == pytest.approx(1.0 * 200 * s["availability"] if s["availability"] >= 0.8 else 0.0)
    if s["availability"] == 1.0:  # fully available: mileage = p x sum |d signal|
        assert s["mileage_mw"] == pytest.approx(0.2 * np.abs(np.diff(sig)).sum())
    assert s["mileage_paid_cny"] == pytest.approx(10.0 * s["mileage_mw"])
    assert r.kpis["grid_mileage_cny"] == pytest.approx(s["mileage_paid_cny"])
    led = r.ledger
    m = led[led["reason"].astype(str) == "mileage_payment"]
    assert m["amount_cny"].sum() == pytest.approx(s["mileage_paid_cny"]) and (m["payer"].astype(str) == "grid_company").all()
    check_ledger(r)
    # the fleet follows it: the hub's load differs from a run without the signal in the window
    req.pop("signal")
    plain = _hub(tmp_path, [req])
    w = slice("2026-07-07 10:00", "2026-07-07 11:45")
    assert not np.allclose(_hub_kw(r)[w].to_numpy(), _hub_kw(plain)[w].to_numpy())
    assert plain.extra["grid_settlement"]["mileage_mw"].iloc[0] == pytest.approx(
        MILEAGE_PER_MW_H * 0.2 * 2.0 * plain.extra["grid_settlement"]["availability"].iloc[0])
