"""The live app's panels: each takes the `LiveRun` and draws what its recorder holds so far.

The figures are the project's own (`v2gsim.plotting`, drawn from a `Snapshot`), so they show
Chinese scenario names and station ids like every other v2gsim plot; each panel's outer element
carries a ``v2g-…`` CSS class so that the browser test (and a user's stylesheet) can find it.
A panel whose data the scenario lacks (no swap stations, no feeder network) says so.
"""

from __future__ import annotations

from html import escape

import solara
from matplotlib.dates import DateFormatter

from v2gsim.plotting import plot_load_curve, plot_soc_distribution, plot_swap_stations, plot_voltage_envelope
from v2gsim.plotting.figure import new_figure
from v2gsim.viz.live import LiveRun, Snapshot, snapshot
from v2gsim.viz.params import AS_IN_SCENARIO, rewards_in

# a panel is half the page wide (Mesa's grid): the plots are redrawn 7 in wide at 90 dpi (630 px),
# so that their text stays legible when the browser fits them into the panel
DPI = 90
WIDTH_IN = 7.0


def _snap(run: LiveRun) -> Snapshot | None:
    """One snapshot per recorded step, shared by the panels of a render."""
    cached = getattr(run, "_viz_snapshot", None)
    if cached is not None and cached[0] == run.recorded:
        return cached[1]
    snap = snapshot(run)
    run._viz_snapshot = (run.recorded, snap)
    return snap


def _figure(fig, run: LiveRun, css: str):
    w, h = fig.get_size_inches()
    fig.set_size_inches(WIDTH_IN, min(4.6, max(3.6, h * WIDTH_IN / w * 1.25)))  # a little taller than the file plots
    with solara.Column(classes=[css]) as col:
        solara.FigureMatplotlib(fig, dependencies=[id(run), run.recorded], format="png", dpi=DPI)
    return col


def _days(ax, horizon) -> None:
    """The run's whole time axis, labelled by day (month-day) so that a week's labels do not collide."""
    ax.set_xlim(*horizon)
    ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))


def _absent(css: str, text: str):
    """A panel's notice that the scenario has nothing of its kind to draw."""
    with solara.Column(classes=[css]) as col:
        solara.Info(text)
    return col


def _waiting(run: LiveRun, css: str, what: str):
    with solara.Column(classes=[css]) as col:
        if run.problem:
            solara.Warning(f"{what}: nothing to show, the scenario has a problem (see the status panel)")
        else:
            solara.Info(f"{what}: press Step or ▶ to run the scenario")
    return col


def Status(run: LiveRun):
    """Scenario, time, progress, the knobs as --set overrides, and any problem with them.

    Plain HTML, not Markdown: Solara's Markdown loads KaTeX from a CDN, which an offline
    machine does not reach.
    """
    with solara.Column(classes=["v2g-status"]) as col:
        if run.problem:
            solara.Error(f"{run.scenario_name}: {run.problem}")
            return col
        sc, sim = run.config, run.sim
        now = run.now
        when = f"{now:%Y-%m-%d %H:%M}" if now is not None else "before the first recorded step"
        rows = [f"<b class='v2g-step'>step {run.recorded} of {run.n_steps}</b> ({sc.time.step_min} min each), {escape(when)}",
                f"{sim.fleet.n} EVs; business models: {escape(', '.join(a.kind for a in sim.aggregators))}; "
                f"transformer {sim.feeder.transformer_kva:,.0f} kVA" + (f" (network {escape(sc.feeder.network)})" if sc.feeder.network else "")]
        snap = _snap(run)
        if snap is not None:
            last = snap.system.iloc[-1]
            rows.append(f"now: net load {last['net_load_kw']:,.1f} kW, EV charging {last['ev_charge_kw']:,.1f} kW, "
                        f"V2G {last['v2g_discharge_kw']:,.1f} kW, transformer {last['transformer_loading_pct']:.1f} %, "
                        f"{int(last['n_plugged'])} EVs plugged in")
        if run.overrides:
            rows.append("knobs as <code>v2gsim run --set</code>: " + " ".join(f"<code>{escape(f'{k}={v}')}</code>" for k, v in run.overrides.items()))
        # knobs this scenario has nothing for: say so rather than leave the user guessing
        k = run.knobs
        if k.transformer_kva and sc.feeder.network:
            rows.append("(the transformer rating knob applies to scenarios without a feeder network; this one has its own transformers)")
        if k.business_model != AS_IN_SCENARIO and all(bm.kind == "battery_swap" for bm in sc.business_models):
            rows.append("(the business model knob leaves battery_swap entries as they are, and this scenario has no other)")
        if k.reward != AS_IN_SCENARIO and not rewards_in(sc):
            rows.append("(this scenario has no invitation or discharge request whose reward the knob could set)")
        rows.append("<i>changed knobs take effect on Reset</i>")
        solara.HTML(tag="div", unsafe_innerHTML=f"<h3>{escape(sc.name)}</h3>" + "".join(f"<p>{r}</p>" for r in rows))
    return col


def LoadCurve(run: LiveRun):
    """Base load, EV charging, V2G and the net load so far, on the run's whole time axis."""
    snap = _snap(run)
    if snap is None:
        return _waiting(run, "v2g-load-curve", "load curve")
    fig = plot_load_curve(snap)
    _days(fig.axes[0], snap.horizon)  # the curve fills the run's axis as it steps
    return _figure(fig, run, "v2g-load-curve")


def SocHistogram(run: LiveRun):
    """State of charge of every vehicle now, and at the departures so far."""
    snap = _snap(run)
    if snap is None:
        return _waiting(run, "v2g-soc", "state of charge")
    fig = plot_soc_distribution(snap)
    ax = fig.axes[0]
    for line in ax.get_lines():  # the plot's "end of the run" is this step here
        if line.get_label() == "at the end of the run":
            line.set_label(f"now ({run.now:%m-%d %H:%M}, {len(snap.vehicles)} EVs)")
    ax.legend(fontsize=8)
    return _figure(fig, run, "v2g-soc")


def SwapStations(run: LiveRun):
    """Packs ready, drivers waiting and grid power per swap station."""
    snap = _snap(run)
    if snap is None:
        return _waiting(run, "v2g-stations", "swap stations")
    if "stations" not in snap.extra:
        return _absent("v2g-stations", "swap stations: this scenario has none (battery_swap business model)")
    fig = plot_swap_stations(snap)
    _days(fig.axes[-1], snap.horizon)
    return _figure(fig, run, "v2g-stations")


def FeederVoltages(run: LiveRun):
    """Bus voltage envelope over time and every bus's voltage now (network scenarios)."""
    snap = _snap(run)
    if snap is None:
        return _waiting(run, "v2g-voltages", "feeder voltages")
    if "vm_min_pu" not in snap.system:
        return _absent("v2g-voltages", "feeder voltages: this scenario has a single transformer and no feeder network (feeder.network)")
    fig = new_figure((10, 6))
    ax_t, ax_bus = fig.subplots(2, 1)
    plot_voltage_envelope(snap, ax=ax_t)
    _days(ax_t, snap.horizon)
    vm = snap.bus_vm_pu
    fc = snap.metadata["scenario"]["feeder"]
    if vm is not None and len(vm):
        ax_bus.plot(range(len(vm)), vm, ".", color="#3b4f8f")
        for v in (fc["v_min_pu"], fc["v_max_pu"]):
            ax_bus.axhline(v, color="firebrick", ls="--", lw=1.0)
        ax_bus.set_xlabel("bus (position in the network's bus table)")
        ax_bus.set_ylabel("voltage (p.u.)")
        ax_bus.set_title(f"every bus now ({run.now:%Y-%m-%d %H:%M})")
    return _figure(fig, run, "v2g-voltages")


PANELS = [(Status, 0), (LoadCurve, 0), (SocHistogram, 0), (SwapStations, 0), (FeederVoltages, 0)]
