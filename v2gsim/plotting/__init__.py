"""Figures from Results (never from a model). Functions return matplotlib Figures built without
pyplot's global state (`v2gsim.plotting.figure.V2GFigure`), so they work in scripts, notebooks
(shown inline) and worker processes alike, with Chinese text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from v2gsim.metrics import base_net_kw
from v2gsim.plotting.driver_money import plot_driver_money
from v2gsim.plotting.figure import new_figure
from v2gsim.plotting.events import plot_event
from v2gsim.plotting.hosting import plot_hosting_capacity
from v2gsim.plotting.network_map import plot_voltage_map
from v2gsim.plotting.operators import plot_operators
from v2gsim.plotting.pilots import plot_pilots
from v2gsim.plotting.wear_value import plot_fade_by_cause, plot_second_life, plot_v2g_value

__all__ = [
    "plot_daily_envelope",
    "plot_event",
    "plot_driver_money",
    "plot_fade_by_cause",
    "plot_fade_distribution",
    "plot_fade_vs_v2g",
    "plot_hosting_capacity",
    "plot_load_curve",
    "plot_loading_duration",
    "plot_operators",
    "plot_pilots",
    "plot_second_life",
    "plot_soc_distribution",
    "plot_swap_stations",
    "plot_v2g_value",
    "plot_voltage_envelope",
    "plot_voltage_map",
    "save_standard_plots",
    "standard_plots",
]


def _ax(ax, size=(10, 4)):
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(size)
    return fig, fig.add_subplot()


def plot_load_curve(results, ax=None) -> Figure:
    """Loads stacked above zero, feed-in stacked below, the net load, against the rating.

    Above zero: base load, EV charging and swap-station charging (where present); below zero:
    V2G, swap-station discharge and PV (where present), so the layers add up to the net load.
    """
    fig, ax = _ax(ax)
    sy = results.system
    t = sy.index
    up = [(c, label, color) for c, label, color in (
        ("base_load_kw", "base load", "#8da0cb"),
        ("ev_charge_kw", "EV charging", "#fc8d62"),
        ("swap_charge_kw", "swap stations charging", "#e78ac3"),
    ) if c in sy and (c == "base_load_kw" or sy[c].max() > 0)]
    ax.stackplot(t, *[sy[c] for c, _, _ in up], labels=[lb for _, lb, _ in up], colors=[co for _, _, co in up], alpha=0.9)
    down = [(c, label, color) for c, label, color in (
        ("v2g_discharge_kw", "V2G discharge", "#66c2a5"),
        ("swap_discharge_kw", "swap stations discharge", "#a6d854"),
        ("pv_kw", "PV", "#ffd92f"),
    ) if c in sy and sy[c].max() > 0]
    if down:
        ax.stackplot(t, *[-sy[c] for c, _, _ in down], labels=[lb for _, lb, _ in down], colors=[co for _, _, co in down], alpha=0.9)
    ax.plot(t, sy["net_load_kw"], color="k", lw=0.7, label="net load")
    # the axis is in kW: the kVA rating is drawn at the scenario's power factor, and says so
    kva, pf = results.transformer_kva, results.metadata["scenario"]["feeder"]["power_factor"]
    ax.axhline(kva * pf, color="firebrick", ls="--", lw=1.2, label=f"transformer {f'{kva:.1f}'.removesuffix('.0')} kVA × pf {pf:g} = {kva * pf:.1f} kW")
    ax.set_ylabel("power (kW)")
    ax.set_title(f"{results.metadata['scenario']['name']}: load on the transformer")
    ax.legend(loc="upper left", fontsize=8, ncols=3)
    ax.margins(x=0)
    return fig


def plot_daily_envelope(results, ax=None) -> Figure:
    """Net load and EV charging by time of day: mean line, min-max band over the days."""
    fig, ax = _ax(ax, (8, 4))
    sy = results.system
    tod = sy.index.hour + sy.index.minute / 60.0
    base_label = "base load − PV" if "pv_kw" in sy else "base load"  # the base the KPIs compare with
    for series, color, label in ((sy["net_load_kw"], "k", "net load"), (sy["ev_charge_kw"], "#fc8d62", "EV charging"),
                                 (base_net_kw(sy), "#8da0cb", base_label)):
        g = series.groupby(tod).agg(["min", "mean", "max"])
        ax.fill_between(g.index, g["min"], g["max"], color=color, alpha=0.15)
        ax.plot(g.index, g["mean"], color=color, label=f"{label} (mean, min-max band)")
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.set_xlabel("hour of day")
    ax.set_ylabel("power (kW)")
    ax.set_title("daily profile envelope")
    ax.legend(fontsize=8)
    return fig


def plot_soc_distribution(results, ax=None) -> Figure:
    """State of charge at every departure (histogram) and at the end of the run."""
    fig, ax = _ax(ax, (7, 4))
    d = results.departure_soc
    total = d["departures"].sum()
    width = (d["soc_hi"] - d["soc_lo"]).to_numpy()
    if total > 0:
        ax.bar(d["soc_lo"], d["departures"] / total, width=width, align="edge", alpha=0.7, label=f"at departure ({int(total)} departures)")
    final, edges = np.histogram(results.vehicles["soc_final"], bins=np.r_[d["soc_lo"].to_numpy(), 1.0])
    ax.step(edges[:-1], final / max(final.sum(), 1), where="post", color="k", label="at the end of the run")
    ax.set_xlabel("state of charge")
    ax.set_ylabel("share")
    ax.set_xlim(0, 1)
    ax.set_title("state-of-charge distribution")
    ax.legend(fontsize=8)
    return fig


def plot_voltage_envelope(results, ax=None) -> Figure:
    """Minimum and maximum bus voltage over time (network runs), against the voltage band."""
    fig, ax = _ax(ax)
    sy = results.system
    t = sy.index
    fc = results.metadata["scenario"]["feeder"]
    lo, hi = fc.get("v_min_pu", 0.93), fc.get("v_max_pu", 1.07)
    ax.fill_between(t, sy["vm_min_pu"], sy["vm_max_pu"], color="#8da0cb", alpha=0.5, label="range over all buses")
    ax.plot(t, sy["vm_min_pu"], color="#3b4f8f", lw=0.8, label="min")
    ax.plot(t, sy["vm_max_pu"], color="#8f3b3b", lw=0.8, label="max")
    for v in (lo, hi):
        ax.axhline(v, color="firebrick", ls="--", lw=1.0)
    bad = sy["pf_converged"] < 0.5
    if bad.any():
        ax.plot(t[bad], np.full(int(bad.sum()), lo), "x", color="k", label="not converged")
    ax.set_ylabel("voltage (p.u.)")
    ax.set_title(f"bus voltage envelope (band {lo:g}-{hi:g} p.u.)")
    ax.legend(loc="lower left", fontsize=8, ncols=4)
    ax.margins(x=0)
    return fig


def plot_loading_duration(results, ax=None) -> Figure:
    """Loading duration curves of the most loaded transformer and the most loaded line."""
    fig, ax = _ax(ax, (8, 4))
    sy = results.system
    limit = results.metadata["scenario"]["feeder"].get("loading_limit_pct", 100.0)
    for col, color, label in (("transformer_loading_pct", "#fc8d62", "transformer (most loaded)"),
                              ("line_loading_max_pct", "#66c2a5", "worst line")):
        if col not in sy or sy[col].isna().all():
            continue
        v = np.sort(sy[col].dropna().to_numpy())[::-1]
        hours = np.arange(1, v.size + 1) * results.dt_h
        ax.step(hours, v, where="post", color=color, label=label)
    ax.axhline(limit, color="firebrick", ls="--", lw=1.0, label=f"limit {limit:g} %")
    ax.set_xlabel("hours at or above")
    ax.set_ylabel("loading (%)")
    ax.set_xlim(left=0)
    ax.set_title("loading duration curves")
    ax.legend(fontsize=8)
    return fig


def plot_fade_distribution(results, ax=None) -> Figure:
    """Capacity fade per vehicle (histogram), stacked by cause: calendar, driving, charging, V2G."""
    fig, ax = _ax(ax, (8, 4))
    w = results.extra["wear"]
    parts = [("fade_calendar_pct", "calendar", "#8da0cb"), ("fade_driving_pct", "driving", "#fc8d62"),
             ("fade_charging_pct", "charging", "#e78ac3"), ("fade_v2g_pct", "V2G", "#66c2a5")]
    bins = np.histogram_bin_edges(w["fade_pct"], bins=30)
    which = np.clip(np.digitize(w["fade_pct"], bins) - 1, 0, bins.size - 2)
    bottom = np.zeros(bins.size - 1)
    width = np.diff(bins)
    for col, label, color in parts:  # each bin's vehicle count split by the mean shares of its vehicles
        share = np.divide(w[col].to_numpy(float), w["fade_pct"].to_numpy(float), out=np.zeros(len(w)), where=w["fade_pct"].to_numpy(float) > 0)
        h = np.bincount(which, weights=share, minlength=bins.size - 1)
        ax.bar(bins[:-1], h, width=width, bottom=bottom, align="edge", color=color, label=label, alpha=0.9)
        bottom += h
    ax.axvline(w["fade_pct"].mean(), color="k", ls="--", lw=1, label=f"mean {w['fade_pct'].mean():.2f} %")
    ax.set_xlabel("capacity fade (% of nominal)")
    ax.set_ylabel("vehicles")
    ax.set_title("battery capacity fade per vehicle, by cause")
    ax.legend(fontsize=8)
    return fig


def plot_fade_vs_v2g(results, ax=None) -> Figure:
    """V2G-attributed fade against the energy each vehicle fed back."""
    fig, ax = _ax(ax, (7, 4))
    w = results.extra["wear"]
    ax.scatter(w["e_v2g_kwh"], w["fade_v2g_pct"], s=6, alpha=0.5, color="#1b9e77")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("V2G energy fed back (kWh)")
    ax.set_ylabel("V2G-attributed fade (percentage points)")
    ax.set_title("fade from V2G against V2G energy")
    return fig


def plot_swap_stations(results) -> Figure:
    """Per swap station over time: packs ready to hand out, drivers waiting, grid power.

    Power is drawn as elsewhere: > 0 charges packs from the grid, < 0 feeds it (discharge).
    """
    st = results.extra["stations"]
    fig = new_figure((10, 6.5))
    ax_ready, ax_queue, ax_p = fig.subplots(3, 1, sharex=True)
    for sid, g in st.groupby("station_id", observed=True, sort=False):
        t = g["time"]
        ax_ready.step(t, g["packs_ready"], where="post", lw=1, label=str(sid))
        ax_queue.step(t, g["queue"], where="post", lw=1, label=str(sid))
        ax_p.plot(t, g["p_kw"], lw=1, label=str(sid))
    ax_ready.set_ylabel("packs ready")
    ax_ready.set_ylim(bottom=0)
    ax_ready.set_title("swap stations: packs ready, queue and grid power")
    ax_queue.set_ylabel("drivers waiting")
    ax_queue.set_ylim(bottom=0)
    ax_p.axhline(0, color="grey", lw=0.8)
    ax_p.set_ylabel("power (kW)\n> 0 charging")
    ax_p.margins(x=0)
    ax_ready.legend(loc="upper left", fontsize=8, ncols=4)
    return fig


STANDARD_PLOTS = {
    "load_curve.png": plot_load_curve,
    "daily_envelope.png": plot_daily_envelope,
    "soc_distribution.png": plot_soc_distribution,
}


# added to the standard plots when the run has a feeder.network
NETWORK_PLOTS = {
    "voltage_envelope.png": plot_voltage_envelope,
    "loading_duration.png": plot_loading_duration,
}


# added when the run has battery wear (scenario wear.model not off)
WEAR_PLOTS = {
    "fade_distribution.png": plot_fade_distribution,
    "fade_vs_v2g.png": plot_fade_vs_v2g,
}


# added when the run has swap stations
STATION_PLOTS = {
    "swap_stations.png": plot_swap_stations,
}


def standard_plots(results) -> dict:
    """File name -> plot function of every standard plot ``results`` has data for (the files
    `save_standard_plots` writes, the figures of the HTML report)."""
    plots = dict(STANDARD_PLOTS)
    if "vm_min_pu" in results.system:
        plots.update(NETWORK_PLOTS)
    extra = getattr(results, "extra", {})
    if "wear" in extra:
        plots.update(WEAR_PLOTS)
    if "operators" in extra and len(extra["operators"]):
        plots["operators.png"] = plot_operators
    if "drivers_money" in extra:  # contracts, or drivers fed back
        plots["drivers_money.png"] = plot_driver_money
    if "stations" in extra and len(extra["stations"]):
        plots.update(STATION_PLOTS)
    return plots


def save_standard_plots(results, directory: str | Path) -> list[Path]:
    out = []
    for name, fn in standard_plots(results).items():
        path = Path(directory) / name
        fn(results).savefig(path, dpi=110)
        out.append(path)
    return out
