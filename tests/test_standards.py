"""Standards (v2gsim.standards): connectors and bidirectional protocols of vehicles and chargers.

Hand-built tables checked entry by entry, the draw of a charger type, the stated mix of a
group, runs where only the protocol differs, and the validation messages with their YAML lines."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gsim.errors import ScenarioError
from v2gsim.model import V2GModel
from v2gsim.scenario import load_scenario
from v2gsim.scenario.schema import Scenario
from v2gsim.standards.compat import ALL_BITS, StandardsTable, assign_classes, build_table

V2G_CAR = {"name": "v2g car", "capacity_kwh": 50, "consumption_kwh_per_km": 0.15, "p_ac_max_kw": 7, "p_dc_max_kw": 60,
           "bidirectional": True}

HUB = {"id": "hub", "kind": "public", "p_max_kw": 60, "chargers": 4, "standards": [
    {"share": 0.5, "connectors": ["gbt_dc"], "v2g": ["gbt_18487_4"]},
    {"share": 0.25, "connectors": ["chaoji", "gbt_dc"], "v2g": ["chaoji"]},
    {"share": 0.25, "connectors": ["gbt_dc"]},
]}


def _scenario(sites, population, **extra) -> Scenario:
    return Scenario.model_validate({
        "name": "standards test", "seed": 3,
        "time": {"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 1, "warmup_days": 0},
        "feeder": {"transformer_kva": 3000, "households": 10}, "tariff": {"flat_cny_per_kwh": 0.5},
        "sites": sites, "population": population, **extra})


def _group(standards=None, count=4, vehicle=V2G_CAR, **kw):
    g = {"archetype": "ride_hailing", "count": count, "vehicle": vehicle, "public_site": "hub", **kw}
    if standards is not None:
        g["standards"] = standards
    return g


def test_masks_of_a_hand_built_scenario():
    sc = _scenario([HUB, {"id": "homes", "kind": "home", "p_max_kw": 7, "bidirectional_share": 0.3}], [
        _group([{"share": 1, "inlets": ["gbt_ac", "gbt_dc"], "v2g": ["gbt_18487_4"]}]),  # national standard
        _group([{"share": 1, "inlets": ["chademo"], "v2g": ["chademo"]}]),             # an import
        _group(None),                                                                  # no standards: fits all
        _group([{"share": 1, "inlets": ["gbt_dc", "chaoji"], "v2g": ["chaoji"]}]),
        _group(None, vehicle="byd_dolphin_44"),                                        # not bidirectional
    ])
    t = build_table(sc)
    hub = t.site_type[0, :3]
    assert t.site_type[0].tolist() == [0, 1, 2] and t.site_share[0].tolist() == [0.5, 0.25, 0.25]
    # the legacy home site: bidirectional with its share, charge-only with the rest
    assert t.site_type[1].tolist() == [3, 4, -1] and t.site_share[1] == pytest.approx([0.3, 0.7, 0])  # padded
    assert t.charge_ok[:, hub].tolist() == [[True] * 3, [False] * 3, [True] * 3, [True] * 3, [True] * 3]
    assert t.discharge_ok[:, hub].tolist() == [
        [True, False, False],   # GB/T 18487.4 car: only the GB/T 18487.4 guns
        [False, False, False],  # no common connector: nothing
        [True, True, False],    # no standards stated: every bidirectional gun
        [False, True, False],   # ChaoJi car: the ChaoJi gun
        [False, False, False],  # a car that cannot discharge
    ]
    # a site without standards fits every car and speaks every protocol on its bidirectional share
    assert t.discharge_ok[:, 3].tolist() == [True, True, True, True, False]
    assert not t.discharge_ok[:, 4].any()
    assert t.uses_standards and t.type_v2g[hub].tolist() == [True, True, False]


def test_a_charger_type_is_drawn_by_share_among_the_types_that_fit():
    sc = _scenario([HUB], [_group([{"share": 1, "inlets": ["gbt_dc"], "v2g": ["gbt_18487_4"]}]),
                           _group([{"share": 1, "inlets": ["chaoji"], "v2g": ["chaoji"]}]),
                           _group([{"share": 1, "inlets": ["chademo"]}])])
    t = build_table(sc)
    u = np.array([0.1, 0.6, 0.9, 0.1, 0.9, 0.5])
    cls = np.array([0, 0, 0, 1, 1, 2])
    # GB/T car: cumulative shares 0.5 / 0.75 / 1; ChaoJi car: only type 1 fits; CHAdeMO car: none
    assert t.draw_type(cls, np.zeros(6, np.int64), u).tolist() == [0, 1, 2, 1, 1, -1]
    assert t.fits(cls, np.zeros(6, np.int64)).tolist() == [True] * 5 + [False]
    assert t.can_discharge(cls, np.array([0, 1, 2, 1, 1, -1])).tolist() == [True, False, False, True, True, False]


def test_without_standards_the_draw_is_the_old_bidirectional_share_draw():
    rng = np.random.default_rng(5)
    shares = rng.uniform(0, 1, 50).round(2)
    sc = _scenario([{"id": f"s{i}", "kind": "public", "p_max_kw": 22, "chargers": 2, "bidirectional_share": float(s)}
                    for i, s in enumerate(shares)], [{**_group(None), "public_site": "s0"}])
    t = build_table(sc)
    site = rng.integers(0, 50, 10_000)
    u = rng.random(10_000)
    typ = t.draw_type(np.zeros(10_000, np.int64), site, u)
    assert np.array_equal(t.can_discharge(np.zeros(10_000, np.int64), typ), u < shares[site])
    assert not t.uses_standards


def test_a_group_gets_its_stated_mix_exactly():
    # 7 cars at 0.5 / 0.3 / 0.2: 3.5, 2.1, 1.4 -> 3, 2, 1 and the largest remainder (0.5) takes the last car
    got = assign_classes(7, np.array([0.5, 0.3, 0.2]), np.random.default_rng(0))
    assert np.bincount(got).tolist() == [4, 2, 1]
    sc = _scenario([HUB], [_group([{"share": 0.75, "inlets": ["gbt_dc"], "v2g": ["gbt_18487_4"]},
                                   {"share": 0.25, "inlets": ["gbt_dc"], "v2g": ["vendor_x"]}], count=40)])
    m = V2GModel(sc)
    assert np.bincount(m.fleet.std_class).tolist() == [30, 10]


@settings(max_examples=60, deadline=None)
@given(inlet=st.lists(st.integers(1, 31), min_size=1, max_size=6), conn=st.lists(st.integers(1, 31), min_size=1, max_size=5),
       v2g_c=st.data(), seed=st.integers(0, 1000))
def test_discharge_needs_charge_and_draws_only_fitting_types(inlet, conn, v2g_c, seed):
    n_t = len(conn)
    proto_c = np.array(v2g_c.draw(st.lists(st.integers(0, 7), min_size=len(inlet), max_size=len(inlet))), np.int64)
    proto_t = np.array(v2g_c.draw(st.lists(st.integers(0, 7), min_size=n_t, max_size=n_t)), np.int64)
    share = np.array(v2g_c.draw(st.lists(st.floats(0.01, 1), min_size=n_t, max_size=n_t)))
    inlet, conn = np.array(inlet, np.int64), np.array(conn, np.int64)
    charge = (inlet[:, None] & conn[None, :]) != 0
    t = StandardsTable(np.arange(n_t)[None, :], share[None, :] / share.sum(), charge,
                       charge & ((proto_c[:, None] & proto_t[None, :]) != 0), proto_t != 0, (), True)
    assert not (t.discharge_ok & ~t.charge_ok).any()
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, inlet.size, 200)
    typ = t.draw_type(cls, np.zeros(200, np.int64), rng.random(200))
    fits = t.fits(cls, np.zeros(200, np.int64))
    assert np.array_equal(typ >= 0, fits)
    assert t.charge_ok[cls[fits], typ[fits]].all()
    assert ALL_BITS & 0b1011 == 0b1011


def _hub_run(hub_v2g: list[str], car_v2g: list[str], inlets=("gbt_ac", "gbt_dc")):
    hub = {"id": "hub", "kind": "public", "p_max_kw": 60, "chargers": 20, "p_limit_kw": 1200,
           "standards": [{"share": 1.0, "connectors": ["gbt_dc"], "v2g": hub_v2g}]}
    sc = _scenario([hub], [_group([{"share": 1.0, "inlets": list(inlets), "v2g": car_v2g}], count=30,
                                  public_charge_below_soc=1.0, soc_initial_min=0.8, soc_initial_max=0.9)],
                   business_models=[{"kind": "centralized", "sites": ["hub"], "need": "min_departure",
                                     "requests": [{"kind": "discharge_call", "start": "2026-07-06T10:00", "hours": 8, "p_kw": 1200}]}])
    return V2GModel(sc).run()


def test_only_a_common_protocol_discharges():
    same = _hub_run(["gbt_18487_4"], ["gbt_18487_4"])
    other = _hub_run(["vendor_a"], ["gbt_18487_4"])
    sys_same, sys_other = same.system, other.system
    # the same cars, arrivals and guns: they plug in alike, only the protocol differs
    assert (sys_same["n_plugged"] > 0).any()
    assert sys_same["v2g_discharge_kw"].sum() > 0 and sys_same["v2g_plugged_kw"].max() > 0
    assert sys_other["v2g_discharge_kw"].sum() == 0 and sys_other["v2g_plugged_kw"].sum() == 0
    assert sys_other["v2g_blocked_kw"].max() > 0 and sys_same["v2g_blocked_kw"].sum() == 0
    assert other.kpis["standards_plugins_blocked"] == other.kpis["standards_plugins_shared"] > 0
    # the plugged V2G capacity is the plug power of the cars plugged where they can discharge
    assert (sys_same["v2g_plugged_kw"] <= 60 * sys_same["n_plugged"] + 1e-9).all()


def test_no_common_connector_means_no_charging_there():
    res = _hub_run(["gbt_18487_4"], ["chademo"], inlets=("chademo",))
    assert res.system["n_plugged"].max() == 0 and res.system["ev_charge_kw"].sum() == 0
    assert res.kpis["standards_incompatible_arrivals"] > 0
    assert res.vehicles["no_charger_events"].sum() >= res.kpis["standards_incompatible_arrivals"]


def test_scenarios_without_standards_record_no_standards_columns():
    sc = _scenario([{"id": "hub", "kind": "public", "p_max_kw": 60, "chargers": 4, "bidirectional_share": 0.5}], [_group(None)])
    res = V2GModel(sc).run()
    assert "v2g_plugged_kw" not in res.system and "v2g_plugged_kw_mean" not in res.kpis


BAD = """\
name: bad standards
time: {start: 2026-07-06T00:00, horizon_days: 1}
feeder: {transformer_kva: 500, households: 10}
sites:
  - id: hub
    kind: public
    p_max_kw: 60
    chargers: 4
    bidirectional_share: 0.5
    standards:
      - {share: 0.5, connectors: [gbt_dc], v2g: [gbt_18487_4]}
      - {share: 0.3, connectors: [gbt_ac]}
  - id: homes
    kind: home
    p_max_kw: 7
    standards:
      - {share: 1.0, connectors: [gbt_ac], v2g: [gbt_18487_4]}
population:
  - archetype: private_commuter
    count: 5
    vehicle: byd_dolphin_44
    home_site: homes
    public_site: hub
    standards:
      - {share: 0.5, inlets: [gbt_ac, gbt_dc], v2g: [gbt_18487_4]}
      - {share: 0.5, inlets: [chademo]}
"""


def test_validation_names_path_line_and_fix(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    # a share given beside standards is a problem of the file as written, reported first
    (p,) = e.value.problems
    assert p.path == "sites[0].bidirectional_share" and p.line == 9 and "drop bidirectional_share" in p.hint
    f.write_text(BAD.replace("    bidirectional_share: 0.5\n", ""))
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    got = {p.path: p for p in e.value.problems}
    assert set(got) == {"sites[0].standards", "sites[0].standards[1].connectors",
                        "population[0].standards[0].v2g", "population[0].standards[1].inlets"}, got
    assert "add up to 0.8" in got["sites[0].standards"].message and "add up to 1" in got["sites[0].standards"].hint
    assert got["sites[0].standards"].line == 9
    assert "no DC connector" in got["sites[0].standards[1].connectors"].message and got["sites[0].standards[1].connectors"].line == 11
    assert "not bidirectional" in got["population[0].standards[0].v2g"].message
    assert "fit none of the piles at home site 'homes'" in got["population[0].standards[1].inlets"].message


def test_unknown_names_are_refused_with_the_known_ones(tmp_path):
    f = tmp_path / "typo.yaml"
    f.write_text(BAD.replace("    bidirectional_share: 0.5\n", "").replace("[gbt_dc], v2g: [gbt_18487_4]", "[gbt-dc], v2g: [gbt18487]"))
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    text = str(e.value)
    assert "unknown connector 'gbt-dc'" in text and "gbt_dc" in text
    assert "unknown bidirectional protocol 'gbt18487'" in text and "vendor_<name>" in text


@pytest.fixture(scope="module")
def pair():
    from v2gsim.standards.pair import run_standards_pair

    return run_standards_pair(overrides={"time.horizon_days": 2})


def test_unified_standards_reach_more_v2g_capacity_than_fragmented(pair):
    runs, t = pair
    frag, uni = t.loc["fragmented"], t.loc["unified"]
    # the same hub, drivers and arrivals; only the protocols differ (docs/business_models.md "Standards")
    assert uni["v2g_plugged_kw_mean"] > 2 * frag["v2g_plugged_kw_mean"] > 0
    assert uni["v2g_plugged_kw_in_calls"] > 2 * frag["v2g_plugged_kw_in_calls"]
    assert uni["v2g_energy_kwh"] > 1.5 * frag["v2g_energy_kwh"] > 0
    assert uni["v2g_in_calls_kwh"] > 2 * frag["v2g_in_calls_kwh"]
    assert uni["plugins_blocked_share"] == 0 < frag["plugins_blocked_share"]
    assert uni["v2g_blocked_kw_mean"] == 0 < frag["v2g_blocked_kw_mean"]
    assert t.loc["unified / fragmented", "v2g_plugged_kw_mean"] == pytest.approx(uni["v2g_plugged_kw_mean"] / frag["v2g_plugged_kw_mean"])
    # never more V2G capacity plugged than the hub's 36 guns x 60 kW
    for r in runs.values():
        assert r.system["v2g_plugged_kw"].max() <= 2160 + 1e-9


def test_the_pair_differs_only_in_standards(pair):
    a, b = (load_scenario(n) for n in ("standards_fragmented", "standards_unified"))
    da, db = a.model_dump(), b.model_dump()
    for d in (da, db):
        for s in d["sites"]:
            s.pop("standards")
        for g in d["population"]:
            g.pop("standards")
        d.pop("name"), d.pop("description")
    assert da == db
    # the CHAdeMO-only imports are the same cars on both sides (first entry, same share)
    ma, mb = V2GModel(a), V2GModel(b)
    imports = [np.flatnonzero(~m.standards.charge_ok[m.fleet.std_class, m.standards.site_type[0, 0]]) for m in (ma, mb)]
    assert imports[0].size == 2 and np.array_equal(*imports)


def test_the_share_of_chargers_that_can_discharge_counts_the_types_with_a_protocol():
    from v2gsim.standards.compat import v2g_share

    sc = _scenario([HUB, {"id": "p", "kind": "public", "p_max_kw": 22, "chargers": 2, "bidirectional_share": 0.4}], [_group(None)])
    assert v2g_share(sc.sites[0]) == pytest.approx(0.75) and v2g_share(sc.sites[1]) == 0.4
    assert v2g_share(sc.model_dump()["sites"][0]) == pytest.approx(0.75)  # the stored scenario (report page)
    assert V2GModel(sc).sites.bidirectional_share.tolist() == pytest.approx([0.75, 0.4])


def test_pair_plot_draws_each_side_and_the_blocked_capacity(pair):
    from v2gsim.plotting import plot_standards_pair

    runs, _ = pair
    fig = plot_standards_pair(runs)
    labels = [ln.get_label() for ln in fig.axes[0].lines]
    # fragmented: plugged and blocked; unified: plugged only (nothing blocked)
    assert labels == ["fragmented: V2G capacity plugged", "fragmented: blocked by the protocol", "unified: V2G capacity plugged"]
    assert fig.axes[0].lines[2].get_ydata().max() == pytest.approx(runs["unified"].system["v2g_plugged_kw"].max())


def test_a_standards_scenario_survives_its_own_dump_and_pickle():
    # sweeps send scenarios to workers as dumps; reference runs copy them: the dump holds the
    # default bidirectional_share beside standards, which only a file as written may not
    import pickle

    sc = load_scenario("standards_fragmented", {"time.horizon_days": 1})
    again = Scenario.model_validate(sc.model_dump())
    assert again == sc and pickle.loads(pickle.dumps(sc)) == sc
    assert np.array_equal(V2GModel(again).fleet.std_class, V2GModel(sc).fleet.std_class)
