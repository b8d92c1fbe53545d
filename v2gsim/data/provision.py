"""Chargers provisioned from data: home-pile shares and public charger counts sized to the fleet.

A scenario says ``chargers: {provision: cn_national_2024q3}`` and, before it is validated, every
population group without its own ``home_charger_share`` (whose ``home_site`` is a home site) gets
the preset's home-pile share, and every public site without its own ``chargers`` gets
``ceil(public_chargers_per_ev x vehicles of the groups naming it as public_site)``. Explicit
values always win; work and depot sites are not covered by the published counts and keep
needing ``chargers``. The presets (``charging_provision.yaml``) keep each source's counts; the
shares are computed here from them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True)
class ProvisionPreset:
    name: str
    description: str
    source: str
    vehicles: int
    private_piles: int
    public_chargers: int
    reported_vehicles_per_pile: float | None
    reported_vehicles_per_public_charger: float | None

    @property
    def home_pile_share(self) -> float:
        """Private (home) piles per vehicle: the share of drivers owning one (one pile each)."""
        return self.private_piles / self.vehicles

    @property
    def public_chargers_per_ev(self) -> float:
        return self.public_chargers / self.vehicles


@functools.cache
def provision_presets() -> dict[str, ProvisionPreset]:
    """The bundled presets (``v2gsim/data/charging_provision.yaml``), by name."""
    text = resources.files("v2gsim.data").joinpath("charging_provision.yaml").read_text()
    out = {}
    for name, d in yaml.safe_load(text).items():
        out[name] = ProvisionPreset(name, d["description"], d["source"], int(d["vehicles"]), int(d["private_piles"]),
                                    int(d["public_chargers"]), d.get("reported_vehicles_per_pile"),
                                    d.get("reported_vehicles_per_public_charger"))
    return out


def provision_figures(section: Any) -> tuple[float, float] | None:
    """(home_pile_share, public_chargers_per_ev) a raw ``chargers:`` section asks for, the
    section's own figures over its preset's; None when the section does not provision or names
    an unknown preset (validation reports that)."""
    if not isinstance(section, dict):
        return None
    name = section.get("provision")
    preset = provision_presets().get(name) if isinstance(name, str) else None
    if preset is None:
        return None
    share = section.get("home_pile_share", preset.home_pile_share)
    per_ev = section.get("public_chargers_per_ev", preset.public_chargers_per_ev)
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in (share, per_ev)):
        return None  # the section's own field is reported by validation
    return float(min(share, 1.0)), float(per_ev)


def public_site_users(raw: dict) -> dict[str, int]:
    """Vehicles of the population groups naming each site as their ``public_site``."""
    users: dict[str, int] = {}
    for g in raw.get("population") or ():
        if isinstance(g, dict) and isinstance(g.get("public_site"), str):
            count = g.get("count")
            if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                users[g["public_site"]] = users.get(g["public_site"], 0) + count
    return users


def provisioned(raw: Any) -> Any:
    """The raw scenario with what its ``chargers:`` section provisions filled in (a new dict; the
    input is not changed). Tolerant of any shape: anything it cannot read is left for validation
    to report."""
    if not isinstance(raw, dict):
        return raw
    figures = provision_figures(raw.get("chargers"))
    if figures is None:
        return raw
    share, per_ev = figures
    sites = raw.get("sites") if isinstance(raw.get("sites"), list) else []
    kinds = {s["id"]: s.get("kind") for s in sites if isinstance(s, dict) and isinstance(s.get("id"), str)}
    users = public_site_users(raw)
    new_sites = []
    for s in sites:
        if isinstance(s, dict) and s.get("kind") == "public" and s.get("chargers") is None and users.get(s.get("id"), 0):
            s = {**s, "chargers": max(1, math.ceil(per_ev * users[s["id"]] - 1e-9))}
        new_sites.append(s)
    groups = raw.get("population") if isinstance(raw.get("population"), list) else []
    new_groups = []
    for g in groups:
        if isinstance(g, dict) and "home_charger_share" not in g and kinds.get(g.get("home_site")) == "home":
            g = {**g, "home_charger_share": share}
        new_groups.append(g)
    out = dict(raw)
    if "sites" in raw and isinstance(raw["sites"], list):
        out["sites"] = new_sites
    if "population" in raw and isinstance(raw["population"], list):
        out["population"] = new_groups
    return out
