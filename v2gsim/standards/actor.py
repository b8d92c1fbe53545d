"""What standards leave of the V2G capacity, recorded every step (only in scenarios that state
standards, so the others' tables are unchanged).

System columns (kW, at the end of each step's physics):

* ``v2g_plugged_kw``: the plug power of cars plugged where they can discharge -- the V2G
  capacity an operator can reach this step;
* ``v2g_blocked_kw``: the plug power of bidirectional cars plugged at a shared site's
  bidirectional charger that speaks none of their protocols -- capacity the standards leave
  stranded (a home pile is drawn among the types its owner's car fits, once; it is not counted).

KPIs: their mean and peak, the plug-ins at shared sites that could discharge and those blocked by
the protocol, and the arrivals that found no charger type their inlet fits.
"""

from __future__ import annotations

import numpy as np

from v2gsim.engine.actor import Actor, Signals


class StandardsActor(Actor):
    def __init__(self, fleet):
        self.fleet = fleet
        self.blocked = np.zeros(fleet.n, bool)  # plugged at a V2G charger without a common protocol
        self.n_incompatible = 0
        self.n_blocked = 0
        self.n_shared = 0

    # called by the engine when cars plug in (shared sites) or find no fitting charger
    def plugged(self, v: np.ndarray, blocked: np.ndarray, shared: np.ndarray) -> None:
        """Cars ``v`` plugged in, ``blocked`` by the protocol, at a ``shared`` site (all (k,))."""
        self.blocked[v] = blocked
        self.n_shared += int(shared.sum())
        self.n_blocked += int(blocked.sum())

    def incompatible(self, v: np.ndarray, site: np.ndarray) -> None:
        self.n_incompatible += v.size

    def depart(self, step: int, v: np.ndarray) -> None:
        self.blocked[v] = False

    def begin_recording(self, step: int) -> None:
        self.n_incompatible = self.n_blocked = self.n_shared = 0

    def declare(self, recorder) -> None:
        self.plugged_kw = recorder.declare_system("v2g_plugged_kw")
        self.blocked_kw = recorder.declare_system("v2g_blocked_kw")

    def record(self, sig: Signals) -> None:
        if sig.row < 0:
            return
        f = self.fleet
        self.plugged_kw[sig.row] = float(f.p_plug_max_kw[f.plugged & f.can_discharge].sum())
        self.blocked_kw[sig.row] = float(f.p_plug_max_kw[f.plugged & self.blocked].sum())

    def kpis(self) -> dict[str, float]:
        return {
            "v2g_plugged_kw_mean": float(self.plugged_kw.mean()) if self.plugged_kw.size else 0.0,
            "v2g_plugged_kw_peak": float(self.plugged_kw.max()) if self.plugged_kw.size else 0.0,
            "v2g_blocked_kw_mean": float(self.blocked_kw.mean()) if self.blocked_kw.size else 0.0,
            "standards_plugins_shared": float(self.n_shared),
            "standards_plugins_blocked": float(self.n_blocked),
            "standards_incompatible_arrivals": float(self.n_incompatible),
        }
