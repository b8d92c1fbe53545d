"""The drivers' side of a swap network: who comes (and why), FIFO queues per station, the bays'
pace, the swap itself (one pack each way) and the drivers who leave without one.

:class:`SwapQueues` is a part of :class:`~v2gsim.agents.swap_station.SwapNetwork` (it uses the
arrays the network builds: ``packs``, ``slot_pack``, ``veh_pack``, ``q_*``, ...).
"""

from __future__ import annotations

import numpy as np

from v2gsim.engine.actor import Arrivals, Released
from v2gsim.population.fleet import DRIVING

# why a driver came to the station (``swaps.reason``): arrived low, or the next trip is too long for the charge left
REASONS = ("low_soc", "long_trip")
LOW_SOC, LONG_TRIP = 0, 1


class SwapQueues:
    """The mobility phase of a swap network: :meth:`before_trip`, :meth:`depart`, :meth:`arrive`, :meth:`release`."""

    def queue_counts(self) -> np.ndarray:
        """Drivers waiting per station, shape (S,)."""
        return self._qcount.copy()

    def depart(self, step: int, v: np.ndarray) -> None:
        """Queued drivers whose next trip starts leave the queue without a swap."""
        if not self.n_queued:
            return
        q = v[self.q_station[v] >= 0]
        if q.size:
            self._leave(step, q, "departed")

    def arrive(self, step: int, arrivals: Arrivals) -> np.ndarray:
        """Arriving vehicles with energy ``e_kwh`` (after the trip) and ``next_trip_kwh``
        ahead: returns the mask of those who head to a swap station instead (held in its
        queue), shape (k,)."""
        a = arrivals
        v, e_kwh, loc, site, p_max_kw, est_step, replay, next_trip_kwh = a.v, a.e_kwh, a.loc, a.site, a.p_max_kw, a.est_step, a.replay, a.next_trip_kwh
        low = e_kwh < self.veh_below_kwh[v]
        # before a long trip: the next trip would leave less than the reserve; drivers plugging in
        # at their own pile here are left out, they charge there before leaving
        own_pile = (site >= 0) & self._site_private[np.maximum(site, 0)]
        long_trip = ~low & ~own_pile & (next_trip_kwh > 0) & (e_kwh - next_trip_kwh < self.veh_trip_reserve_kwh[v])
        go = (low | long_trip) & ~replay
        if not go.any():
            return go
        w = np.flatnonzero(go)
        self._enqueue(step, v[w], np.where(long_trip[w], LONG_TRIP, LOW_SOC), loc[w], site[w], p_max_kw[w], est_step[w])
        return go

    def before_trip(self, step: int, v: np.ndarray, e_kwh: np.ndarray, need_kwh: np.ndarray) -> np.ndarray:
        """Drivers about to start a trip their charge does not cover (:mod:`v2gsim.population.drivers`):
        the swappable ones queue at a compatible station first (reason ``long_trip``) and are
        released with ``loc`` DRIVING, to go on with the trip. Returns the mask of those taken (k,)."""
        go = self.veh_standard[v] >= 0
        queued = go & (self.q_station[v] >= 0)  # already in a queue (came low): they stay, and go on with the trip after
        if queued.any():
            self.q_loc[v[queued]] = DRIVING
            self.q_site[v[queued]] = -1
            self.q_reason[v[queued]] = LONG_TRIP
        go_new = go & ~queued
        if go_new.any():
            k = int(go_new.sum())
            self._enqueue(step, v[go_new], np.full(k, LONG_TRIP), np.full(k, DRIVING, np.int8), np.full(k, -1, np.int32),
                          np.full(k, np.inf), np.full(k, step + 1, np.int64))
        return go

    def _enqueue(self, step, vw, reason, loc, site, p_max_kw, est_step) -> None:
        """Vehicles ``vw`` join the queue of the compatible station with most ready packs net of its queue."""
        self.q_reason[vw] = reason
        score = (self.ready_counts() - self.queue_counts()).astype(float)
        sc = np.where(self.compat[self.veh_standard[vw]], score[None, :], -np.inf)
        sc[np.arange(vw.size), self.veh_pref[vw]] += 0.5
        st = np.argmax(sc, axis=1)
        self.q_station[vw] = st
        self.q_seq[vw] = self._seq + np.arange(vw.size)
        self._seq += vw.size
        self.q_since[vw] = step
        self.q_loc[vw] = loc
        self.q_site[vw] = site
        self.q_p_max[vw] = p_max_kw
        self.q_est[vw] = est_step
        self.n_queued += vw.size
        came = np.bincount(st, minlength=self.n_stations)
        self._qcount += came
        self._demand += came
        self.fleet.location[vw] = DRIVING  # on the forecourt, not parked at a charger

    def release(self, step: int) -> Released | None:
        """Serve the queues (FIFO, bays, ready packs); return the drivers swapped or leaving,
        who go on to their destination, or None."""
        self._swaps_step[:] = 0.0
        self._swaps_long_trip_step[:] = 0.0
        self._fee_v, self._fee_kwh = [], []  # the drivers swapped this step and the energy each gained (the swap fee)
        if not self.n_queued:
            self._credits[:] = 0.0  # idle bays bank nothing
            return None
        qv = np.flatnonzero(self.q_station >= 0)
        is_late = (step - self.q_since[qv]) * self.step_min > self.cfg.max_wait_min + 1e-9
        late = qv[is_late]
        out_v = [late]
        if late.size:
            self._leave(step, late, "waited too long", finish=False)
            qv = qv[~is_late]
        qv = qv[np.lexsort((self.q_seq[qv], self.q_station[qv]))]
        qst = self.q_station[qv]
        e = self.packs.e_kwh[self.slot_pack]
        ready = e >= self._slot_static()[5] - 1e-9
        avail = self._credits + self.st_rate_per_step
        served_v, served_slot, pos = [], [], []
        for k in np.unique(qst):  # loop over the few stations with a queue
            qk = qv[qst == k]
            lo, hi = self.slot_start[k], self.slot_start[k + 1]
            rs = lo + np.flatnonzero(ready[lo:hi])
            rs = rs[np.argsort(-e[rs], kind="stable")]
            m = int(min(qk.size, rs.size, np.floor(avail[k] + 1e-9)))
            avail[k] -= m
            if m:
                served_v.append(qk[:m])
                served_slot.append(rs[:m])
                pos.append(np.arange(m))
        # a busy bay carries the fraction of a swap into the next step; an idle one banks nothing
        busy = np.bincount(qst, minlength=self.n_stations) > 0
        self._credits = np.where(busy, avail - np.floor(avail + 1e-9), 0.0).clip(0.0, 1.0)
        if served_v:
            sv = np.concatenate(served_v)
            self._swap(step, sv, np.concatenate(served_slot), np.concatenate(pos))
            out_v.append(sv)
        v = np.concatenate(out_v)
        if not v.size:
            return None
        rel = Released(v, self.q_loc[v].copy(), self.q_site[v].copy(), self.q_p_max[v].copy(), self.q_est[v].copy())
        self._qcount -= np.bincount(self.q_station[v], minlength=self.n_stations)
        self.q_station[v] = -1
        self.n_queued -= v.size
        return rel

    def _swap(self, step, v, slots, pos) -> None:
        """Vehicle ``v[i]`` gives its pack to rack slot ``slots[i]`` and takes the pack there."""
        f = self.fleet
        pk = self.packs
        out_p = self.veh_pack[v]  # leaves the vehicle
        in_p = self.slot_pack[slots]  # enters the vehicle
        st = self.slot_station[slots]
        if self.wear is not None:  # the pack's ageing follows the pack: hand over throughput, take the new pack's capacity
            self.wear.on_swap(v, out_p, in_p)
        e_out = f.e_kwh[v].copy()
        e_in = pk.e_kwh[in_p].copy()
        pk.e_kwh[out_p] = e_out
        pk.vehicle[out_p], pk.station[out_p], pk.slot[out_p] = -1, st, slots
        pk.vehicle[in_p], pk.station[in_p], pk.slot[in_p] = v, -1, -1
        pk.n_swaps[out_p] += 1
        pk.n_swaps[in_p] += 1
        self.slot_pack[slots] = out_p
        self._slot_version = object()
        self.veh_pack[v] = in_p
        e_new = np.minimum(e_in, f.capacity_kwh[v])
        f.e_kwh[v] = e_new
        self.veh_swap_net_kwh[v] += e_new - e_out
        self._fee_v.append(v.copy())
        self._fee_kwh.append(np.maximum(e_new - e_out, 0.0))
        self._swaps_step += np.bincount(st, minlength=self.n_stations)
        self._swaps_long_trip_step += np.bincount(st, weights=self.q_reason[v] == LONG_TRIP, minlength=self.n_stations)
        wait = (step - self.q_since[v]) * self.step_min + pos * self.st_interval_min[st]
        self._row(step, st, v, out_p, in_p, e_out, e_new, wait, "swapped")

    def _leave(self, step, v, why, finish=True) -> None:
        st = self.q_station[v]
        self._left_step += np.bincount(st, minlength=self.n_stations)
        e = self.fleet.e_kwh[v]
        self._row(step, st, v, self.veh_pack[v], np.full(v.size, -1), e, e, (step - self.q_since[v]) * self.step_min, why)
        if finish:  # departed: the destination arrival never happens
            self._qcount -= np.bincount(st, minlength=self.n_stations)
            self.q_station[v] = -1
            self.n_queued -= v.size

    def _row(self, step, st, v, out_p, in_p, e_out, e_in, wait, outcome) -> None:
        if step < self.n_warmup:
            return
        self._rows.append({"step": np.full(v.size, step), "station": st.astype(np.int64), "vehicle": v.astype(np.int64),
                           "pack_out": out_p.astype(np.int64), "pack_in": in_p.astype(np.int64),
                           "e_out_kwh": np.asarray(e_out, float), "e_in_kwh": np.asarray(e_in, float),
                           "wait_min": np.asarray(wait, float), "outcome": np.full(v.size, outcome, object),
                           "reason": self.q_reason[v].astype(np.int8)})
