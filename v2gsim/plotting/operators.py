"""The per-operator figure: each business model's load on the feeder and its share of the peak."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from v2gsim.plotting.figure import new_figure

_COLORS = ("#fc8d62", "#66c2a5", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3")


def plot_operators(results) -> Figure:
    """Top: each operator's net grid power over time, stacked (drawn above zero, fed back below),
    with the EV and station part of the feeder's net load and the step of its peak. Bottom left:
    energy drawn and fed back per operator; bottom right: its load at the feeder's peak (the
    coincident peak) beside its own peak. From :func:`v2gsim.operators.operator_load_kw` and
    :func:`v2gsim.operators.operator_table`."""
    from v2gsim.operators import feeder_peak_step, operator_load_kw, operator_table

    load = operator_load_kw(results)
    table = results.extra.get("operators")
    table = table.set_index("operator_id") if table is not None else operator_table(results)
    load = load[[c for c in load.columns if c in table.index]]
    fig = new_figure((11, 7))
    grid = fig.add_gridspec(2, 2, height_ratios=(3, 2))
    ax = fig.add_subplot(grid[0, :])
    t = load.index
    colors = {op: _COLORS[i % len(_COLORS)] for i, op in enumerate(load.columns)}
    up, down = load.clip(lower=0.0), load.clip(upper=0.0)
    ax.stackplot(t, *[up[c] for c in load.columns], labels=list(load.columns), colors=[colors[c] for c in load.columns], alpha=0.9)
    if (down < 0).any().any():
        ax.stackplot(t, *[down[c] for c in load.columns], colors=[colors[c] for c in load.columns], alpha=0.55)
    sy = results.system
    ev_part = sy["net_load_kw"] - sy["base_net_kw"]
    ax.plot(t, ev_part, color="k", lw=0.7, label="net load − base (EVs, stations, storage)")
    k = feeder_peak_step(results)
    ax.axvline(t[k], color="firebrick", ls="--", lw=1.0, label=f"feeder peak {sy['net_load_kw'].iloc[k]:.0f} kW")
    ax.axhline(0.0, color="0.5", lw=0.5)
    ax.set_ylabel("power (kW)")
    ax.set_title(f"{results.metadata['scenario']['name']}: load per operator")
    ax.legend(loc="upper left", fontsize=8, ncols=3)
    ax.margins(x=0)

    ops = list(table.index)
    x = np.arange(len(ops))
    w = 0.38
    ax_e = fig.add_subplot(grid[1, 0])
    ax_e.bar(x - w / 2, table["energy_drawn_kwh"] / 1000.0, w, label="drawn", color="#fc8d62")
    ax_e.bar(x + w / 2, table["energy_fed_back_kwh"] / 1000.0, w, label="fed back (V2G)", color="#66c2a5")
    ax_e.set_xticks(x, ops, fontsize=8)
    ax_e.set_ylabel("energy (MWh)")
    ax_e.set_title("energy per operator", fontsize=10)
    ax_e.legend(fontsize=8)
    ax_p = fig.add_subplot(grid[1, 1])
    ax_p.bar(x - w / 2, table["feeder_peak_load_kw"], w, label="at the feeder's peak", color="firebrick")
    ax_p.bar(x + w / 2, table["own_peak_kw"], w, label="own peak", color="#8da0cb")
    for xi, (v, s) in enumerate(zip(table["feeder_peak_load_kw"], table["feeder_peak_share_pct"])):
        if np.isfinite(s):
            ax_p.annotate(f"{s:.0f} %", (xi - w / 2, max(v, 0.0)), ha="center", va="bottom", fontsize=8)
    ax_p.set_xticks(x, ops, fontsize=8)
    ax_p.set_ylabel("power (kW)")
    ax_p.set_title("coincident peak (share of the feeder's) and own peak", fontsize=10)
    ax_p.legend(fontsize=8)
    return fig
