"""The report of one run: one self-contained HTML page built from Results only.

Sections: the scenario, KPIs by topic, every standard plot the run has data for, one section per
operator (business model), money per actor where the result carries a ledger, the scenario as
resolved (collapsed) and the run's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml

from v2gsim.plotting import standard_plots
from v2gsim.report import html
from v2gsim.report.kpis import grouped, operator_kpis, owned_by, unit
from v2gsim.operators import CURRENCY, actor_money
from v2gsim.report.tables import ledger_by_reason, operators, site_energy, station_totals

LEDGER_FILE = "ledger.parquet"

PLOT_CAPTIONS = {
    "load_curve": "Load on the transformer: base load, EV charging and swap stations above zero, V2G and PV below, the net load and the rating.",
    "daily_envelope": "Daily profile: mean by time of day, with the min-max band over the days.",
    "soc_distribution": "State of charge at every departure and at the end of the run.",
    "voltage_envelope": "Lowest and highest bus voltage at every step, against the voltage band.",
    "loading_duration": "Loading duration curves of the most loaded transformer and line.",
    "fade_distribution": "Battery capacity fade per vehicle, by cause.",
    "fade_vs_v2g": "V2G-attributed fade against the energy each vehicle fed back.",
    "swap_stations": "Swap stations: packs ready, drivers waiting and grid power over time.",
    "drivers_money": "Drivers' V2G money: who gains and who loses (histogram of each participating driver's net), and the deciles of its parts.",
    "operators": "Load per operator (business model) over time, its energy, and its load at the feeder's peak beside its own peak.",
}

# the per-operator table as shown: column -> header (money in CURRENCY)
OPERATOR_HEADERS = {
    "kind": "kind", "energy_drawn_kwh": "drawn kWh", "energy_fed_back_kwh": "fed back kWh",
    "feeder_peak_load_kw": "load at feeder peak kW", "feeder_peak_share_pct": "share of feeder peak %", "own_peak_kw": "own peak kW",
    "v2g_requests": "requests", "v2g_requested_kwh": "V2G asked kWh", "v2g_delivered_in_requests_kwh": "V2G delivered in requests kWh",
    "cost_cny": f"cost {CURRENCY}", "revenue_cny": f"revenue {CURRENCY}", "net_cny": f"net {CURRENCY}", "wear_cny": f"own battery wear {CURRENCY}",
    "drivers_served": "drivers served", "unmet_energy_kwh": "unmet kWh",
}
REQUEST_HEADERS = {
    "operator_id": "operator", "kind": "kind", "start": "start", "end": "end", "asked": "asked", "reward_cny_per_kwh": "reward CNY/kWh",
    "delivered_kwh": "fed back kWh", "net_kw_mean": "mean net kW", "import_max_kw": "max import kW", "shortfall_kwh": "shortfall kWh",
    "met_pct": "met %",
}


def find_ledger(results, directory: str | Path | None = None) -> pd.DataFrame | None:
    """The money ledger of a run, if it has one: a ``ledger`` table of the results, else
    ``ledger.parquet`` in its result folder; None otherwise."""
    ledger = results.extra.get("ledger")
    if ledger is None and len(getattr(results, "ledger", ())):
        ledger = results.ledger
    if ledger is None and directory is not None and (Path(directory) / LEDGER_FILE).is_file():
        ledger = pd.read_parquet(Path(directory) / LEDGER_FILE)
    return ledger if isinstance(ledger, pd.DataFrame) else None


# ------------------------------------------------------------------------------ scenario

def _plural(n: float, word: str) -> str:
    return f"{html.number(n)} {word}{'' if n == 1 else 's'}"


def time_span(sc: Mapping) -> str:
    t = sc["time"]
    start = pd.Timestamp(t["start"])
    end = start + pd.Timedelta(days=float(t["horizon_days"]))
    warm = f"; {_plural(t['warmup_days'], 'warm-up day')} before, not recorded" if t.get("warmup_days") else ""
    return (f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} ({_plural(float(t['horizon_days']), 'day')}, "
            f"{t['step_min']}-minute steps{warm}), {t.get('timezone', '')}")


def vehicles_line(sc: Mapping, n_vehicles: float) -> str:
    groups = [f"{g.get('count', 0):,} {g.get('archetype', '?')} ({g['vehicle'] if isinstance(g.get('vehicle'), str) else 'own vehicle'})"
              for g in sc.get("population", [])]
    if sc.get("mobility_sessions"):
        groups.append(f"sessions replayed from {sc['mobility_sessions'].get('csv')}")
    return f"{html.number(n_vehicles)}: " + "; ".join(groups) if groups else html.number(n_vehicles)


def feeder_line(sc: Mapping, transformer_kva: float) -> str:
    f = sc["feeder"]
    where = f"network {f['network']} ({f.get('solver', 'ac')} power flow)" if f.get("network") else "single transformer"
    bl = f.get("base_load") or {}
    base = f"base load from {bl['csv']}" if bl.get("csv") else (
        "base load: the network's own profiles" if bl.get("from") == "network_profiles" else
        f"base load {bl.get('profile', '?')}, {html.number(f.get('households') or 0)} households")
    return f"{where}, {html.number(transformer_kva)} kVA at power factor {f.get('power_factor', '?')}; {base}"


def tariff_line(sc: Mapping) -> str:
    t = sc.get("tariff") or {}
    name = f"preset {t['preset']}" if t.get("preset") else "own tariff"
    flat = f", flat {t['flat_cny_per_kwh']} CNY/kWh" if t.get("flat_cny_per_kwh") is not None else ""
    extra = ""
    if t.get("seasons"):
        extra += f", {len(t['seasons'])} season(s)"
    if t.get("holidays"):
        extra += ", holiday periods"
    if t.get("demand_charge_cny_per_kw_month") is not None:
        extra += f", demand charge {t['demand_charge_cny_per_kw_month']:g} CNY/kW-month ({t.get('demand_meter', 'sites')})"
    if t.get("capacity_charge_cny_per_kva_month") is not None:
        extra += f", capacity charge {t['capacity_charge_cny_per_kva_month']:g} CNY/kVA-month"
    return name + flat + extra


def operators_line(ops: list[dict]) -> str:
    parts = []
    for op in ops:
        what = ", ".join(op["sites"]) or "no sites"
        if op["stations"]:
            what += f"; stations {', '.join(op['stations'])}"
        parts.append(f"{op['kind']} ({what})")
    return "; ".join(parts)


def scenario_rows(results) -> list[tuple[str, str]]:
    """(label, text) rows that describe a run's scenario."""
    sc = results.metadata["scenario"]
    return [
        ("time", time_span(sc)),
        ("vehicles", vehicles_line(sc, results.kpis.get("n_vehicles", results.metadata.get("n_vehicles", 0)))),
        ("sites", ", ".join(s["id"] for s in sc.get("sites", [])) or "none"),
        ("business models", operators_line(operators(results))),
        ("feeder", feeder_line(sc, results.transformer_kva)),
        ("tariff", tariff_line(sc)),
        ("battery wear", (sc.get("wear") or {}).get("model", "off")),
        ("seed", str(results.metadata.get("seed", sc.get("seed", "")))),
    ]


def _sites_table(results) -> str:
    sc = results.metadata["scenario"]
    owner: dict[str, str] = {}
    for op in operators(results):  # a site listed twice belongs to the first (as in the model)
        for sid in op["sites"]:
            owner.setdefault(sid, op["prefix"])
    rows = [(s["id"], s["kind"], owner.get(s["id"], "—"), s["chargers"] if s.get("chargers") is not None else "one per owner",
             s["p_max_kw"], s.get("bidirectional_share", 0.0) * 100, s["p_limit_kw"] if s.get("p_limit_kw") is not None else "none")
            for s in sc.get("sites", [])]
    return html.table(["site", "kind", "operator", "chargers", "kW per charger", "V2G chargers %", "site limit kW"], rows,
                      numeric=[False, False, False, True, True, True, True])


def _scenario_section(results) -> str:
    sc = results.metadata["scenario"]
    out = ["<h2>Scenario</h2>", html.key_values(scenario_rows(results))]
    if sc.get("sites"):
        out += ["<h3>Sites</h3>", _sites_table(results)]
    return "\n".join(out)


# ------------------------------------------------------------------------------ KPIs

def general_kpis(results) -> dict[str, float]:
    """The run's KPIs less those of its business models' strategies (shown per operator)."""
    prefixes = [op["prefix"] for op in operators(results)]
    return {k: v for k, v in results.kpis.items() if not any(owned_by(k, p) for p in prefixes)}


def kpi_table(kpis: Mapping[str, float]) -> str:
    return html.table(["KPI", "value", "unit"], [(k, v, unit(k)) for k, v in kpis.items()], numeric=[False, True, False], units=2)


def _kpi_section(results) -> str:
    kpis = general_kpis(results)
    blocks = [f"<section><h3>{html.text(topic)}</h3>{kpi_table({k: kpis[k] for k in names})}</section>"
              for topic, names in grouped(kpis).items()]
    return '<h2>Key figures</h2>\n<div class="kpi-groups">' + "\n".join(blocks) + "</div>"


# ------------------------------------------------------------------------------ figures

def figures(results) -> list[str]:
    """Every standard plot the run has data for, as embedded ``<figure>`` elements."""
    out = []
    for file_name, plot in standard_plots(results).items():
        name = Path(file_name).stem
        out.append(html.figure(plot(results), name, PLOT_CAPTIONS.get(name, name.replace("_", " "))))
    return out


def _figure_section(results) -> str:
    return "<h2>Plots</h2>\n" + "\n".join(figures(results))


# ------------------------------------------------------------------------------ operators

def operator_summary(results) -> str:
    """The per-operator table and the grid requests with what each delivered (HTML)."""
    table = results.extra.get("operators")
    if table is None:
        return ('<p class="note">This result predates per-operator accounting (no operators table): '
                "run the scenario again to see each operator's energy, share of the peak and money.</p>")
    t = table.set_index("operator_id")[list(OPERATOR_HEADERS)]
    out = [f'<p class="note">Energy is grid-side, money in {CURRENCY} from the ledger; the feeder\'s peak is its largest net '
           "load. Own battery wear: batteries the operator owns (swap packs), as its energy management priced them.</p>",
           html.frame(t, "operator", list(OPERATOR_HEADERS.values()))]
    req = results.extra.get("operator_requests")
    if req is not None and len(req):
        r = req[list(REQUEST_HEADERS)].assign(start=lambda d: d["start"].dt.strftime("%Y-%m-%d %H:%M"),
                                               end=lambda d: d["end"].dt.strftime("%Y-%m-%d %H:%M"))
        out += ["<h3>Grid requests: asked and delivered</h3>", html.frame(r.set_index("operator_id"), "operator", list(REQUEST_HEADERS.values())[1:])]
    return "\n".join(out)


def _operator_section(results) -> str:
    energy = site_energy(results)
    stations = station_totals(results)
    out = ["<h2>Operators</h2>", operator_summary(results)]
    for i, op in enumerate(operators(results)):
        out.append(f"<h3>{i + 1}. {html.text(op['kind'])}</h3>")
        out.append(f'<p class="note">KPIs reported as <code>{html.text(op["prefix"])}_*</code>; sites: '
                   f"{html.text(', '.join(op['sites']) or 'none')}</p>")
        own = operator_kpis(results.kpis, op["prefix"])
        parts = [kpi_table(own) if own else '<p class="note">This business model reports no KPIs of its own.</p>']
        here = energy.loc[[s for s in op["sites"] if s in energy.index]]
        if not here.empty:
            parts.append(html.frame(here, "site", ["energy drawn kWh", "energy fed back kWh", "peak kW"]))
        out.append('<div class="side">' + "".join(f"<div>{p}</div>" for p in parts) + "</div>")
        mine = stations.loc[[s for s in op["stations"] if s in stations.index]] if not stations.empty else stations
        if not mine.empty:
            out.append(html.frame(mine, "station", ["swaps", "drivers who left", "longest queue", "fewest packs ready", "charged kWh",
                                                    "discharged kWh", "peak kW", "cost CNY", "revenue CNY", "wear cost CNY"]))
        out.append(html.details("configuration", f"<pre>{html.text(_yaml(op['config']))}</pre>"))
    return "\n".join(out)


DRIVER_MONEY_HEADERS = ("charging cost", "V2G income kept", "wear compensation", "guarantee top-up", "V2G wear cost",
                        "battery lease", "V2G net", "net")


def _driver_money_section(results) -> str:
    """Each driver's money: who gains and who loses from V2G, and the deciles (HTML); empty
    without contracts or V2G."""
    from v2gsim.market.driver_money import driver_money_deciles, driver_money_kpis, has_driver_money

    table = results.extra.get("drivers_money")
    if table is None or not has_driver_money(results):
        return ""
    k = driver_money_kpis(table)
    dec = driver_money_deciles(table)
    return "\n".join([
        "<h2>Drivers' money</h2>",
        f'<p class="note">Per driver over the run, in {CURRENCY} (<code>drivers_money.parquet</code>): '
        f"{html.number(k['drivers_taking_part'])} of {html.number(len(table))} drivers took part in V2G; "
        f"{html.number(k['drivers_gaining'])} gain and {html.number(k['drivers_losing'])} lose (V2G income kept plus wear "
        "compensation and guarantee, less the V2G wear the wear model priced; unknown without it). Deciles over all drivers:</p>",
        html.frame(dec, "decile", [f"{h} CNY" for h in DRIVER_MONEY_HEADERS]),
    ])


def _ledger_section(ledger: pd.DataFrame) -> str:
    actors = actor_money(ledger)
    reasons = ledger_by_reason(ledger)
    return "\n".join([
        "<h2>Money per actor</h2>",
        f'<p class="note">From the ledger ({html.number(len(ledger))} entries): what each actor paid and was paid, in {CURRENCY}; '
        "the nets add up to zero.</p>",
        html.frame(actors, "actor", ["cost CNY", "revenue CNY", "net CNY", "energy paid for kWh", "energy paid to it kWh"]),
        "<h3>By reason</h3>",
        html.frame(reasons, "reason", ["entries", "energy kWh", "amount CNY"]),
    ])


# ------------------------------------------------------------------------------ the rest

def _yaml(data) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def metadata_rows(meta: Mapping) -> list[tuple[str, str]]:
    rows = [("v2gsim version", meta.get("version", "?")), ("seed", meta.get("seed", "?")),
            ("scenario hash (SHA-256)", meta.get("scenario_hash", "?")),
            ("wall time", f"{meta['wall_time_s']:.2f} s" if isinstance(meta.get("wall_time_s"), (int, float)) else "?"),
            ("steps recorded", meta.get("n_steps", "?"))]
    rows += [(k, f"{v:.3f} s" if isinstance(v, (int, float)) else v) for k, v in (meta.get("timings") or {}).items()]
    return rows


def _metadata_section(results) -> str:
    return "<h2>Run</h2>\n" + html.key_values(metadata_rows(results.metadata))


def build_report(results, *, ledger: pd.DataFrame | None = None) -> str:
    """The HTML report of one run (a whole page, as text); ``ledger`` defaults to the results' own
    (`find_ledger`)."""
    ledger = ledger if ledger is not None else find_ledger(results)
    sc = results.metadata["scenario"]
    parts = [f"<h1>{html.text(sc['name'])}</h1>"]
    if sc.get("description"):
        parts.append(f'<p class="lead">{html.text(sc["description"])}</p>')
    parts += [_scenario_section(results), _kpi_section(results), _figure_section(results), _operator_section(results),
              _driver_money_section(results)]
    if ledger is not None:
        parts.append(_ledger_section(ledger))
    parts += ["<h2>Scenario as resolved</h2>",
              html.details("the scenario with every default filled in (YAML)", f"<pre>{html.text(_yaml(sc))}</pre>"),
              _metadata_section(results)]
    return html.page(f"{sc['name']} — v2gsim report", "\n".join(parts))
