"""KPIs for people: their unit (read off the name) and the topic they belong to."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# the unit is the name's suffix (longest first); names whose suffix is not a unit are listed
UNIT_SUFFIXES = (
    ("_pass", "1 pass / 0 fail"),  # the pilot notice's tests (v2gsim.market.compliance)
    ("_cny_per_kwh", "CNY/kWh"),
    ("_kwh", "kWh"),
    ("_kva", "kVA"),
    ("_kw", "kW"),
    ("_pct", "%"),
    ("_cny", "CNY"),
    ("_pu", "p.u."),
    ("_km", "km"),
    ("_min", "min"),
    ("_h", "h"),
    ("_s", "s"),
)
UNIT_EXCEPTIONS = {
    "swap_packs_ready_min": "packs",  # the fewest packs ready, not minutes
    "swap_packs_ready_mean": "packs",
    "wear_fec_mean": "cycles",  # full equivalent cycles
    "mean_final_soc": "0–1",
    "load_factor": "ratio",
    "peak_valley_diff_ratio": "ratio",
    "compliance_annual_discharge_extrapolated": "1 = scaled from a shorter run",
}

# the first topic whose pattern matches the start of a name takes the KPI (so wear comes before
# swap stations: swap_pack_fade_*); a KPI no pattern matches is shown under "Other", never dropped
TOPICS = (
    ("Policy compliance", r"compliance_"),
    ("Tariff bills", r"demand_charge|demand_billed|capacity_charge"),
    ("Battery wear", r"wear_|packs_retired|pack_replacement|second_life_|swap_pack_"),
    ("Swap stations", r"swaps?_"),
    ("Network", r"voltage_|undervoltage|overvoltage|min_voltage|max_voltage|max_line|line_|losses|nonconverged|hosting_capacity|energy_pv"),
    ("Load and transformer", r"peak|base_peak|ev_peak|uncontrolled_peak|load_factor|max_transformer|transformer_|energy_base"),
    ("Energy and driving", r"n_vehicles|energy_charged|v2g_energy|conversion_losses|energy_driven|distance"),
    ("Service to drivers", r"unmet|stranded|departures|no_charger|sessions|session_|energy_pending|mean_final_soc"),
    ("Money", r".*_cny$"),
)
OTHER = "Other"
# the order topics are shown in
SHOWN = ("Load and transformer", "Network", "Energy and driving", "Service to drivers", "Money", "Tariff bills",
         "Policy compliance", "Swap stations", "Battery wear", OTHER)


def unit(name: str) -> str:
    """The unit of a KPI from its name (``peak_load_kw`` -> ``kW``); ``""`` for counts."""
    if name in UNIT_EXCEPTIONS:
        return UNIT_EXCEPTIONS[name]
    for suffix, u in UNIT_SUFFIXES:
        if name.endswith(suffix):
            return u
    return ""


def topic(name: str) -> str:
    for title, pattern in TOPICS:
        if re.match(pattern, name):
            return title
    return OTHER


def grouped(names: Iterable[str]) -> dict[str, list[str]]:
    """Names by topic, topics in `SHOWN` order, names in their given order."""
    out: dict[str, list[str]] = {title: [] for title in SHOWN}
    for n in names:
        out[topic(n)].append(n)
    return {t: ns for t, ns in out.items() if ns}


def owned_by(name: str, prefix: str) -> bool:
    """Whether KPI ``name`` is one the business model with KPI prefix ``prefix`` reported; the
    run's own comparison with its reference (``reference_peak_kw``, ...) is not."""
    from v2gsim.runner import REFERENCE_KPIS

    return name.startswith(prefix + "_") and name not in REFERENCE_KPIS


def operator_kpis(kpis: Mapping[str, float], prefix: str) -> dict[str, float]:
    """The KPIs a business model's strategy reported (``<prefix>_<name>``), keyed by name."""
    return {k[len(prefix) + 1:]: v for k, v in kpis.items() if owned_by(k, prefix)}
