"""Grid requests in one schema (v2gsim.market.events): notice, old keys = new keys, bad input."""

from __future__ import annotations

import copy

import mesa
import numpy as np
import pandas as pd
import pytest
import yaml

import v2gsim
from v2gsim.errors import ScenarioError
from v2gsim.agents.grid_operator import GridOperator
from v2gsim.market.events import GridRequest, issue, request_windows, scenario_requests
from v2gsim.model import V2GModel
from v2gsim.scenario import find_scenario


def _raw(name: str) -> dict:
    return yaml.safe_load(find_scenario(name).read_text())


def _write(tmp_path, raw: dict, name: str = "s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    return p


# --------------------------------------------------------------------------- on the clock


def test_windows_and_visibility_on_the_clock():
    times = pd.date_range("2026-07-06", periods=96 * 2, freq="15min")
    r = GridRequest(kind="discharge_call", start="2026-07-06T18:00", hours=2, p_kw=100, notice_h=3)
    assert request_windows(times, r) == ((72, 80),)
    (q,) = issue([r], times, 0.25, ["centralized"])
    assert q.visible_step == 72 - 12 and q.ranks == {"centralized": 0}
    # end instead of hours; a daily request gives every day the clock touches
    d = GridRequest(kind="peak_cut", start="2026-07-05T18:00", end="2026-07-05T19:00", p_kw=10, daily=True, notice_h=None)
    assert request_windows(times, d) == ((72, 76), (168, 172))
    # outside the clock: never issued
    late = GridRequest(kind="discharge_call", start="2026-07-09T18:00", hours=1)
    assert issue([late], times, 0.25, ["x"]) == ()


def test_grid_operator_publishes_a_request_only_after_its_notice():
    times = pd.date_range("2026-07-06", periods=96, freq="15min")
    reqs = [GridRequest(kind="discharge_call", start="2026-07-06T18:00", hours=1, notice_h=2),
            GridRequest(kind="peak_cut", start="2026-07-06T12:00", hours=1, p_kw=5, notice_h=None, to=["b"])]
    issued = issue(reqs, times, 0.25, ["a", "b"])
    go = GridOperator(mesa.Model(), issued)
    seen = [tuple(q.number for q in go.visible(s)) for s in range(96)]
    assert seen[0] == (1,)  # known before the run
    assert seen[63] == (1,) and seen[64] == (1, 0)  # 18:00 less 2 h is step 64
    assert issued[0].addresses("a") and issued[0].addresses("b") and not issued[1].addresses("a")
    assert issued[1].ranks == {"b": 1}  # second request addressed to b


def test_a_strategy_does_not_see_a_request_before_its_notice(tmp_path):
    raw = _raw("centralized_hub")
    raw["time"]["horizon_days"] = 1
    raw["business_models"][0].pop("requests")
    raw["grid_operator"] = {"requests": [{"kind": "discharge_call", "start": "2026-07-06T19:00", "hours": 1, "p_kw": 300,
                                          "notice_h": 4, "to": ["centralized"]}]}
    sc = v2gsim.load_scenario(_write(tmp_path, raw))
    m = V2GModel(sc)
    st = m.aggregators[0].strategy
    seen = []
    decide = st.decide

    def spy(obs):
        seen.append((obs.step, len(obs.requests), [w[:2] for w in st._windows]))
        return decide(obs)

    st.decide = spy
    m.run()
    start = int(np.searchsorted(m.clock.values, np.datetime64("2026-07-06T19:00")))
    visible = start - 16  # 4 h at 15 min
    for step, n, windows in seen:
        assert n == (1 if step >= visible else 0), step
    # once visible, its window is planned for: the plan after it knows the window
    after = [w for step, _, w in seen if step > visible]
    assert after and all(w == [(start, start + 4)] for w in after)
    # the uncontrolled home piles are not addressed
    assert all(len(o.requests) == 0 for o in [m.aggregators[1].observation(m.signals)])


# --------------------------------------------------------------------------- old keys = new keys


def _moved_to_grid_operator(raw: dict) -> dict:
    """mixed_city with every business model's own request keys moved to grid_operator.requests."""
    raw = copy.deepcopy(raw)
    bms = raw["business_models"]
    reqs = []
    for bm in bms:
        for r in bm.pop("requests", []) or []:  # centralized
            reqs.append({"kind": "peak_cut" if r["kind"] == "peak_shaving" else "discharge_call", "start": r["start"],
                         "hours": r["hours"], "p_kw": r["p_kw"], "daily": r.get("daily", False), "notice_h": None,
                         "to": ["centralized"], "settlement": "operator"})
        for r in bm.pop("invitations", []) or []:  # distributed
            reqs.append({"kind": "discharge_call", "start": r["start"], "hours": r["hours"], "e_kwh": r.get("target_kwh"),
                         "notice_h": r.get("announced_h_ahead", 24), "price_cny_per_kwh": r["reward_cny_per_kwh"],
                         "price_cap_cny_per_kwh": r.get("max_reward_cny_per_kwh"), "to": ["distributed"], "settlement": "operator"})
        for r in bm.pop("discharge_requests", []) or []:  # battery_swap, one station
            reqs.append({"kind": "discharge_call", "start": r["start"], "hours": r["hours"], "notice_h": None,
                         "price_cny_per_kwh": r["reward_cny_per_kwh"], "to": ["battery_swap"], "settlement": "operator"})
    raw["grid_operator"] = {"requests": reqs}
    return raw


def test_old_keys_and_the_grid_operator_give_identical_runs(tmp_path):
    raw = _raw("mixed_city")
    raw["time"]["horizon_days"] = 3
    old = v2gsim.load_scenario(_write(tmp_path, raw, "old.yaml"))
    new = v2gsim.load_scenario(_write(tmp_path, _moved_to_grid_operator(raw), "new.yaml"))
    assert not any(getattr(bm, k, None) for bm in new.business_models for k in ("requests", "invitations", "discharge_requests"))
    assert len(scenario_requests(old)) == len(scenario_requests(new)) == 3
    a, b = v2gsim.run(old), v2gsim.run(new)
    skip = ("wall_time_s", "solve_time_s")
    ka = {k: v for k, v in a.kpis.items() if not k.endswith(skip)}
    kb = {k: v for k, v in b.kpis.items() if not k.endswith(skip)}
    assert ka.keys() == kb.keys()
    for k in ka:
        assert ka[k] == pytest.approx(kb[k], rel=0, abs=0, nan_ok=True), k
    pd.testing.assert_frame_equal(a.system, b.system)
    pd.testing.assert_frame_equal(a.ledger, b.ledger)
    ra, rb = a.extra["operator_requests"], b.extra["operator_requests"]
    pd.testing.assert_frame_equal(ra.drop(columns=["request", "name"]), rb.drop(columns=["request", "name"]))
    # the requests moved to the grid operator are left out of the like-for-like reference, like the old keys
    assert b.kpis["reference_peak_kw"] == a.kpis["reference_peak_kw"]


# --------------------------------------------------------------------------- bad input


def _problems(tmp_path, requests) -> list:
    raw = _raw("mixed_city")
    raw["grid_operator"] = {"requests": requests}
    with pytest.raises(ScenarioError) as e:
        v2gsim.load_scenario(_write(tmp_path, raw))
    return e.value.problems


def test_a_request_to_an_unknown_operator_names_the_path_line_and_fix(tmp_path):
    (p,) = _problems(tmp_path, [{"kind": "discharge_call", "start": "2026-07-08T18:00", "hours": 1, "to": ["centralised"]}])
    assert p.path == "grid_operator.requests[0].to[0]" and "centralised" in p.message
    assert "centralized" in p.hint and p.line is not None


def test_bad_windows_and_targets_are_refused(tmp_path):
    probs = _problems(tmp_path, [
        {"kind": "discharge_call", "start": "2026-07-08T18:00", "hours": 1, "end": "2026-07-08T19:00"},
        {"kind": "peak_cut", "start": "2026-07-08T18:00", "hours": 1},
        {"kind": "discharge_call", "start": "2026-07-08T18:00", "hours": -1},
        {"kind": "peak_shave", "start": "2026-07-08T18:00", "hours": 1},
        {"kind": "discharge_call", "start": "2026-07-08T18:00", "hours": 1, "price_cny_per_kwh": 4, "price_cap_cny_per_kwh": 2},
    ])
    text = "\n".join(str(p) for p in probs)
    where = {p.path.removeprefix("grid_operator.").split(".")[0] for p in probs}
    assert {f"requests[{i}]" for i in range(5)} <= where, text
    assert "hours or as end" in text and "needs p_kw" in text and "price_cap_cny_per_kwh" in text
    assert all(p.line is not None for p in probs)


def test_a_site_the_addressed_operator_does_not_control_is_refused(tmp_path):
    probs = _problems(tmp_path, [
        {"kind": "discharge_call", "start": "2026-07-08T18:00", "hours": 1, "site": "estate", "to": ["centralized"]},
        {"kind": "discharge_call", "start": "2026-07-08T18:00", "hours": 1, "site": "nowhere"},
        {"id": "x", "kind": "discharge_call", "start": "2026-07-08T18:00", "hours": 1},
        {"id": "x", "kind": "discharge_call", "start": "2026-07-09T18:00", "hours": 1},
    ])
    by_path = {p.path: p for p in probs}
    assert "not controlled by the operators" in by_path["grid_operator.requests[0].site"].message
    assert "not in sites" in by_path["grid_operator.requests[1].site"].message
    assert "duplicate request id" in by_path["grid_operator.requests[3].id"].message
