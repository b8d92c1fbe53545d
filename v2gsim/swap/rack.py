"""The racks of a swap network: what the station EMS sees (:class:`StationObservation`), its
plan (the decide phase) and the racks' charging and discharging within slot and station limits
(the physics phase, the connection through :mod:`v2gsim.engine.limits`).

:class:`Racks` is a part of :class:`~v2gsim.agents.swap_station.SwapNetwork` (it uses the arrays
the network builds: ``packs``, ``slot_pack``, ``slot_station``, ``st_*``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v2gsim.engine.actor import Signals
from v2gsim.engine.limits import binding, deliverable_discharge_kw, limit_export, limit_import
from v2gsim.physics.battery import charge_to, discharge_to


@dataclass(frozen=True)
class StationObservation:
    """What the station EMS sees at one step (read-only arrays; R rack slots, S stations).

    Per slot: ``slot_station``, ``e_kwh``, ``capacity_kwh`` (usable), ``e_ready_kwh`` (ready
    threshold), ``e_full_kwh`` (CC-CV end), ``slot_p_max_kw``, ``eta_charge``,
    ``eta_discharge``, ``wear_cost_cny_per_kwh`` (the packs' published price, set at the last wear
    period's stressors), ``wear_discharge_cny_per_kwh`` (the wear of discharging the slot's pack
    at its slot power down to ``discharge_floor_soc`` and recharging it, :meth:`Racks.cycle_wear_cny_per_kwh`:
    what the EMS weighs a discharge against). Per station: ``slot_start`` (S+1,),
    ``st_packs``, ``st_grid_limit_kw``, ``st_bidirectional``, ``queue`` (drivers waiting),
    ``demand`` (drivers who came this step). ``feeder_headroom_kw``: the feeder's headroom after
    the last step (inf if unknown); ``prev_charge_kw``: all stations' charging in the last step,
    ``st_prev_charge_kw`` per station (S,) (the draw a station's demand meter saw); ``e_knee_kwh``
    per slot: where its pack's CC-CV taper starts (what a slot can take in a step).
    """

    step: int
    dt_h: float
    price: float
    v2g_price: float
    n_stations: int
    slot_station: np.ndarray
    slot_start: np.ndarray
    e_kwh: np.ndarray
    capacity_kwh: np.ndarray
    e_ready_kwh: np.ndarray
    e_full_kwh: np.ndarray
    slot_p_max_kw: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    wear_cost_cny_per_kwh: np.ndarray
    wear_discharge_cny_per_kwh: np.ndarray
    st_packs: np.ndarray
    st_grid_limit_kw: np.ndarray
    st_bidirectional: np.ndarray
    queue: np.ndarray
    demand: np.ndarray
    feeder_headroom_kw: float = float("inf")
    prev_charge_kw: float = 0.0
    st_prev_charge_kw: np.ndarray | None = None
    e_knee_kwh: np.ndarray | None = None  # where each slot's pack leaves constant current (the CC-CV taper)


def _ro(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class Racks:
    """The rack views and the decide and physics phases of a swap network."""

    def usable_kwh(self, pk: np.ndarray) -> np.ndarray:
        return self.packs.capacity_kwh[pk] * self.packs.soh[pk]

    def slot_capacity_kwh(self) -> np.ndarray:
        """Usable capacity of the pack in each rack slot, shape (R,)."""
        return self._slot_static()[0].copy()

    def ready_counts(self) -> np.ndarray:
        """Ready packs per station, shape (S,)."""
        ready = self.packs.e_kwh[self.slot_pack] >= self._slot_static()[5] - 1e-9
        return np.bincount(self.slot_station, weights=ready, minlength=self.n_stations).astype(np.int64)

    def invalidate_slots(self) -> None:
        """Call after changing per-pack ``soh`` (the wear model) so the racks' limits follow."""
        self._slot_version = object()

    def _slot_static(self):
        """Per-slot attributes that change only with a swap (or a new state of health):
        usable capacity, CC-CV knee and end, efficiencies; cached until the racks change."""
        if self._slot_cache is None or self._slot_cache[0] is not self._slot_version:
            pk = self.slot_pack
            cap = self.usable_kwh(pk)
            knee = self.pack_knee[pk]
            self._slot_cache = (self._slot_version, cap, knee * cap, cap * (1.0 - self.pack_cutoff[pk] * (1.0 - knee)),
                                self.pack_eta_c[pk], self.pack_eta_d[pk], self.cfg.ready_soc * cap)
        return self._slot_cache[1:]

    def cycle_wear_cny_per_kwh(self, step: int, e_lo_kwh: np.ndarray, e_hi_kwh: np.ndarray, p_kw: np.ndarray) -> np.ndarray:
        """The wear of cycling each slot's pack between ``e_lo_kwh`` and ``e_hi_kwh`` (R,) at grid
        power ``p_kw`` (R,), CNY per battery kWh discharged and recharged, from the wear model at
        that cycle's stressors (:meth:`v2gsim.physics.ageing.packs.SwapPackWear.cycle_price_cny_per_kwh`)
        when the EMS reads the model (``wear_cny_per_kwh: model``, ``wear.price_dispatch``); else
        the packs' published price (a constant ``wear_cny_per_kwh`` is read in its place anyway)."""
        pk = self.slot_pack
        w = self.wear
        if w is None or not w.fw.cfg.price_dispatch or self.cfg.wear_cny_per_kwh != "model":
            return self.packs.wear_cost_cny_per_kwh[pk]
        return w.cycle_price_cny_per_kwh(pk, e_lo_kwh, np.maximum(e_hi_kwh, e_lo_kwh), p_kw, step)

    def observation(self, sig: Signals) -> StationObservation:
        step = sig.step
        pk = self.slot_pack
        cap, e_knee, e_full, eta_c, eta_d, e_ready = self._slot_static()
        e = self.packs.e_kwh[pk]
        # a discharge the EMS may plan: at slot power down to the floor (and its recharge)
        w_dis = self.cycle_wear_cny_per_kwh(step, self.cfg.discharge_floor_soc * cap, e, self.slot_p_max_kw)
        return StationObservation(
            step=step, dt_h=self.dt_h, price=float(self.price[step]), v2g_price=float(self.v2g_price[step]),
            n_stations=self.n_stations, slot_station=_ro(self.slot_station), slot_start=_ro(self.slot_start),
            e_kwh=_ro(e), capacity_kwh=_ro(cap), e_ready_kwh=_ro(e_ready),
            e_full_kwh=_ro(e_full), slot_p_max_kw=_ro(self.slot_p_max_kw),
            eta_charge=_ro(eta_c), eta_discharge=_ro(eta_d),
            wear_cost_cny_per_kwh=_ro(self.packs.wear_cost_cny_per_kwh[pk]), wear_discharge_cny_per_kwh=_ro(w_dis), st_packs=_ro(self.st_packs),
            st_grid_limit_kw=_ro(self.st_grid_limit_kw), st_bidirectional=_ro(self.st_bidirectional),
            queue=_ro(self.queue_counts()), demand=_ro(self._demand.copy()),
            feeder_headroom_kw=float(sig.feeder_headroom_kw),
            prev_charge_kw=float(np.maximum(self.p_kw, 0.0).sum()), st_prev_charge_kw=_ro(self._charge_kw.copy()),
            e_knee_kwh=_ro(e_knee),
        )

    def decide(self, sig: Signals) -> None:
        """The EMS plans each rack slot's power (grid side, kW, (R,))."""
        obs = self.observation(sig)
        self._wear_seen = obs.wear_discharge_cny_per_kwh
        self._req_kw = np.asarray(self.strategy.plan_packs(obs), float)
        self._demand[:] = 0.0

    def regulation_kw(self, sustain_h: float) -> tuple[np.ndarray, np.ndarray]:
        """Regulation capacity the racks hold this step, kW per station (S,) both ways (up: draw
        less / feed more; down: draw more): each pack at a bidirectional station around its power
        this step, discharging down to ``discharge_floor_soc`` and charging up to its CC-CV end,
        each for ``sustain_h`` (:func:`v2gsim.market.regulation.headroom_kw`), summed per station
        and kept within its grid limit around its power. Vectorised over slots."""
        from v2gsim.market.regulation import headroom_kw

        cap, _, e_full, eta_c, eta_d, _ = self._slot_static()
        st, S = self.slot_station, self.n_stations
        p = self._p_slot_kw
        e = self.packs.e_kwh[self.slot_pack]
        bi = self.st_bidirectional[st].astype(bool)
        up, down = headroom_kw(p, self.slot_p_max_kw, self.slot_p_max_kw, e, self.cfg.discharge_floor_soc * cap, e_full,
                               eta_c, eta_d, sustain_h)
        lim = self.st_grid_limit_kw
        up_st = np.minimum(np.bincount(st, weights=np.where(bi, up, 0.0), minlength=S), np.maximum(self.p_kw + lim, 0.0))
        down_st = np.minimum(np.bincount(st, weights=np.where(bi, down, 0.0), minlength=S), np.maximum(lim - self.p_kw, 0.0))
        return up_st, down_st

    def physics(self, sig: Signals) -> None:
        """Clip the plan to slot, pack and station limits and charge/discharge the racks for one step."""
        pk = self.slot_pack
        packs = self.packs
        st = self.slot_station
        dt = self.dt_h
        cap, e_knee, e_full, eta_c, eta_d, _ = self._slot_static()
        # limits: slot power, discharge permission, then the station connection (the net, as
        # v2gsim.engine.limits does it for sites; the EMS normally keeps within it)
        p = np.clip(np.nan_to_num(self._req_kw), -self.slot_p_max_kw * self.st_bidirectional[st], self.slot_p_max_kw)
        e0 = packs.e_kwh[pk]
        floor = np.minimum(e0, self.cfg.discharge_floor_soc * cap)
        lim, S = self.st_grid_limit_kw, self.n_stations
        bind = binding(p, st, lim, S)
        if bind.any():
            dis = (p < 0) & bind[st]
            p[dis] = -np.minimum(-p[dis], deliverable_discharge_kw(e0[dis], floor[dis], eta_d[dis], dt))
            p = limit_import(p, st, lim, S)
        p_batt_max = self.slot_p_max_kw * eta_c
        charging = p > 0
        e1 = np.where(charging, charge_to(e0, cap, e_knee, e_full, np.where(charging, p, 0.0) * eta_c, p_batt_max, dt), e0)
        if bind.any():  # the export limit against the charging delivered
            p = limit_export(p, st, lim, S, np.bincount(st, weights=(e1 - e0) / eta_c / dt, minlength=S))
        discharging = p < 0
        if discharging.any():
            e1 = np.where(discharging, discharge_to(e0, floor, np.where(discharging, -p, 0.0) / eta_d, dt), e1)
        de = e1 - e0
        grid_kwh = np.where(de > 0, de / eta_c, de * eta_d)
        packs.e_kwh[pk] = e1
        packs.e_charged_kwh[pk] += np.maximum(grid_kwh, 0.0)
        packs.e_discharged_kwh[pk] += np.maximum(-grid_kwh, 0.0)
        packs.e_loss_kwh[pk] += np.abs(grid_kwh - de)
        packs.e_throughput_kwh[pk] += np.abs(de)
        packs.e_rack_discharged_kwh[pk] += np.maximum(-de, 0.0)
        if self.wear is not None:
            self.wear.rack_step(pk, grid_kwh, de)
        p_slot = grid_kwh / dt
        self._p_slot_kw = p_slot
        self._charge_kw = np.bincount(st, weights=np.maximum(p_slot, 0.0), minlength=self.n_stations)
        self._dis_kw = np.bincount(st, weights=np.maximum(-p_slot, 0.0), minlength=self.n_stations)
        self._e_rack_kwh = np.bincount(st, weights=e1, minlength=self.n_stations)
        self._rack_out_kwh = np.maximum(-de, 0.0)
        self.p_kw = self._charge_kw - self._dis_kw
