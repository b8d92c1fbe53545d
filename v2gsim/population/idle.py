"""Full cars at public chargers: drivers unplug after a grace period, or pay an idle fee.

Without this rule a car that plugs at a public charger keeps it until its next trip, so a DC
gun is held all night by a full car while others queue. Chinese public DC operators charge an
idle (occupancy) fee, 占位费, once charging has ended and a free period has passed, and drivers
at fast chargers wait with the car and move it when it is done (docs/mobility.md, "Full cars
leave"; the operators' published rules in :data:`OPERATOR_RULES`).

Per public site (``Site.leaves_when_done``, ``grace_min``, ``leave_share``,
``idle_fee_cny_per_min``, ``idle_fee_cap_cny``) and per step, over the vehicles plugged at such
a site (a mask kept by the engine's plug and unplug kernels, no loop over vehicles):

- a car is *done* when it holds its driver's charge target (``e_stop_kwh``: the driver's full
  point, never above where CC-CV charging ends; ``fleet.below_stop`` is False); ``done_since``
  is the step it became so (a car discharged below it again, by V2G, starts again when full);
- once ``grace_min`` has passed since, a driver who follows the rule (a share ``leave_share`` of
  drivers, drawn once per driver) unplugs: :meth:`due` returns them and the engine frees the
  charger (its queue is served in the same step); the car stays parked, unplugged, until its
  next trip;
- every other done car past the grace period pays ``idle_fee_cny_per_min`` for each minute of
  the step (up to ``idle_fee_cap_cny`` per session) to the site's operator (the grid company at
  a site no business model owns): ledger reason ``idle_fee``.

Drivers holding a trip back (waiting plugged, or charging at a detour: v2gsim.population.drivers)
leave by their own rule, and replayed sessions keep their recorded plug-out: neither is touched.
KPIs: ``unplugged_when_done`` (cars that left a charger this way), ``idle_min`` (minutes full
cars stayed plugged past the grace period), ``idle_fee_cny``.
"""

from __future__ import annotations

import numpy as np

from v2gsim.engine.actor import Actor, Signals
from v2gsim.market.settlement import DRIVERS, GRID_COMPANY

# Idle-fee rules Chinese fast-charging networks publish (grace after charging ends, min; fee,
# CNY/min; cap per session, CNY; None: no cap). Li Auto's announcement of January 2025 and the
# rules of XPeng, NIO and Tesla it was compared with, as reported by 扉旅汽车, "理想超充站收取超时
# 占用费了,120元/小时这么贵吗?", 2025-01-23 (http://www.91haoming.cn/news/show-299415.html) [B]
# (Li Auto: "相当于一小时120元", 120 CNY an hour). Tesla's grace period: 5 min, from a Q&A answer
# (https://www.bitauto.com/ask/100652884127) [C]; the article gives Tesla's two fee levels (3.20 or
# 6.40 CNY/min by how busy the site is) and no cap. No State Grid, TELD or Star Charge rule was
# found in the sources searched. The default grace period (Site.grace_min) is NIO's and Li Auto's.
OPERATOR_RULES: dict[str, tuple[float, float, float | None]] = {
    "li_auto": (15.0, 2.0, 200.0),
    "nio": (15.0, 0.5, 50.0),
    "xpeng": (30.0, 1.0, 100.0),
    "tesla_busy": (5.0, 6.4, None),
    "tesla": (5.0, 3.2, None),
}

_TOL_MIN = 1e-9


class IdleRule(Actor):
    """The rule at every public site that has it (see the module doc).

    Args:
        fleet: the fleet's arrays.
        sites: the scenario's ``Site`` configs, in site order.
        step_min: step length, minutes.
        n_warmup: steps before the recording starts.
        comply_u: one uniform draw per driver (n,); a driver follows ``leave_when_done`` at a site
            when it is below the site's ``leave_share``.
        eligible: (n,) drivers the rule applies to (False: replayed sessions).
        held: (n,) the drivers' hold states (v2gsim.population.drivers; 0: none), read only.
        site_owner: business model index of each site (-1: none); operator_ids: their ids.
    """

    def __init__(self, fleet, sites, step_min: float, n_warmup: int, comply_u: np.ndarray, eligible: np.ndarray, held: np.ndarray,
                 site_owner: np.ndarray, operator_ids):
        self.fleet = fleet
        self.step_min = float(step_min)
        self.n_warmup = n_warmup
        self.held = held
        public = np.array([s.kind == "public" for s in sites], bool)
        self.leave = np.array([s.leaves_when_done for s in sites], bool)
        self.fee = np.where(public, [s.idle_fee_cny_per_min for s in sites], 0.0)
        self.cap = np.array([s.idle_fee_cap_cny if s.idle_fee_cap_cny is not None else np.inf for s in sites])
        self.grace_min = np.array([s.grace_min for s in sites], float)
        self.share = np.array([s.leave_share for s in sites], float)
        # sites where the rule does anything
        self.site_rule = self.leave | (self.fee > 0)
        n = fleet.n
        self.comply_u = comply_u
        self.eligible = eligible
        self.at = np.zeros(n, bool)  # plugged at a site with the rule (kept by plugged / unplugged)
        self.done_since = np.full(n, -1, np.int64)
        self.seen = np.full(n, -2, np.int64)  # last step the car was seen done
        self.fee_session = np.zeros(n)  # idle fee paid in the current session (for the cap)
        payee = [operator_ids[k] if k >= 0 else GRID_COMPANY for k in site_owner]
        self.payees = sorted(set(payee))
        self.site_payee = np.array([self.payees.index(p) for p in payee], np.int64)
        self._fee_by_payee = np.zeros(len(self.payees))
        self.n_left = 0
        self.idle_min = 0.0
        self.fee_cny = 0.0

    @staticmethod
    def active(sites) -> bool:
        """Whether any site has the rule (without one the engine builds no IdleRule)."""
        return any(s.leaves_when_done or (s.kind == "public" and s.idle_fee_cny_per_min > 0) for s in sites)

    # ------------------------------------------------------------------ kept by the engine's kernels
    def plugged(self, v: np.ndarray, site: np.ndarray) -> None:
        """Vehicles ``v`` plugged in at ``site`` (k,)."""
        at = self.site_rule[site] & self.eligible[v]
        self.at[v] = at
        self.done_since[v] = -1
        self.seen[v] = -2
        self.fee_session[v] = 0.0

    def unplugged(self, v: np.ndarray) -> None:
        self.at[v] = False

    # ------------------------------------------------------------------ phase 2
    def due(self, step: int) -> np.ndarray:
        """Done cars past their grace period whose drivers unplug now; books the others' idle minutes and fee."""
        f = self.fleet
        # done: not below the target (``below_stop``, kept current by the physics); only those
        # are gathered, a small set, instead of every car plugged at such a site
        c = np.flatnonzero(self.at & ~f.below_stop)
        if not c.size:
            return c
        c = c[self.held[c] == 0]  # drivers holding a trip back leave by their own rule
        # done since this step unless seen done at the step before (a car discharged below its
        # target by V2G and charged back starts its grace period again)
        new = self.seen[c] != step - 1
        self.done_since[c[new]] = step
        self.seen[c] = step
        site = f.site[c]
        past = (step - self.done_since[c]) * self.step_min >= self.grace_min[site] - _TOL_MIN
        c, site = c[past], site[past]
        go = self.leave[site] & (self.comply_u[c] < self.share[site])
        stay, s_stay = c[~go], site[~go]
        if stay.size and step >= self.n_warmup:
            self.idle_min += stay.size * self.step_min
            fee = self.fee[s_stay]
            if fee.any():
                pay = np.minimum(fee * self.step_min, np.maximum(self.cap[s_stay] - self.fee_session[stay], 0.0))
                self.fee_session[stay] += pay
                self.fee_cny += float(pay.sum())
                self._fee_by_payee += np.bincount(self.site_payee[s_stay], weights=pay, minlength=len(self.payees))
        out = c[go]
        if step >= self.n_warmup:
            self.n_left += out.size
        return out

    # ------------------------------------------------------------------ phase 6
    def settle(self, sig: Signals, ledger) -> None:
        if self._fee_by_payee.any():
            for k in np.flatnonzero(self._fee_by_payee):
                ledger.post(sig.row, DRIVERS, self.payees[k], "idle_fee", 0.0, float(self._fee_by_payee[k]))
            self._fee_by_payee[:] = 0.0

    def begin_recording(self, step: int) -> None:
        self.n_left, self.idle_min, self.fee_cny = 0, 0.0, 0.0

    def kpis(self) -> dict[str, float]:
        return {"unplugged_when_done": float(self.n_left), "idle_min": float(self.idle_min), "idle_fee_cny": float(self.fee_cny)}
