"""A hosting-capacity sweep on one page: each limiting KPI against the fleet size, a line per
control (business model), the range of its replications, the limit, and where each control's capacity ends."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from v2gsim.plotting.figure import new_figure

__all__ = ["plot_hosting_capacity"]

_LABELS = {
    "max_transformer_loading_pct": "most loaded transformer (%)",
    "max_line_loading_pct": "most loaded line (%)",
    "min_voltage_pu": "lowest bus voltage (p.u.)",
    "unmet_energy_kwh": "energy drivers asked for and did not get (kWh)",
    "peak_load_kw": "peak net load (kW)",
    "transformer_overload_h": "hours the transformer was over 100 %",
    "voltage_violation_h": "hours with a bus outside the band",
}


def plot_hosting_capacity(table: pd.DataFrame, x: str, panels: dict[str, float | None], *, group: str | None = None,
                          capacity: pd.DataFrame | None = None) -> Figure:
    """One panel per KPI: its mean over replications against ``x`` (a line per value of
    ``group``), shaded between the lowest and highest replication.

    The band is the replications' range rather than a t-interval: with two or three
    replications a 95 % interval is mostly the t factor (12.7 for two), wider than anything the
    runs showed.

    Args:
        table: a sweep's run table (`v2gsim.sweeps.run_sweep`); only ``status == "ok"`` runs count.
        x: the size parameter (e.g. ``population.0.count``).
        panels: KPI -> its limit (drawn as a red dashed line) or None.
        group: a parameter drawn as separate lines (e.g. ``business_models.0.kind``).
        capacity: `v2gsim.metrics.hosting_capacity` of the same table; each group's capacity is
            drawn as a dotted vertical line in its colour.
    """
    missing = [k for k in panels if k not in table]
    if missing:
        raise ValueError(f"the run table has no KPI {missing}: name it in the sweep's kpis")
    ok = table[table["status"] == "ok"]
    n = len(panels)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    fig = new_figure((5.2 * cols, 3.4 * rows))
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False).ravel()
    groups = list(dict.fromkeys(ok[group])) if group else [None]
    colors = {g: f"C{i}" for i, g in enumerate(groups)}
    for ax, (kpi, limit) in zip(axes, panels.items(), strict=False):
        for g in groups:
            part = (ok if g is None else ok[ok[group] == g]).groupby(x)[kpi].agg(["mean", "min", "max"]).sort_index()
            xs = part.index.to_numpy(float)
            ax.plot(xs, part["mean"], marker="o", ms=4, color=colors[g], label=None if g is None else str(g))
            ax.fill_between(xs, part["min"], part["max"], color=colors[g], alpha=0.2, linewidth=0)
            if capacity is not None and g in capacity.index and np.isfinite(capacity.loc[g, "hosting_capacity"]):
                ax.axvline(capacity.loc[g, "hosting_capacity"], color=colors[g], ls=":", lw=1.2)
        if limit is not None:
            ax.axhline(limit, color="firebrick", ls="--", lw=1.0, label=f"limit {limit:g}")
        ax.set_ylabel(_LABELS.get(kpi, kpi), fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[max(0, n - cols):n]:
        ax.set_xlabel(x)
    title = "hosting capacity: limits against fleet size (mean of replications, band: their range)"
    if capacity is not None:
        title += "\ndotted: the largest size within the limits"
    fig.suptitle(title, fontsize=10)
    return fig
