"""Preallocated recording: one float array per system quantity, filled step by step.

The engine's own columns are fixed (``SYSTEM_COLUMNS``, ``NETWORK_COLUMNS``); every actor
declares its system columns (:meth:`Recorder.declare_system`) when the model is built. At the
end the model hands a :class:`Recording` to :meth:`v2gsim.results.Results.from_recording`, which
builds the tables without seeing the model; pandas is touched only there. Sessions are recorded
for a sample of vehicles, so memory stays bounded for city-scale runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SYSTEM_COLUMNS = (
    "base_load_kw",
    "ev_charge_kw",
    "v2g_discharge_kw",
    "net_load_kw",
    "transformer_loading_pct",
    "price_cny_per_kwh",
    "v2g_price_cny_per_kwh",
    "n_plugged",
    "n_charging",
)
# added only when the scenario has a feeder.network
NETWORK_COLUMNS = (
    "pv_kw",
    "vm_min_pu",
    "vm_max_pu",
    "line_loading_max_pct",
    "losses_kw",
    "pf_converged",
    "pf_unsolved_buses",
    "headroom_kw",
)
SOC_BINS = np.linspace(0.0, 1.0, 21)


class Recorder:
    def __init__(self, n_steps: int, n_sites: int, trace_idx: np.ndarray):
        self.n_steps = n_steps
        self.cols = {c: np.full(n_steps, np.nan) for c in SYSTEM_COLUMNS}
        self.site_p_kw = np.zeros((n_steps, n_sites))
        self.trace_idx = trace_idx
        self.traces_soc = np.full((n_steps, trace_idx.size), np.nan, dtype=np.float32)
        self.departure_soc_counts = np.zeros(SOC_BINS.size - 1, dtype=np.int64)
        self._sessions: list[dict[str, np.ndarray]] = []
        self.bus_vm_pu = None  # [n_steps, n_bus] float32 when outputs.bus_voltages
        self.actor_cols: dict[str, np.ndarray] = {}  # system columns the actors declared, in declaration order
        # service per site and operator (sessions, unmet energy, drivers served): the totals per
        # vehicle cannot say where a driver was served, and sessions are recorded for a sample only
        self.site_sessions = np.zeros(n_sites, np.int64)
        self.site_unmet_kwh = np.zeros(n_sites)
        self.served = np.zeros((0, 1), bool)

    def enable_service(self, n_vehicles: int, n_operators: int) -> None:
        """Track which vehicles each operator served: ``served`` (N, n_operators + 1), column 0
        for sites no business model owns, column k + 1 for business model k."""
        self.served = np.zeros((n_vehicles, n_operators + 1), bool)

    def sessions_closed(self, v: np.ndarray, site: np.ndarray, owner: np.ndarray | None, unmet_kwh: np.ndarray,
                        n_site: np.ndarray | None = None, split: int | None = None) -> None:
        """Sessions of vehicles ``v`` at sites ``site`` of business models ``owner`` (-1: none;
        None when drivers served are not tracked) ended with ``unmet_kwh`` each (shapes (k,)).

        ``n_site``: ``np.bincount(site)`` when the caller has it. ``split``: the sessions are two
        groups, ``[:split]`` and the rest, whose unmet energy is added per group (as two calls
        would: a float sum in another order can differ in the last bit)."""
        self.site_sessions += np.bincount(site, minlength=self.site_sessions.size) if n_site is None else n_site
        m = self.site_unmet_kwh.size
        if split is None:
            self.site_unmet_kwh += np.bincount(site, weights=unmet_kwh, minlength=m)
        else:
            self.site_unmet_kwh += np.bincount(site[:split], weights=unmet_kwh[:split], minlength=m)
            self.site_unmet_kwh += np.bincount(site[split:], weights=unmet_kwh[split:], minlength=m)
        if self.served.shape[0]:
            self.served[v, owner + 1] = True

    def turned_away(self, site: np.ndarray, unmet_kwh: np.ndarray) -> None:
        """Replayed sessions found no free charger at ``site``: their request is unmet there."""
        self.site_unmet_kwh += np.bincount(site, weights=unmet_kwh, minlength=self.site_unmet_kwh.size)

    def declare_system(self, name: str) -> np.ndarray:
        """A system column of an actor, (n_steps,) zeros: actors add their value at each recorded
        row (two actors declaring one name share it and their values add up, e.g. two swap
        operators' ``swap_charge_kw``)."""
        if name in self.cols:
            raise ValueError(f"system column {name!r} is the engine's own; an actor cannot declare it")
        if name not in self.actor_cols:
            self.actor_cols[name] = np.zeros(self.n_steps)
        return self.actor_cols[name]

    def system(self, s, base_kw, ev_kw, v2g_kw, net_kw, loading_pct, price, v2g_price, n_plugged, n_charging, site_p_kw, fleet):
        c = self.cols
        c["base_load_kw"][s] = base_kw
        c["ev_charge_kw"][s] = ev_kw
        c["v2g_discharge_kw"][s] = v2g_kw
        c["net_load_kw"][s] = net_kw
        c["transformer_loading_pct"][s] = loading_pct
        c["price_cny_per_kwh"][s] = price
        c["v2g_price_cny_per_kwh"][s] = v2g_price
        c["n_plugged"][s] = n_plugged
        c["n_charging"][s] = n_charging
        self.site_p_kw[s] = site_p_kw
        if self.trace_idx.size:
            self.traces_soc[s] = fleet.e_kwh[self.trace_idx] / fleet.capacity_kwh[self.trace_idx]

    def enable_network(self, n_bus_voltages: int = 0) -> None:
        """Add the network columns (and per-bus voltages for ``n_bus_voltages`` > 0 buses)."""
        for c in NETWORK_COLUMNS:
            self.cols[c] = np.full(self.n_steps, np.nan)
        self.bus_vm_pu = np.full((self.n_steps, n_bus_voltages), np.nan, dtype=np.float32) if n_bus_voltages else None

    def network(self, s, s_clock, feeder) -> None:
        """Record a `NetworkFeeder`'s step (NaN results on a step that did not converge)."""
        c = self.cols
        r = feeder.result
        c["pv_kw"][s] = feeder.pv_total_kw[s_clock]
        c["vm_min_pu"][s] = r.vm_min_pu
        c["vm_max_pu"][s] = r.vm_max_pu
        c["line_loading_max_pct"][s] = r.line_loading_max_pct
        c["losses_kw"][s] = r.losses_kw
        c["pf_converged"][s] = float(r.converged)
        c["pf_unsolved_buses"][s] = r.n_bus_unsolved
        c["headroom_kw"][s] = feeder.headroom_kw
        if self.bus_vm_pu is not None:
            self.bus_vm_pu[s] = r.vm_pu

    def reset_events(self) -> None:
        """Forget departures and sessions seen so far (end of the warm-up)."""
        self.departure_soc_counts[:] = 0
        self._sessions.clear()
        self.site_sessions[:] = 0
        self.site_unmet_kwh[:] = 0.0
        self.served[:] = False

    def departure_soc(self, soc: np.ndarray) -> None:
        """Count departures per SOC bin, as ``np.histogram(soc, bins=SOC_BINS)``: bins closed on the
        left, the last also on the right, values outside [0, 1] and NaN not counted.

        The same sort-and-search histogram computes for explicit edges, without its argument
        checks: ~30 us less a call (half its time on the few departures of a detour, and it runs
        once per departure group, ~1,700 times in a 14-day city run; tests/test_recorder.py)."""
        s = np.sort(soc)
        cum = np.concatenate([s.searchsorted(SOC_BINS[:-1], "left"), s.searchsorted(SOC_BINS[-1:], "right")])
        self.departure_soc_counts += cum[1:] - cum[:-1]  # np.diff's result, without its checks

    def session_rows(self, v: np.ndarray, fleet, departure_step: int | None, unmet_kwh: np.ndarray) -> None:
        """Record the ended sessions of vehicles v (departure_step None: still plugged at the end)
        with the unmet energy the model counted for each (the fleet's columns gathered: new arrays, no copies needed)."""
        self._sessions.append(
            {
                "vehicle": v.copy(),
                "site": fleet.site[v],
                "arrival_step": fleet.session_start_step[v],
                "departure_step": np.full(v.size, -1 if departure_step is None else departure_step, np.int64),
                "stated_departure_step": fleet.t_depart_est_step[v],
                "e_arrival_kwh": fleet.session_e_start_kwh[v],
                "e_departure_kwh": fleet.e_kwh[v],
                "e_request_kwh": fleet.session_e_request_kwh[v],
                "e_delivered_kwh": fleet.session_grid_kwh[v],
                "unmet_kwh": np.asarray(unmet_kwh, dtype=np.float64).copy(),
                "capacity_kwh": fleet.capacity_kwh[v],
            }
        )

    def sessions(self) -> dict[str, np.ndarray]:
        if not self._sessions:
            return {}
        return {k: np.concatenate([p[k] for p in self._sessions]) for k in self._sessions[0]}


@dataclass(frozen=True)
class Recording:
    """What a finished run recorded: arrays and the actors' finished tables, no model.

    Attributes:
        times: start of each recorded step (n_steps,).
        clock: start of every step, warm-up included.
        dt_h: step length, h.
        system: system columns (name -> (n_steps,)): the engine's, then the actors' declared ones.
        site_ids: ids of the sites.
        site_p_kw: power per site, (n_steps, S).
        vehicles: per-vehicle columns (name -> (N,) array or Categorical).
        sessions: the sampled sessions' columns (empty without any).
        trace_idx: vehicles with SOC traces, (T,).
        traces_soc: their SOC per recorded step, (n_steps, T).
        departure_soc_counts: departures per SOC bin (``SOC_BINS``).
        bus_labels, bus_vm_pu: network buses and their voltage per step (None without them).
        tables: the actors' own tables (name -> DataFrame), e.g. ``stations``, ``wear``.
        kpis: counters kept by the engine and the actors (name -> number).
        ledger: the money ledger table (:mod:`v2gsim.market.settlement`).
    """

    times: pd.DatetimeIndex
    clock: pd.DatetimeIndex
    dt_h: float
    system: dict[str, np.ndarray]
    site_ids: tuple[str, ...]
    site_p_kw: np.ndarray
    vehicles: dict[str, Any]
    sessions: dict[str, np.ndarray]
    trace_idx: np.ndarray
    traces_soc: np.ndarray
    departure_soc_counts: np.ndarray
    bus_labels: np.ndarray | None = None
    bus_vm_pu: np.ndarray | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    kpis: dict[str, float] = field(default_factory=dict)
    ledger: pd.DataFrame | None = None
