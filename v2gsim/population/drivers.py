"""What drivers do when the car does not hold enough for the next trip, and at a full public site.

Nobody drives on an empty battery. Before each departure the driver compares the trip's energy
(known in advance, like the departure time) plus a reserve (``trip_reserve_soc``) with what the
car holds, and if it is short, acts in this order (docs/mobility.md; every default is an
assumption [C]):

1. **Wait** (plugged cars): stay plugged and leave once the car holds enough (or is full), at
   most ``max_departure_delay_min`` late. Counted: ``delayed_departures``, ``delay_min``.
2. **Swap** (swappable cars, unplugged or still short after the wait): the engine offers them to
   its actors (:meth:`~v2gsim.engine.actor.Actor.before_trip`); the swap network queues them at a
   station (reason ``long_trip``) and hands them back to go on with the trip. Counted as a
   detour (``detours``, ``detour_min``: the time at the station).
   **Detour** (other unplugged cars, or still short after the wait): drive to a public fast charger
   first: the driver's ``public_site`` if it has a free charger, else the public or DC site with
   most free chargers; if none is free, queue at the ``public_site``. Charge until the car holds
   enough (or is full), at most ``detour_max_charge_min`` (queueing included), then drive the
   trip; the detour adds ``detour_extra_min`` of driving (its energy is not modelled). Counted:
   ``detours``, ``detour_min`` (charging, queueing and the extra driving).
3. **Shorten or cancel**: if what the car holds above the reserve covers at least
   ``shorten_min_share`` of the trip, the trip is shortened to that share; otherwise it is
   cancelled and the car stays where it is. Counted: ``trips_shortened``, ``trips_cancelled``,
   ``km_lost``. A driver stranded at a detour charger takes what the car holds (any share). A
   trip home (or to the depot) is never cancelled: the driver brings the car as far as the
   charge goes (above the reserve) and the rest of the way by other means; the car arrives home
   with the reserve (the km not driven count as lost). Cancelling it would leave the car away
   from its charger, every later trip cancelled in turn.

A delayed trip arrives later by the same delay (its arrival event is held back and replayed);
a car whose late arrival is due in the step it is due to leave again arrives first, then leaves
(the engine's mobility phase). A departure that comes while the car is still on the road from a
late trip is started when the car arrives, late by as much (``delayed_departures``,
``delay_min``; its arrival held back by the same), unless that trip's own arrival could come
before the late one (one held-back arrival per car): then, and when the car is still held
waiting or at a detour or swap station, the departure is cancelled (counted).
Swappable cars may also swap on arriving at the stop before a long trip
(``swap_before_trip_reserve_soc``, the swap network's own rule).

Public sites (``kind: public``) keep a FIFO queue: a driver finding every charger busy waits
up to ``max_charger_wait_min`` and plugs in, in order of arrival, when a charger frees. Counted:
``queued``, ``queue_wait_min``, ``queue_left`` (gave up, or the next trip came first). Work and
depot sites keep their rule: a car finding no free charger parks unplugged
(``no_charger_events``, which also counts the arrivals that queue).

All state is per-vehicle arrays; each step touches only the held or queued vehicles.
"""

from __future__ import annotations

import numpy as np

from v2gsim.engine.limits import first_in_line
from v2gsim.population.fleet import DEPOT, DRIVING, HOME, PUBLIC, Fleet

NONE, WAIT, DETOUR, TRANSIT, SWAP = 0, 1, 2, 3, 4  # hold states
NORMAL, CAPTURE, SWALLOW, SHORTEN = 0, 1, 2, 3  # what to do with the vehicle's next arrival event
_TOL = 1e-9


class PublicQueues:
    """FIFO queues of drivers waiting for a charger at public sites (see the module doc)."""

    def __init__(self, fleet: Fleet, n_sites: int, step_min: float):
        n = fleet.n
        self.fleet = fleet
        self.step_min = step_min
        self.n_sites = n_sites
        self.site = np.full(n, -1, np.int32)
        self.since = np.zeros(n, np.int64)
        self.p_max_kw = np.zeros(n)
        self.est_step = np.zeros(n, np.int64)
        self.replay = np.zeros(n, bool)
        self.n_queued = 0
        self.qv = np.empty(0, np.int64)  # the queued vehicles, in order of arrival
        self.length = np.zeros(n_sites, np.int64)

    def join(self, step: int, v: np.ndarray, site: np.ndarray, p_max_kw: np.ndarray, est_step: np.ndarray, replay: np.ndarray) -> None:
        self.site[v] = site
        self.since[v] = step
        self.p_max_kw[v] = p_max_kw
        self.est_step[v] = est_step
        self.replay[v] = replay
        self.qv = np.concatenate([self.qv, v])  # in order of arrival: the FIFO order
        self.n_queued += v.size
        self.length += np.bincount(site, minlength=self.n_sites)
        self.fleet.queued[v] += 1

    def leave(self, step: int, v: np.ndarray) -> np.ndarray:
        """Vehicles ``v`` (any) leave their queue without a charger; returns those that were queued."""
        if not self.n_queued or not v.size:
            return v[:0]
        q = v[self.site[v] >= 0]
        if q.size:
            f = self.fleet
            f.queue_left[q] += 1
            f.queue_wait_min[q] += (step - self.since[q]) * self.step_min
            self._drop(q)
        return q

    def _drop(self, q: np.ndarray) -> None:
        self.length -= np.bincount(self.site[q], minlength=self.n_sites)
        self.site[q] = -1
        self.n_queued -= q.size
        self.qv = self.qv[self.site[self.qv] >= 0]

    def ordered(self) -> np.ndarray:
        """The queued vehicles in order of arrival (FIFO at each site)."""
        return self.qv

    def late(self, step: int, v: np.ndarray) -> np.ndarray:
        """Those of the queued ``v`` who have waited their limit (they leave unless served this step)."""
        return v[(step - self.since[v]) * self.step_min >= self.fleet.max_charger_wait_min[v] - _TOL]

    def served(self, step: int, v: np.ndarray) -> None:
        self.fleet.queue_wait_min[v] += (step - self.since[v]) * self.step_min
        self._drop(v)


class DriverChoices:
    """The per-vehicle state of drivers holding back a trip (see the module doc).

    ``engine`` is the :class:`~v2gsim.model.V2GModel`; its mobility kernels ``_leave`` (unplug or
    leave a queue and drive off), ``_plug`` (take a free charger) and ``_arrive`` do the moves.
    """

    def __init__(self, engine, fleet: Fleet, step_min: float, site_public_or_dc: np.ndarray):
        n = fleet.n
        self.engine = engine
        self.fleet = fleet
        self.step_min = float(step_min)
        self.fast_sites = np.flatnonzero(site_public_or_dc)  # detour targets
        self._fast = np.asarray(site_public_or_dc, bool)
        self.hold = np.zeros(n, np.int8)
        self.arr_action = np.zeros(n, np.int8)
        self.share = np.ones(n)  # share of the held trip that is driven
        self.need_kwh = np.zeros(n)
        self.trip_kwh = np.zeros(n)
        self.km = np.zeros(n)
        self.travel_steps = np.zeros(n, np.int64)
        self.since = np.zeros(n, np.int64)
        self.limit_step = np.zeros(n, np.int64)
        self.arr_step = np.zeros(n, np.int64)  # when a vehicle in TRANSIT arrives
        self.have = np.zeros(n, bool)  # its arrival event was captured
        self.to_base = np.zeros(n, bool)  # the held trip goes home (or to the depot): never cancelled
        self.p = {k: np.zeros(n, t) for k, t in (("loc", np.int8), ("site", np.int32), ("trip_kwh", float), ("km", float),
                                                 ("e_set_kwh", float), ("p_max_kw", float), ("depart_est_step", np.int64),
                                                 ("next_trip_kwh", float))}
        self.held = np.empty(0, np.int64)  # vehicles with hold != NONE (small), no duplicates
        self._in_held = np.zeros(n, bool)
        self._due_mask = np.zeros(n, bool)  # scratch for :meth:`_among`, all False between calls
        # a departure that came while the car was still on the road from a late trip, started when
        # the car arrives (its trip, the step it was due)
        self.deferred = np.zeros(n, bool)
        self.nx = {"trip_kwh": np.zeros(n), "km": np.zeros(n), "travel": np.zeros(n, np.int64), "dest": np.zeros(n, np.int8)}
        self.nx_since = np.zeros(n, np.int64)
        # Cheap skips of the per-step passes (each exact: it only says when a pass would find nothing).
        # ``_parked``: False once release saw no driver waiting or at a detour and none was put there
        # since; ``_due_from``: no driver in transit arrives before this step (a lower bound, lowered
        # wherever arr_step is set); ``_pending``: False once no vehicle has an arrival action.
        self._parked = False
        self._due_from = np.iinfo(np.int64).max
        self._pending = False

    # ------------------------------------------------------------------ departures

    def depart(self, step: int, v: np.ndarray, trip_kwh: np.ndarray, km: np.ndarray, travel: np.ndarray,
               dest: np.ndarray | None = None) -> np.ndarray:
        """Departures ``v`` of this step with their trips (``dest``: location codes, None: not
        home); returns those that leave now as planned."""
        f = self.fleet
        # only drivers in ``held`` can be busy (every hold is added there): most steps hold none,
        # and the check is a gather over every departure of the step
        busy = self.hold[v] != NONE if self.held.size else None
        # (np.count_nonzero: a third of ndarray.any's time on these small masks, same answer)
        if busy is not None and np.count_nonzero(busy):  # still held from an earlier trip
            vb = v[busy]
            # On the road from a late trip (its arrival already captured): the driver starts this
            # trip on arriving (:meth:`start_deferred`), as a real driver would, unless this trip's
            # own arrival event could come before the late arrival is replayed (one captured
            # arrival per car), or one trip already waits. Waiting, at a detour or a swap
            # station: the trip is dropped.
            late = (self.hold[vb] == TRANSIT) & self.have[vb] & ~self.deferred[vb] & (self.arr_step[vb] <= step + travel[busy])
            if np.count_nonzero(late):
                vd = vb[late]
                self.deferred[vd] = True
                self.nx_since[vd] = step
                self.nx["trip_kwh"][vd] = trip_kwh[busy][late]
                self.nx["km"][vd] = km[busy][late]
                self.nx["travel"][vd] = travel[busy][late]
                self.nx["dest"][vd] = -1 if dest is None else dest[busy][late]
                self.arr_action[vd] = CAPTURE  # its arrival comes later by the delay
                self._pending = True
            vc = vb[~late]
            self._cancel_count(vc, km[busy][~late])
            self.arr_action[vc] = SWALLOW
            self._pending = True
            v, trip_kwh, km, travel = v[~busy], trip_kwh[~busy], km[~busy], travel[~busy]
            dest = None if dest is None else dest[~busy]
        need = trip_kwh + f.e_trip_reserve_kwh[v]
        short = f.e_kwh[v] < need - _TOL
        if not np.count_nonzero(short):  # the usual step: nobody short, the zero-trip test below is not needed
            return v
        short &= trip_kwh > 0
        if not np.count_nonzero(short):
            return v
        s_v = v[short]
        self.need_kwh[s_v] = need[short]
        self.trip_kwh[s_v] = trip_kwh[short]
        self.km[s_v] = km[short]
        self.travel_steps[s_v] = travel[short]
        self.share[s_v] = 1.0
        self.have[s_v] = False
        if dest is None:
            self.to_base[s_v] = False
        else:  # two comparisons: np.isin costs ~30 us a call, more than the rest of a step's check
            d = dest[short]
            self.to_base[s_v] = (d == HOME) | (d == DEPOT)
        can_wait = f.plugged[s_v] & (f.max_departure_delay_min[s_v] >= self.step_min) & (f.e_kwh[s_v] < self._target(s_v) - _TOL)
        w = s_v[can_wait]
        if w.size:
            self.hold[w] = WAIT
            self.arr_action[w] = CAPTURE
            self._parked = self._pending = True
            self.since[w] = step
            self.limit_step[w] = step + np.floor(f.max_departure_delay_min[w] / self.step_min + _TOL).astype(np.int64)
            f.delayed_departures[w] += 1
            self._state_departure(step, w)
            self._add_held(w)
        self._detour_or_give_up(step, s_v[~can_wait], from_hold=False)
        return v[~short]

    def _target(self, v: np.ndarray) -> np.ndarray:
        """What a driver charges to before leaving: the trip's need, or the car's full point if less."""
        return np.minimum(self.need_kwh[v], self.fleet.e_full_kwh[v])

    def _state_departure(self, step: int, v: np.ndarray) -> None:
        """Tell the site's strategy when the driver now means to leave (plug power, no taper)."""
        f = self.fleet
        rate = np.maximum(f.p_plug_max_kw[v] * f.eta_charge[v] * self.engine.dt_h, 1e-9)
        steps = np.ceil(np.maximum(0.0, self._target(v) - f.e_kwh[v]) / rate).astype(np.int64)
        f.t_depart_est_step[v] = np.minimum(step + np.maximum(steps, 1), self.limit_step[v])

    def _detour_or_give_up(self, step: int, v: np.ndarray, from_hold: bool) -> None:
        """Short drivers not (or no longer) waiting plugged: a fast-charger detour, else shorten or cancel."""
        if not v.size:
            return
        f = self.fleet
        eng = self.engine
        # swappable cars swap (an actor, the swap network, takes them in)
        taken = np.zeros(v.size, bool)
        if eng._phase["before_trip"]:  # without a swap network nobody takes them: skip the masks
            first = (self.hold[v] != DETOUR) & (f.e_kwh[v] < self._target(v) - _TOL)
            if first.any():
                taken[first] = eng._before_trip(step, v[first], self.need_kwh[v[first]])
        if taken.any():
            vs = v[taken]
            self.since[vs] = step
            if not from_hold:
                self.arr_action[vs] = CAPTURE
                self._pending = True
            eng._leave(step, vs, notify=False)  # the swap queue has them: no depart notice
            self.hold[vs] = SWAP
            f.detours[vs] += 1
            self._add_held(vs)
            v = v[~taken]
        ok = (f.detour_max_charge_min[v] >= self.step_min) & (self.hold[v] != DETOUR) & (f.e_kwh[v] < self._target(v) - _TOL)
        cand = v[ok]
        site = self._free_fast_site(cand)
        got = site >= 0
        queue = ~got & (f.site_at[cand, PUBLIC] >= 0)
        going = got | queue
        go = cand[going]
        rest = v[~ok]  # the others give up, in v's order (a mask: np.setdiff1d sorts and costs more)
        if not going.all():
            ok[np.flatnonzero(ok)[~going]] = False
            rest = v[~ok]
        if go.size:
            st = np.where(got, site, f.site_at[cand, PUBLIC])[going]
            self.since[go] = step
            if not from_hold:
                self.arr_action[go] = CAPTURE
                self._pending = True
            eng._leave(step, go, count=True)
            self.hold[go] = DETOUR
            self._parked = True
            self.limit_step[go] = step + np.floor(f.detour_max_charge_min[go] / self.step_min + _TOL).astype(np.int64)
            f.detours[go] += 1
            f.location[go] = PUBLIC
            inf = np.full(go.size, np.inf)
            plugged = eng._plug(step, go, st, inf, np.full(go.size, step + 1, np.int64), np.zeros(go.size, bool), queue_if_full=True)
            self._detour_session(step, go[plugged])
            self._add_held(go)
        self._give_up(step, rest, at_detour=False)

    def _detour_session(self, step: int, v: np.ndarray) -> None:
        """A detour charge asks only for the trip's energy (the driver leaves once it is in)."""
        f = self.fleet
        f.session_e_request_kwh[v] = np.maximum(0.0, self._target(v) - f.e_kwh[v]) / f.eta_charge[v]
        self._state_departure(step, v)

    def _free_fast_site(self, v: np.ndarray) -> np.ndarray:
        """A free fast charger per driver (-1 none): the own public site first, else the fast site
        with most free chargers; sites with a queue count as full (it is served first)."""
        eng = self.engine
        out = np.full(v.size, -1, np.int64)
        if not v.size or not self.fast_sites.size:
            return out
        free = np.where(eng.queues.length > 0, 0, eng.site_ports - eng.site_occupied)
        own = self.fleet.site_at[v, PUBLIC]
        mine = (own >= 0) & self._fast[np.maximum(own, 0)]
        idx = np.flatnonzero(mine)
        if idx.size:
            o = own[idx]
            ok = first_in_line(o, free)
            out[idx[ok]] = o[ok]
            free = free - np.bincount(o[ok], minlength=eng.n_sites)
        rest = np.flatnonzero(out < 0)
        for st in self.fast_sites[np.argsort(-free[self.fast_sites], kind="stable")]:  # a few sites, not vehicles
            if not rest.size or free[st] <= 0:
                break
            k = int(min(free[st], rest.size))
            out[rest[:k]] = st
            rest = rest[k:]
        return out

    def _give_up(self, step: int, v: np.ndarray, at_detour: bool) -> None:
        """Shorten the trip to what the car covers above the reserve, or cancel it (see the module doc)."""
        if not v.size:
            return
        f = self.fleet
        share = np.clip((f.e_kwh[v] - f.e_trip_reserve_kwh[v]) / np.maximum(self.trip_kwh[v], 1e-12), 0.0, 1.0)
        # a trip home is never cancelled: that would leave the car away from its charger for good
        short = (share >= f.shorten_min_share[v]) | (at_detour & (share > 0)) | self.to_base[v]
        vs, vc = v[short], v[~short]
        if vs.size:
            f.trips_shortened[vs] += 1
            f.km_lost[vs] += self.km[vs] * (1.0 - share[short])
            held = self.hold[vs] != NONE
            self.share[vs] = share[short]
            free = vs[~held]  # at the planned departure: the arrival event comes as planned, shortened
            self.arr_action[free] = SHORTEN
            self._pending = True
            self._go(step, vs[held], extra=np.zeros(int(held.sum())))
            if free.size:
                self.engine._leave(step, free)
        if vc.size:
            self._cancel_count(vc, self.km[vc])
            # an arrival not yet seen is dropped when it comes; a captured one now (an action set
            # since, for a later trip, stays)
            captured = (self.hold[vc] != NONE) & self.have[vc]
            self.arr_action[vc[~captured]] = SWALLOW
            self._pending = True
            self.hold[vc] = NONE
            self.fleet.location[vc[self.fleet.location[vc] == DRIVING]] = PUBLIC  # stuck at a swap station: parks there
            self.have[vc] = False

    def _cancel_count(self, v: np.ndarray, km: np.ndarray) -> None:
        self.fleet.trips_cancelled[v] += 1
        self.fleet.km_lost[v] += km

    def _go(self, step: int, v: np.ndarray, extra: np.ndarray) -> None:
        """Held drivers ``v`` drive off now; they arrive after the trip's travel time (+ ``extra`` steps)."""
        if not v.size:
            return
        at_origin = self.hold[v] == WAIT  # detour drivers already left (and counted their departure)
        if at_origin.any():
            self.engine._leave(step, v[at_origin])
        if not at_origin.all():
            self.engine._leave(step, v[~at_origin], count=False)
        self.hold[v] = TRANSIT
        arr_step = step + np.ceil(self.travel_steps[v] * self.share[v] - _TOL).astype(np.int64) + extra
        self.arr_step[v] = arr_step
        self._due_from = min(self._due_from, int(arr_step.min()))

    def _add_held(self, v: np.ndarray) -> None:
        new = v[~self._in_held[v]]
        self._in_held[new] = True
        self.held = np.concatenate([self.held, new])

    def _prune(self) -> None:
        """Drop the drivers no longer held from :attr:`held`."""
        keep = self.hold[self.held] != NONE
        if not keep.all():
            self._in_held[self.held[~keep]] = False
            self.held = self.held[keep]

    # ------------------------------------------------------------------ each step

    def release(self, step: int) -> None:
        """Held drivers whose car now holds enough drive off; those past their limit go on to the next option."""
        if not self.held.size or not self._parked:
            return
        f = self.fleet
        h = self.held
        st = self.hold[h]
        at = (st == WAIT) | (st == DETOUR)  # the others are in transit or at a swap station
        if not np.count_nonzero(at):
            self._parked = False  # until a driver waits or detours again
            return
        h, st = h[at], st[at]
        enough = f.e_kwh[h] >= self._target(h) - 1e-6
        late = step >= self.limit_step[h]
        # waiting plugged at the origin
        w = (st == WAIT) & (enough | late)
        if w.any():
            vw = h[w]
            f.delay_min[vw] += (step - self.since[vw]) * self.step_min
            ready = enough[w]
            self._leave_short(step, vw[ready], extra_min=np.zeros(int(ready.sum())))
            self._detour_or_give_up(step, vw[~ready], from_hold=True)
        # charging (or queued) at a detour
        d = (st == DETOUR) & (enough | late)
        if d.any():
            vd = h[d]
            f.detour_min[vd] += (step - self.since[vd]) * self.step_min + f.detour_extra_min[vd]
            ready = enough[d]
            self.engine.queues.leave(step, vd)
            self._leave_short(step, vd[ready], extra_min=f.detour_extra_min[vd[ready]])
            self._give_up(step, vd[~ready], at_detour=True)
        self._prune()

    def _leave_short(self, step: int, v: np.ndarray, extra_min: np.ndarray) -> None:
        """Drive the held trip now; a car full but still short of the need drives the share it covers."""
        if not v.size:
            return
        f = self.fleet
        share = np.clip((f.e_kwh[v] - f.e_trip_reserve_kwh[v]) / np.maximum(self.trip_kwh[v], 1e-12), 0.0, 1.0)
        part = share < 1.0 - 1e-12
        if part.any():
            vp = v[part]
            f.trips_shortened[vp] += 1
            f.km_lost[vp] += self.km[vp] * (1.0 - share[part])
        self.share[v] = np.minimum(share, 1.0)
        self._go(step, v, extra=np.ceil(extra_min / self.step_min - _TOL).astype(np.int64))

    def due_arrivals(self, step: int) -> np.ndarray:
        """Vehicles in transit whose held-back arrival is due this step."""
        if not self.held.size or step < self._due_from:
            return self.held[:0]
        h = self.held
        transit = self.hold[h] == TRANSIT
        arr_step = self.arr_step[h]
        due = transit & self.have[h] & (arr_step <= step)
        rest = transit & ~due  # the bound for the next steps: the earliest of those still in transit
        self._due_from = int(arr_step[rest].min()) if np.count_nonzero(rest) else np.iinfo(np.int64).max
        return h[due]

    def take_due(self, step: int) -> tuple[np.ndarray, dict]:
        """The held-back arrivals due this step and their payloads, marked arrived."""
        due = self.due_arrivals(step)
        if not due.size:
            return due, {}
        p = self.payload(due, step)
        self.arrived(due)
        return due, p

    def _among(self, v: np.ndarray, others: np.ndarray) -> np.ndarray:
        """Mask over vehicles ``v`` of those also in ``others`` (a scratch mask over the fleet, all
        False again on return: O(k), not a sort like ``np.isin``)."""
        self._due_mask[others] = True
        m = self._due_mask[v]
        self._due_mask[others] = False
        return m

    def mark(self, due: np.ndarray, dep_vehicle: np.ndarray) -> np.ndarray | None:
        """Mask over a step's departures ``dep_vehicle`` of the cars among ``due`` (late arrivals
        due this step), or None if there are none: they arrive before they leave again."""
        again = self._among(dep_vehicle, due)
        return again if np.count_nonzero(again) else None

    def leave_again(self, due: np.ndarray, dep_vehicle: np.ndarray | None) -> np.ndarray | None:
        """Mask over ``due`` (late arrivals due this step) of the cars that leave again in this
        step: a deferred trip, or a departure among ``dep_vehicle``; None if none."""
        m = self.deferred[due]
        if dep_vehicle is not None and dep_vehicle.size:
            m = m | self._among(due, dep_vehicle)
        return m if np.count_nonzero(m) else None

    def start_deferred(self, step: int, v: np.ndarray) -> None:
        """Cars ``v`` (just arrived) with a deferred trip start it now, late by the time they were
        still on the road: the usual check first (a short driver waits, detours, shortens or
        cancels), then they leave with the trip's arrival held back by the delay. Counted:
        ``delay_min`` (every one), ``delayed_departures`` (those leaving now; a driver who waits
        to charge is counted by the wait)."""
        v = v[self.deferred[v]]
        if not v.size:
            return
        f = self.fleet
        self.deferred[v] = False
        f.delay_min[v] += (step - self.nx_since[v]) * self.step_min
        trip, km, travel, dest = (self.nx[k][v] for k in ("trip_kwh", "km", "travel", "dest"))
        go = self.depart(step, v, trip, km, travel, dest)
        if not go.size:
            return
        k = np.flatnonzero(np.isin(v, go))  # go is v's leavers, in v's order
        f.delayed_departures[go] += 1
        self.trip_kwh[go] = trip[k]
        self.need_kwh[go] = trip[k] + f.e_trip_reserve_kwh[go]
        self.km[go] = km[k]
        self.travel_steps[go] = travel[k]
        self.share[go] = 1.0
        self.to_base[go] = (dest[k] == HOME) | (dest[k] == DEPOT)
        self.hold[go] = WAIT  # leaves from where it stands: _go unplugs it and counts the departure
        self._add_held(go)
        self._go(step, go, extra=np.zeros(go.size, np.int64))

    def after_swap(self, step: int, v: np.ndarray) -> None:
        """Drivers ``v`` the swap network hands back (swapped, or tired of waiting): on with the trip."""
        f = self.fleet
        f.detour_min[v] += (step - self.since[v]) * self.step_min
        enough = f.e_kwh[v] >= self._target(v) - 1e-6
        self._leave_short(step, v[enough], extra_min=np.zeros(int(enough.sum())))
        self._give_up(step, v[~enough], at_detour=True)
        self._prune()

    def queue_gave_up(self, step: int, v: np.ndarray) -> None:
        """Detour drivers ``v`` left the fast charger's queue (waiting limit): they drive what the car covers."""
        f = self.fleet
        f.detour_min[v] += (step - self.since[v]) * self.step_min + f.detour_extra_min[v]
        self._give_up(step, v, at_detour=True)
        self._prune()

    def arrived(self, v: np.ndarray) -> None:
        self.hold[v] = NONE
        self.have[v] = False
        self._prune()

    def filter_arrivals(self, v: np.ndarray, arr: dict) -> np.ndarray | None:
        """Arrival events of this step (``arr``: the DayEvents arrays, sliced): held trips'
        arrivals are captured (replayed later), cancelled ones dropped, shortened ones scaled.
        Returns the mask of arrivals to process now, or None for all."""
        if not self._pending:  # no vehicle has an action: skip the gather over the step's arrivals
            return None
        act = self.arr_action[v]
        if not np.count_nonzero(act):
            return None
        cap = np.flatnonzero(act == CAPTURE)  # positions once: a boolean mask is re-scanned by each of the 8 gathers
        if cap.size:
            vc = v[cap]
            for k, a in self.p.items():
                a[vc] = arr[k].take(cap)
            self.have[vc] = True
        sh = act == SHORTEN
        if sh.any():  # (copies: the arrays are views of the day's events)
            arr["trip_kwh"] = np.where(sh, arr["trip_kwh"] * self.share[v], arr["trip_kwh"])
            arr["km"] = np.where(sh, arr["km"] * self.share[v], arr["km"])
        self.arr_action[v] = NORMAL
        self._pending = bool(np.count_nonzero(self.arr_action))  # one pass over the fleet's int8, a few us
        return (act == NORMAL) | sh

    def payload(self, v: np.ndarray, step: int) -> dict:
        """The captured arrival of ``v``, the trip scaled to the share driven, due now."""
        p = {k: a[v].copy() for k, a in self.p.items()}
        p["trip_kwh"] *= self.share[v]
        p["km"] *= self.share[v]
        p["depart_est_step"] = np.maximum(p["depart_est_step"], step + 1)
        return p

