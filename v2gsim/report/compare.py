"""The report comparing runs: their scenarios and KPIs side by side, overlaid load curves, and
each run's key plots next to each other."""

from __future__ import annotations

from v2gsim.compare import kpi_table, plot_compare
from v2gsim.plotting import plot_daily_envelope, plot_load_curve
from v2gsim.report import html
from v2gsim.report.kpis import grouped, owned_by, unit
from v2gsim.report.page import PLOT_CAPTIONS, scenario_rows
from v2gsim.report.tables import operators

# the plots shown for every run, next to each other
KEY_PLOTS = {"load_curve": plot_load_curve, "daily_envelope": plot_daily_envelope}
OPERATORS = "Business models"


def _scenarios(runs: dict) -> str:
    labels = list(runs)
    rows = {}
    for label, r in runs.items():
        rows.setdefault("name", {})[label] = r.metadata["scenario"]["name"]
        for key, value in scenario_rows(r):
            rows.setdefault(key, {})[label] = value
    return html.table(["", *labels], [(key, *(by_run.get(lb, "") for lb in labels)) for key, by_run in rows.items()])


def _kpis(runs: dict) -> str:
    order = list(dict.fromkeys(k for r in runs.values() for k in r.kpis))  # as the runs list them, not sorted
    table = kpi_table(runs).loc[order]
    prefixes = {op["prefix"] for r in runs.values() for op in operators(r)}
    own = [k for k in table.index if any(owned_by(k, p) for p in prefixes)]
    groups = grouped([k for k in table.index if k not in own])
    if own:
        groups[OPERATORS] = own
    labels = list(table.columns)
    out = []
    for topic, names in groups.items():
        rows = [(k, *table.loc[k], unit(k)) for k in names]
        out.append(f"<h3>{html.text(topic)}</h3>" + html.table(["KPI", *labels, "unit"], rows,
                                                                numeric=[False, *[True] * len(labels), False], units=len(labels) + 1))
    return "\n".join(out)


def _key_plots(runs: dict) -> str:
    out = []
    for name, plot in KEY_PLOTS.items():
        figs = [html.figure(plot(r), name, f"{label}: {PLOT_CAPTIONS[name]}", run=label) for label, r in runs.items()]
        out.append(f"<h3>{html.text(name.replace('_', ' '))}</h3>" + '<div class="side">' + "".join(figs) + "</div>")
    return "\n".join(out)


def build_compare_report(runs: dict) -> str:
    """The HTML page comparing ``runs`` (label -> Results), as text."""
    labels = list(runs)
    title = f"Comparison of {len(labels)} run{'s' if len(labels) != 1 else ''}: {', '.join(labels)}"
    body = [
        f"<h1>{html.text(title)}</h1>",
        "<h2>Scenarios</h2>", _scenarios(runs),
        "<h2>Key figures</h2>", _kpis(runs),
        "<h2>Load curves overlaid</h2>",
        html.figure(plot_compare(runs), "load_curves", "Net load of every run over time (top) and its mean daily profile (bottom)."),
        "<h2>Each run</h2>", _key_plots(runs),
    ]
    return html.page(title + " — v2gsim", "\n".join(body))
