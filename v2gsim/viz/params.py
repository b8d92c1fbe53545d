"""The live app's knobs as scenario overrides.

Every knob of ``v2gsim viz`` becomes a ``dotted.path=value`` override of the chosen scenario file,
the same mechanism as ``v2gsim run --set`` (`v2gsim.load_scenario` with a mapping), and each
reset validates a new `Scenario` from the file: the app never edits a validated scenario or a
config dict at run time, so a knob that makes no sense (an EV count below the number of
population groups, a rating out of range) is reported like a bad ``--set``, with its path.

This module imports neither Mesa's visualisation nor Solara, so it is tested without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from v2gsim.errors import Problem, ScenarioError
from v2gsim.scenario import Scenario, bundled_scenarios, load_scenario

AS_IN_SCENARIO = "as in the scenario"
# what the business-model knob can turn the scenario's entries into (battery-swap entries stay:
# their stations, packs and drivers are that business model; only the others are replaced)
BUSINESS_MODELS = (AS_IN_SCENARIO, "uncontrolled", "distributed", "centralized")
# invitation / discharge-request rewards offered by the knob, CNY per kWh fed back; 4 is what
# Shenzhen paid on 15 May 2024 (DOMAIN.md, "Distributed" [A]), the other values bracket it
REWARDS_CNY_PER_KWH = (AS_IN_SCENARIO, "0", "0.5", "1", "2", "3", "4", "6", "8", "10")
DEFAULT_REWARD_CNY_PER_KWH = 4.0
# the invitation the knob adds when it turns entries into `distributed`: the evening peak of
# the run's second day (the first one when the run is a single day), 18:00-20:00 as in
# scenarios/distributed_community.yaml, announced a day ahead (DriverBehaviour's default)
INVITATION_HOUR, INVITATION_HOURS = 18, 2.0


@dataclass(frozen=True)
class Knobs:
    """What the user set. Zero (or `AS_IN_SCENARIO`) leaves the scenario's own value."""

    ev_count: int = 0
    business_model: str = AS_IN_SCENARIO
    reward: str = AS_IN_SCENARIO
    transformer_kva: int = 0


def scenario_choices(file: str | None = None) -> list[str]:
    """The scenario names the app offers: ``file`` (as given) first, then the bundled ones."""
    names = list(bundled_scenarios())
    return ([str(file)] if file else []) + [n for n in names if n != str(file)]


def split_counts(counts: list[int], total: int) -> list[int]:
    """``total`` vehicles split over groups in proportion to ``counts`` (largest remainders, ties
    to the first group), then every empty group given one vehicle from the largest (a group's
    count must be > 0). ``split_counts(counts, sum(counts)) == counts``."""
    n = len(counts)
    if total < n:
        raise ValueError(f"{total} vehicles cannot fill {n} population groups (each needs at least 1)")
    base = sum(counts)
    share = [total * c / base for c in counts]
    out = [int(s) for s in share]
    for i in sorted(range(n), key=lambda i: (-(share[i] - out[i]), i))[: total - sum(out)]:
        out[i] += 1
    for i in range(n):
        if out[i] == 0:
            out[max(range(n), key=lambda j: out[j])] -= 1
            out[i] = 1
    return out


def _invitation(sc: Scenario, reward_cny_per_kwh: float) -> dict:
    tc = sc.time
    day = 1 if tc.horizon_days >= 2 else 0
    start = pd.Timestamp(tc.start).normalize() + pd.Timedelta(days=day, hours=INVITATION_HOUR)
    # announced a day ahead, or at the start of the clock (warm-up included) when that is later
    ahead_h = min(24.0, day * 24.0 + INVITATION_HOUR + tc.warmup_days * 24.0)
    return {"start": start.strftime("%Y-%m-%dT%H:%M"), "hours": INVITATION_HOURS, "reward_cny_per_kwh": reward_cny_per_kwh,
            "announced_h_ahead": ahead_h}


def overrides(sc: Scenario, knobs: Knobs) -> dict[str, object]:
    """The ``--set`` overrides (path -> value) that apply ``knobs`` to scenario ``sc``."""
    out: dict[str, object] = {}
    if knobs.ev_count:
        counts = [g.count for g in sc.population]
        if not counts:
            raise ScenarioError([Problem("population", "the scenario has no population groups whose EV count the app could set",
                                         hint="leave the EV count at 0 (as in the scenario)")])
        try:
            new = split_counts(counts, int(knobs.ev_count))
        except ValueError as exc:
            raise ScenarioError([Problem("population", str(exc), hint=f"choose at least {len(counts)} EVs")]) from None
        out.update({f"population.{i}.count": n for i, n in enumerate(new)})
    if knobs.transformer_kva and sc.feeder.network is None:  # a network has its own transformers' ratings
        out["feeder.transformer_kva"] = float(knobs.transformer_kva)
    reward = None if knobs.reward == AS_IN_SCENARIO else float(knobs.reward)
    if knobs.business_model not in BUSINESS_MODELS:
        raise ScenarioError([Problem("business_models", f"unknown business model {knobs.business_model!r}",
                                     hint=f"choose one of {', '.join(BUSINESS_MODELS)}")])
    replaced: dict[int, dict] = {}
    for k, bm in enumerate(sc.business_models):
        if knobs.business_model != AS_IN_SCENARIO and bm.kind != "battery_swap":
            entry: dict[str, object] = {"kind": knobs.business_model}
            if bm.sites is not None:
                entry["sites"] = list(bm.sites)
            if knobs.business_model == "distributed":
                entry["invitations"] = [_invitation(sc, DEFAULT_REWARD_CNY_PER_KWH if reward is None else reward)]
            replaced[k] = entry
        elif reward is not None:
            for j, _ in enumerate(getattr(bm, "invitations", ()) or ()):  # distributed
                out[f"business_models.{k}.invitations.{j}.reward_cny_per_kwh"] = reward
            for j, _ in enumerate(getattr(bm, "discharge_requests", ()) or ()):  # battery_swap
                out[f"business_models.{k}.discharge_requests.{j}.reward_cny_per_kwh"] = reward
    if len(replaced) == len(sc.business_models):
        # the whole list: a file that leaves business_models to its default has no list to index
        out["business_models"] = list(replaced.values())
    else:
        out.update({f"business_models.{k}": e for k, e in replaced.items()})
    return out


def build_scenario(source: str | Path, knobs: Knobs = Knobs()) -> tuple[Scenario, dict[str, object]]:
    """A new validated Scenario: ``source`` (file or bundled name) with ``knobs`` applied as
    overrides; also the overrides, so the app can show them as ``--set`` arguments."""
    base = load_scenario(source)
    ov = overrides(base, knobs)
    return (load_scenario(source, ov) if ov else base), ov


def rewards_in(sc: Scenario) -> list[float]:
    """The rewards (CNY/kWh) of the scenario's invitations and discharge requests."""
    out = []
    for bm in sc.business_models:
        out += [i.reward_cny_per_kwh for i in getattr(bm, "invitations", ()) or ()]
        out += [r.reward_cny_per_kwh for r in getattr(bm, "discharge_requests", ()) or ()]
    return out
