"""Figures of what battery wear costs and what retired packs still earn: V2G revenue against V2G
wear per vehicle, fade by cause per group, and the second-life storage over a run."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from v2gsim.metrics import fade_by_cause, v2g_value_per_vehicle
from v2gsim.plotting.figure import new_figure

__all__ = ["plot_fade_by_cause", "plot_second_life", "plot_v2g_value"]

_CAUSE_COLORS = (("calendar_pct", "calendar", "#8da0cb"), ("cycle_driving_pct", "cycling: driving", "#fc8d62"),
                 ("cycle_charging_pct", "cycling: charging", "#e78ac3"), ("v2g_pct", "V2G", "#66c2a5"))


def _ax(ax, size):
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(size)
    return fig, fig.add_subplot()


def plot_fade_by_cause(results, by: str = "group", ax=None) -> Figure:
    """Mean fade per vehicle by cause (stacked bars), one bar per value of ``by`` and the fleet.

    V2G's part can be negative (V2G kept the battery at a lower state of charge, which slows
    calendar ageing); it is then drawn below zero.
    """
    fig, ax = _ax(ax, (8, 4))
    t = fade_by_cause(results, by)
    x = np.arange(len(t))
    up = np.zeros(len(t))
    down = np.zeros(len(t))
    for col, label, color in _CAUSE_COLORS:
        v = t[col].to_numpy(float)
        base = np.where(v >= 0, up, down)
        ax.bar(x, v, bottom=base, color=color, label=label, width=0.6)
        up += np.maximum(v, 0)
        down += np.minimum(v, 0)
    ax.plot(x, t["total_pct"], "k_", ms=22, mew=1.5, label="net total")
    ax.set_xticks(x, [f"{g}\n({n} vehicles)" for g, n in zip(t.index, t["vehicles"], strict=True)], fontsize=8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("capacity fade (points of nominal)")
    ax.set_title(f"mean battery fade per vehicle by cause, by {by}")
    ax.legend(fontsize=8, ncols=5, loc="upper left")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.15)
    return fig


def plot_v2g_value(results, ax=None) -> Figure:
    """Each vehicle's V2G revenue against the wear cost of its V2G, with the break-even line.

    Only vehicles that fed energy back and own their pack are drawn (a leased swap pack's wear
    is the operator's); above the line V2G paid the driver more than it cost the battery.
    """
    fig, ax = _ax(ax, (7, 5))
    t = v2g_value_per_vehicle(results)
    t = t[(t["e_v2g_kwh"] > 0) & ~t["battery_leased"]]
    for g, part in t.groupby("group", observed=True, sort=False):
        ax.scatter(part["v2g_wear_cost_cny"], part["v2g_revenue_cny"], s=14, alpha=0.7, label=f"{g} ({len(part)})")
    if len(t):
        lo = min(0.0, float(t["v2g_wear_cost_cny"].min()))
        hi = max(float(t["v2g_wear_cost_cny"].max()), float(t["v2g_revenue_cny"].max()))
        ax.plot([lo, hi], [lo, hi], color="firebrick", ls="--", lw=1, label="break-even (revenue = wear)")
        paid = int((t["v2g_net_cny"] > 0).sum())
        ax.set_title(f"V2G revenue against its battery wear: {paid} of {len(t)} vehicles came out ahead", fontsize=10)
    else:
        ax.set_title("no vehicle with its own pack fed energy back")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("wear cost of the V2G-attributed fade (CNY)")
    ax.set_ylabel("V2G revenue (CNY)")
    ax.legend(fontsize=8)
    return fig


def plot_second_life(results) -> Figure:
    """Retired packs in second-life storage over time (by origin), and the storage's daily energy.

    Top: packs in second life (retired, not yet recycled), by where they came from (a vehicle or
    a swap station). Bottom: energy the storage drew from and fed into the grid each day.
    """
    packs = results.extra.get("wear_packs")
    if packs is None:
        raise ValueError("these results have no retired-pack table: the scenario needs wear (wear.model not off)")
    sy = results.system
    t = sy.index
    fig = new_figure((10, 6))
    ax_n, ax_e = fig.subplots(2, 1, sharex=True)
    last = len(t) - 1
    for origin, part in packs.groupby("origin", sort=True, observed=True):
        where = {"vehicle": "vehicles", "swap": "swap stations"}.get(str(origin), str(origin))
        retired = np.bincount(np.clip(part["retired_step"].to_numpy(int), 0, last), minlength=len(t))
        rec = part["recycled_step"].to_numpy(int)
        recycled = np.bincount(np.clip(rec[rec >= 0], 0, last), minlength=len(t))
        ax_n.step(t, np.cumsum(retired - recycled), where="post", label=f"from {where} ({len(part)} retired)")
    ax_n.set_ylabel("packs in second life")
    ax_n.set_ylim(bottom=0)
    ax_n.set_title("second-life storage: retired packs in service and their daily energy")
    ax_n.legend(fontsize=8, loc="upper left")
    if "second_life_charge_kw" in sy:
        daily = sy[["second_life_charge_kw", "second_life_discharge_kw"]].resample("1D").sum() * results.dt_h / 1000.0
        ax_e.bar(daily.index, daily["second_life_charge_kw"], width=1.0, color="#fc8d62", label="drawn (charging)")
        ax_e.bar(daily.index, -daily["second_life_discharge_kw"], width=1.0, color="#66c2a5", label="fed back (discharging)")
    ax_e.axhline(0, color="grey", lw=0.8)
    ax_e.set_ylabel("energy per day (MWh)\n> 0 drawn")
    ax_e.legend(fontsize=8, loc="upper left")
    ax_e.margins(x=0)
    return fig
