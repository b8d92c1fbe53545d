"""Chargers provisioned from data (issue 15 item 2): presets against their sources, the sizing
rule on hand-computed cases, errors, and every bundled scenario serving its drivers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gsim.data.provision import provision_presets, provisioned
from v2gsim.errors import ScenarioError
from v2gsim.scenario import Scenario, bundled_scenarios, load_scenario

GOLDEN = Path(__file__).parent / "golden"


def test_national_preset_reproduces_nea_ratios():
    # NEA, end Sept 2024: one pile per 2.46 NEVs, one public pile per ~8.4 (DOMAIN.md)
    p = provision_presets()["cn_national_2024q3"]
    assert p.vehicles / (p.private_piles + p.public_chargers) == pytest.approx(2.46, abs=0.005)
    assert 1 / p.public_chargers_per_ev == pytest.approx(8.4, abs=0.05)
    assert p.home_pile_share == pytest.approx(8.1 / 28.09)


@pytest.mark.parametrize("name", sorted(provision_presets()))
def test_every_preset_matches_what_its_source_reports(name):
    p = provision_presets()[name]
    assert p.source and "[" in p.source  # cited with a confidence tag
    assert 0 < p.home_pile_share <= 1 and p.public_chargers_per_ev > 0
    if p.reported_vehicles_per_pile is not None:
        assert p.vehicles / (p.private_piles + p.public_chargers) == pytest.approx(p.reported_vehicles_per_pile, rel=0.01)
    if p.reported_vehicles_per_public_charger is not None:
        assert 1 / p.public_chargers_per_ev == pytest.approx(p.reported_vehicles_per_public_charger, rel=0.01)


def _raw(**chargers):
    return {
        "name": "t", "time": {"start": "2026-07-06T00:00", "horizon_days": 1},
        "feeder": {"transformer_kva": 630, "households": 100},
        "chargers": {"provision": "cn_national_2024q3", **chargers},
        "sites": [
            {"id": "home", "kind": "home", "p_max_kw": 7},
            {"id": "dc", "kind": "public", "p_max_kw": 60},
            {"id": "dc_own", "kind": "public", "p_max_kw": 60, "chargers": 3},
            {"id": "depot", "kind": "depot", "p_max_kw": 60, "chargers": 2},
        ],
        "population": [
            {"archetype": "private_commuter", "count": 60, "vehicle": "byd_dolphin_44", "home_site": "home", "public_site": "dc"},
            {"archetype": "private_commuter", "count": 44, "vehicle": "byd_dolphin_44", "home_site": "home",
             "home_charger_share": 0.9, "public_site": "dc"},
            {"archetype": "ride_hailing", "count": 10, "vehicle": "roewe_ei5_52", "home_site": "home", "public_site": "dc_own"},
            {"archetype": "city_bus", "count": 2, "vehicle": "city_bus_350", "home_site": "depot"},
        ],
    }


def test_sizing_by_hand():
    sc = Scenario.model_validate(_raw())
    chargers = {s.id: s.chargers for s in sc.sites}
    # 104 drivers name dc: ceil(104 x 3.33 / 28.09) = ceil(12.33) = 13; explicit counts win
    assert chargers == {"home": None, "dc": 13, "dc_own": 3, "depot": 2}
    shares = [g.home_charger_share for g in sc.population]
    # the preset's share where the group gives none and lives at a home site; explicit wins;
    # a depot base keeps the default (the published piles are private home piles)
    assert shares == [pytest.approx(8.1 / 28.09), 0.9, pytest.approx(8.1 / 28.09), 1.0]


def test_own_figures_replace_the_preset():
    sc = Scenario.model_validate(_raw(home_pile_share=0.5, public_chargers_per_ev=0.25))
    assert {s.id: s.chargers for s in sc.sites}["dc"] == 26  # ceil(104 x 0.25)
    assert sc.population[0].home_charger_share == 0.5


def test_without_provision_public_sites_need_chargers():
    raw = _raw()
    del raw["chargers"]
    with pytest.raises(ScenarioError) as e:
        load_scenario_from(raw)
    assert any(p.path == "sites[1].chargers" and "provision" in (p.hint or "") for p in e.value.problems)


def load_scenario_from(raw, tmp=None):
    from v2gsim.scenario import loader, validate_scenario

    return validate_scenario(raw, loader.LineMap())


def test_unknown_preset_and_unsized_site_are_named():
    raw = _raw()
    raw["chargers"]["provision"] = "cn_natonal_2024q3"
    with pytest.raises(ScenarioError) as e:
        load_scenario_from(raw)
    msgs = {p.path: p for p in e.value.problems}
    assert "did you mean 'cn_national_2024q3'" in msgs["chargers.provision"].message
    raw = _raw()
    raw["population"][0]["public_site"] = raw["population"][1]["public_site"] = None
    with pytest.raises(ScenarioError) as e:
        load_scenario_from(raw)
    p = {p.path: p for p in e.value.problems}["sites[1].chargers"]
    assert "none does" in p.hint


def test_provision_leaves_the_input_alone_and_dumps_revalidate_the_same():
    raw = _raw()
    before = json.dumps(raw, sort_keys=True)
    sc = Scenario.model_validate(raw)
    assert json.dumps(raw, sort_keys=True) == before
    assert Scenario.model_validate(sc.model_dump()) == sc


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(1, 200_000), min_size=1, max_size=4), per_ev=st.floats(0.001, 2.0))
def test_public_sites_get_at_least_their_share_and_less_than_one_more(counts, per_ev):
    raw = {"chargers": {"provision": "cn_national_2024q3", "public_chargers_per_ev": per_ev},
           "sites": [{"id": "pub", "kind": "public", "p_max_kw": 60}],
           "population": [{"count": c, "public_site": "pub"} for c in counts]}
    n = provisioned(raw)["sites"][0]["chargers"]
    need = per_ev * sum(counts)
    assert n >= 1 and n >= need - 1e-6 and (n < need + 1 or n == 1)


# Every bundled scenario serves its drivers: cancelled and stranded trips at most 0.1 % of trips.
# Read from the golden KPIs, which tests/test_golden.py checks equal a fresh run of each scenario
# at its golden horizon (tests/golden/make_golden.py).
@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_bundled_scenario_serves_its_drivers(name):
    kpis = json.loads((GOLDEN / name / "kpis.json").read_text())
    trips = kpis["departures"]
    unserved = kpis["trips_cancelled"] + kpis["stranded_trips"]
    assert trips > 0
    assert unserved <= 0.001 * trips, f"{name}: {unserved:g} of {trips:g} trips cancelled or stranded"
    assert math.isfinite(unserved)


def test_the_docs_example_validates_and_sizes_the_gate():
    import yaml

    text = (Path(__file__).parents[1] / "docs" / "mobility.md").read_text()
    block = text.split("## Chargers provisioned from data", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    raw = {"name": "docs", "time": {"start": "2026-07-06T00:00", "horizon_days": 1},
           "feeder": {"transformer_kva": 630, "households": 300}, **yaml.safe_load(block)}
    sc = load_scenario_from(raw)
    assert {s.id: s.chargers for s in sc.sites}["gate_dc"] == math.ceil(500 * 3.33 / 28.09)  # 60
    assert sc.population[0].home_charger_share == pytest.approx(8.1 / 28.09)


@pytest.mark.slow
def test_the_city_serves_its_drivers_over_a_week_and_would_not_with_its_old_hubs():
    # At its golden horizon (one day, 1,000 EVs) nobody in the city runs short either way; a week
    # at a tenth of its size does tell: the hubs provisioned from data (783 + 404 guns at this
    # size) against the old density (400 guns per 50,000 drivers, here 80 + 40).
    import v2gsim

    small = {"time.horizon_days": 7, "feeder.solver": "capacity_only", "outputs.plots": False,
             "population.0.count": 6000, "population.1.count": 3400, "population.2.count": 600}

    def shares(extra):
        k = v2gsim.run(v2gsim.load_scenario("city_feeder", {**small, **extra})).kpis
        return (k["trips_cancelled"] + k["stranded_trips"]) / k["departures"], k["delayed_departures"] / k["departures"]

    unserved, late = shares({})
    assert unserved <= 0.001 and late <= 0.001  # measured 0 and 12 of 153,461 trips (2026-12-02)
    # With the old hubs drivers queue and detour for their charge and leave late; a trip that comes
    # due while the car is still on the road starts when it arrives (v2gsim.population.drivers), so
    # the shortage shows as late trips, no longer as cancelled ones (measured: 472 of 153,461
    # started late and 0 cancelled; 433 cancelled before trips were started late, 2026-12-02).
    unserved, late = shares({"sites.3.chargers": 80, "sites.4.chargers": 40})
    assert unserved + late > 0.001


@pytest.mark.slow
def test_a_mid_size_scenario_serves_its_drivers_at_its_full_horizon():
    # The golden KPIs see two or three days; a reviewer runs the file as shipped. mixed_city
    # (470 EVs under three operators and swap stations, 7 days) is the largest scenario that
    # runs in well under a minute (24 s on the shared 2-core machine, 2026-12-02); the full table
    # is in docs/validation.md, "Bundled scenarios at their full horizon".
    import v2gsim

    sc = v2gsim.load_scenario("mixed_city", {"outputs.plots": False})
    assert sc.time.horizon_days == 7  # the file's own horizon, not a golden one
    k = v2gsim.run(sc).kpis
    assert k["departures"] > 7000  # 7,538 measured: the week really ran
    assert k["stranded_trips"] == 0
    unserved = k["trips_cancelled"] + k["stranded_trips"]
    assert unserved <= 0.001 * k["departures"], f"{unserved:g} of {k['departures']:g} trips cancelled or stranded"
