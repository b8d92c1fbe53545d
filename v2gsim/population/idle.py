"""Full cars at public chargers: drivers unplug after a grace period, or pay an idle fee.

Without this rule a car that plugs at a public charger keeps it until its next trip, so a DC
gun is held all night by a full car while others queue. Chinese public DC operators charge an
idle (occupancy) fee, 占位费, once charging has ended and a free period has passed, and drivers
at fast chargers wait with the car and move it when it is done (docs/mobility.md, "Full cars
leave"; the operators' published rules in :data:`OPERATOR_RULES`).

Per public site (``Site.leaves_when_done``, ``grace_min``, ``leave_share``,
``idle_fee_cny_per_min``, ``idle_fee_cap_cny``) and per step, over the vehicles plugged at such
a site (a mask and a compact list of them kept by the engine's plug and unplug kernels, no
loop over vehicles; the engine closes the done cars' sessions in the same call as the step's
departures, ``V2GModel._leave``):

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


def _site_rule(sites) -> np.ndarray:
    """Per site (in site order): whether the rule does anything there, drivers leaving or an idle
    fee (a fee only counts at public sites; the scenario refuses one elsewhere)."""
    return np.array([s.leaves_when_done or (s.kind == "public" and s.idle_fee_cny_per_min > 0) for s in sites], bool)


def _grace_steps(grace_min: np.ndarray, step_min: float) -> np.ndarray:
    """Per site: the fewest whole steps ``d`` after a car is done with ``d * step_min >= grace_min - tol``.

    The rule's test on a car done for ``d`` steps, written once per site as an integer so the
    per-step test is ``step >= done_since + d``; the same float comparison decides each ``d``
    (ceil of the quotient can be one off either way by rounding; the loops fix it), so the cars
    that leave are the same as with the comparison made every step."""
    out = np.zeros(grace_min.size, np.int64)
    for k, g in enumerate(grace_min):  # a few sites, not vehicles
        d = max(0, int(np.ceil((g - _TOL_MIN) / step_min)))
        while d * step_min < g - _TOL_MIN:
            d += 1
        while d > 0 and (d - 1) * step_min >= g - _TOL_MIN:
            d -= 1
        out[k] = d
    return out


class IdleRule(Actor):
    """The rule at every public site that has it (see the module doc).

    The cars plugged at rule sites are kept twice: ``at``, a mask over the fleet (tests and
    readers), and a compact list of their indices that the engine's plug kernel appends to and
    :meth:`due` compacts once a step (dropping those unplugged since). On the bench city ~2,000 of
    100,000 cars are plugged at the DC hubs at a time, so gathering their ``below_stop`` costs a
    fraction of scanning the whole fleet every step (bench/README.md, "15 drivers").

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
        self.grace_steps = _grace_steps(self.grace_min, self.step_min)
        self.share = np.array([s.leave_share for s in sites], float)
        self.site_rule = _site_rule(sites)  # sites where the rule does anything
        n = fleet.n
        self.comply_u = comply_u
        self.eligible = eligible
        self._all_eligible = bool(eligible.all())
        self.at = np.zeros(n, bool)  # plugged at a site with the rule (kept by plugged / unplugged)
        # the compact list: _idx[:_n_idx] holds every car with ``at`` (each once: _listed), and
        # after unplugging, until the next compaction, some without it
        self._idx = np.empty(max(n, 16), np.int64)
        self._n_idx = 0
        self._listed = np.zeros(n, bool)
        self._fees = bool(self.fee.any())
        # every rule site sends every driver away (leave_when_done, leave_share 1; a draw is < 1)
        self._all_go = bool((self.leave[self.site_rule] & (self.share[self.site_rule] >= 1.0)).all())
        self.until = np.zeros(n, np.int64)  # the step a done car's grace period ends
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
        return bool(_site_rule(sites).any())

    # ------------------------------------------------------------------ kept by the engine's kernels
    def plugged(self, v: np.ndarray, site: np.ndarray) -> None:
        """Vehicles ``v`` plugged in at ``site`` (k,); all were unplugged, so ``at`` is False for
        them (the engine's unplug kernel calls :meth:`unplugged`): only those at rule sites are
        touched, the rule reads no other car's state."""
        at = self.site_rule[site]
        if not self._all_eligible:
            at &= self.eligible[v]
        if not np.count_nonzero(at):  # most plug-ins are at home or work
            return
        va = v[at]
        self.at[va] = True
        self.seen[va] = -2  # not seen done in this session: its grace period starts when it is
        if self._fees:
            self.fee_session[va] = 0.0
        add = va[~self._listed[va]]  # unplugged and back before a compaction: listed already
        if add.size:
            m = self._n_idx
            if m + add.size > self._idx.size:
                self._idx = np.concatenate([self._idx[:m], np.empty(max(m, add.size), np.int64)])
            self._idx[m:m + add.size] = add
            self._n_idx = m + add.size
            self._listed[add] = True

    def unplugged(self, v: np.ndarray) -> None:
        self.at[v] = False  # the list drops them at its next compaction

    def _plugged_here(self) -> np.ndarray:
        """The cars plugged at rule sites, from the compact list (compacted: those unplugged dropped)."""
        idx = self._idx[:self._n_idx]
        keep = self.at[idx]
        gone = idx[~keep]
        if gone.size:
            self._listed[gone] = False
            idx = idx[keep]
            self._n_idx = idx.size
            self._idx[:idx.size] = idx
        return idx

    # ------------------------------------------------------------------ phase 2
    def due(self, step: int) -> np.ndarray:
        """Done cars past their grace period whose drivers unplug now (ascending); books the others' idle minutes and fee."""
        f = self.fleet
        idx = self._plugged_here()
        # done: not below the target (``below_stop``, kept current by the physics)
        c = idx[~f.below_stop[idx]]
        if not c.size:
            return c
        c = c[self.held[c] == 0]  # drivers holding a trip back leave by their own rule
        # done since this step unless seen done at the step before (a car discharged below its
        # target by V2G and charged back starts its grace period again): its grace period ends
        # ``grace_steps`` of its site later (plugged resets ``seen``, so a new session starts anew)
        new = c[self.seen[c] != step - 1]
        self.seen[c] = step
        self.until[new] = step + self.grace_steps[f.site[new]]
        c = c[self.until[c] <= step]
        if not c.size:
            return c
        c.sort()  # the list's order is its plug-ins': vehicle order, as a scan of the fleet gives
        if self._all_go:  # every rule site has leave_when_done with leave_share 1: nobody stays
            out = c
        else:
            site = f.site[c]
            go = self.leave[site] & (self.comply_u[c] < self.share[site])
            out, stay, s_stay = c[go], c[~go], site[~go]
            if stay.size and step >= self.n_warmup:
                self.idle_min += stay.size * self.step_min
                fee = self.fee[s_stay]
                if fee.any():
                    pay = np.minimum(fee * self.step_min, np.maximum(self.cap[s_stay] - self.fee_session[stay], 0.0))
                    self.fee_session[stay] += pay
                    self.fee_cny += float(pay.sum())
                    self._fee_by_payee += np.bincount(self.site_payee[s_stay], weights=pay, minlength=len(self.payees))
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
