"""Ageing of a battery-swap network's packs, a second population of cells that follows each pack."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from v2gsim.market.second_life import SecondLifeStorage
from v2gsim.physics.ageing.closing import PeriodClose
from v2gsim.physics.ageing.initial import STORAGE_SOC, TYPICAL_C_RATE, TYPICAL_DOD
from v2gsim.physics.ageing.population import WearPopulation

if TYPE_CHECKING:  # pragma: no cover
    from v2gsim.physics.ageing.fleet import FleetWear


class SwapPackWear(PeriodClose):
    """Ageing of every pack of one :class:`~v2gsim.agents.swap_station.SwapNetwork` (built by
    :meth:`FleetWear.pack_wear`): a second :class:`WearPopulation` over the P packs.

    The ageing follows the pack, not the vehicle:

    * in a rack a pack ages by calendar at its own SOC (sampled every step) and the scenario's
      ambient (the station's), and rack charging/discharging adds charge/V2G throughput and its
      C-rate (:meth:`rack_step`);
    * in a vehicle it takes the vehicle's stressors: the vehicle's SOC, its charger power
      (:meth:`after_physics`) and its driving, charging and V2G throughput, which are handed to
      the pack the vehicle carries at every swap and at every period end (:meth:`on_swap`);
    * each period the fade models advance (same code as the fleet's); the pack's state of health
      sets ``packs.soh``, so a racked pack's usable capacity and a carrying vehicle's capacity
      arrays shrink (energy kept at the same SOC; the change booked in
      :attr:`e_capacity_change_kwh` for racked packs and in the vehicle's
      ``FleetWear.e_capacity_change_kwh`` for carried ones). At a swap the vehicle's capacity
      arrays take the incoming pack's state of health (no booking: the pack brings its energy);
    * the marginal wear price per battery kWh discharged (and later recharged) at the period's
      stressors goes to ``packs.wear_cost_cny_per_kwh`` (the table's figure); the station EMS with
      ``wear_cny_per_kwh: model`` prices each cycle it considers at that cycle's own stressors
      (:meth:`cycle_price_cny_per_kwh`, the same marginal function);
    * a pack below ``retirement_soh`` leaves service: a new pack takes its place (same pack id,
      same SOC, the difference booked) and the old one becomes second-life storage at its station
      (a carried pack: at the vehicle's preferred station), or is recycled.
    """

    def __init__(self, fw: FleetWear, net):
        self.fw = fw
        self.net = net
        cfg = fw.cfg
        pk = net.packs
        P = pk.n
        self.dt_h = fw.dt_h
        self.pop = WearPopulation(pk.capacity_kwh.copy(), fw.chem_model[pk.chemistry.astype(np.int64)], fw.models, shadow=False)
        self.cap_nom_kwh = pk.capacity_kwh.copy()
        self.cost_per_q_cny = cfg.replacement_cost_cny_per_kwh * self.cap_nom_kwh / (1.0 - cfg.retirement_soh)
        f = fw.fleet
        # traction C-rate while in a vehicle: mean consumption of the standard's vehicles x speed
        cons = np.zeros(len(net.standards))
        for k in range(len(net.standards)):
            vk = net.veh_standard == k
            cons[k] = f.consumption_kwh_per_km[vk].mean() if vk.any() else 0.0
        self.c_drive = cons[pk.standard.astype(np.int64)] * cfg.driving_speed_kmh / self.cap_nom_kwh
        self.thr = np.zeros((3, P))  # battery-side kWh this period: driving, charging, V2G (rack discharge counts as V2G)
        self.thr_grid = np.zeros(P)  # grid-side kWh through chargers this period
        self.veh = np.flatnonzero(net.veh_pack >= 0)
        self.veh_row = np.full(f.n, -1, np.int64)
        self.veh_row[self.veh] = np.arange(self.veh.size)
        fw.leased[self.veh] = True
        self._v0 = None
        self.started = False
        self.packs_replaced = np.zeros(P, np.int32)
        self.replacement_cost_cny = np.zeros(P)
        self.retired_cal = np.zeros(P)
        self.retired_cyc = np.zeros(P)
        self.retired_fec = np.zeros(P)
        self.e_capacity_change_kwh = np.zeros(P)
        self.marginal_cny_per_kwh = np.zeros(P)
        self.n_out_of_range = 0
        self.packs_recycled_direct = 0
        self.second_life = SecondLifeStorage(cfg.second_life, fw.models, fw.price_cny_per_kwh, fw.dt_h) if cfg.second_life.enabled else None
        self.sl_station = np.zeros(0, np.int64)
        initial = getattr(net, "initial_pack_age", None)  # (age in years, soh or NaN) per pack, or None: new
        if initial is not None:
            # the calendar law alone (no cycle history): a pool's cycles per day follow the
            # station's throughput, which is not known at build (docs/wear.md, Initial age)
            self.pop.start_aged(initial[0], initial[1], float(fw.t_amb_degc.mean()))
            soh0 = self.pop.state.soh
            rack = pk.vehicle < 0
            pk.e_kwh[rack] *= soh0[rack]  # racked packs keep their state of charge
            pk.soh[:] = soh0
        # a carried pack sets its vehicle's capacity, new packs too: the vehicle's group may have
        # aged it (initial_age_years, default China's NEV stock ages), but the pack is the operator's
        carried = pk.vehicle >= 0
        fw.scale_at_build(pk.vehicle[carried], pk.soh[carried])
        if cfg.price_dispatch:
            n = P
            stress = dict(dt_s=0.0, t_degc=np.full(n, float(fw.t_amb_degc.mean())), soc_mean=np.full(n, STORAGE_SOC),
                          fec=np.zeros(n), dod=np.full(n, TYPICAL_DOD), c_rate=np.full(n, TYPICAL_C_RATE))
            self._price(stress)

    # ------------------------------------------------------------------ called by FleetWear and the network
    def _veh_acc(self, v):
        f = self.fw.fleet
        return np.stack([f.e_driven_kwh[v], f.e_charged_kwh[v], f.e_discharged_kwh[v]])

    def begin(self) -> None:
        self.started = True
        self._v0 = self._veh_acc(self.veh)
        self.thr[:] = 0.0
        self.thr_grid[:] = 0.0
        self.pop.begin_period(self.net.pack_e_kwh())

    def _flush(self, v: np.ndarray) -> None:
        """Hand vehicles ``v``'s throughput since the last hand-over to the packs they carry."""
        if v.size == 0:
            return
        f = self.fw.fleet
        rows = self.veh_row[v]
        pk = self.net.veh_pack[v]
        acc = self._veh_acc(v)
        d = acc - self._v0[:, rows]
        self.thr[0, pk] += d[0]
        self.thr[1, pk] += d[1] * f.eta_charge[v]
        self.thr[2, pk] += d[2] / f.eta_discharge[v]
        self.thr_grid[pk] += d[1] + d[2]
        self._v0[:, rows] = acc

    def on_swap(self, v: np.ndarray, out_p: np.ndarray, in_p: np.ndarray) -> None:
        """Called by the network before vehicles ``v`` give pack ``out_p`` and take ``in_p``."""
        if self.started:
            self._flush(v)
        soh = self.fw.soh_applied.copy()
        soh[v] = self.net.packs.soh[in_p]
        self.fw.apply_soh(v, soh, keep_energy=True)

    def rack_step(self, pk: np.ndarray, grid_kwh: np.ndarray, de: np.ndarray) -> None:
        """Rack packs ``pk`` moved ``grid_kwh`` (grid side) and ``de`` (battery side) this step."""
        if not self.started:
            return
        self.thr[1, pk] += np.maximum(de, 0.0)
        self.thr[2, pk] += np.maximum(-de, 0.0)
        self.thr_grid[pk] += np.abs(grid_kwh)
        self.pop.record_power(pk, grid_kwh / self.dt_h, self.dt_h)

    def after_physics(self, idx: np.ndarray, p_kw: np.ndarray) -> None:
        pk = self.net.veh_pack[idx]
        m = pk >= 0
        if m.any():
            self.pop.record_power(pk[m], p_kw[m], self.dt_h)

    def sample(self) -> None:
        self.pop.sample(self.net.pack_e_kwh())

    # ------------------------------------------------------------------ the period update
    def close(self, s_next: int, dt_s: float, t_amb: float) -> None:
        net, cfg = self.net, self.fw.cfg
        pk = net.packs
        self._flush(self.veh)
        stress = self._advance(cfg, dt_s, t_amb, cap_kwh=pk.capacity_kwh * pk.soh, thr_drive=self.thr[0], thr_charge=self.thr[1],
                               thr_v2g=self.thr[2], thr_grid_kwh=self.thr_grid)
        soh = self.pop.state.soh
        self._set_soh(np.arange(pk.n), soh)
        self._retire_price_age(cfg, soh < cfg.retirement_soh, stress, s_next, dt_s, t_amb)
        net.invalidate_slots()
        self.thr[:] = 0.0
        self.thr_grid[:] = 0.0
        self.pop.begin_period(net.pack_e_kwh())

    def _set_soh(self, p: np.ndarray, soh_new: np.ndarray) -> None:
        """Packs ``p`` take state of health ``soh_new`` (shape like ``p``), keeping their SOC; racked
        packs book the energy change here, carried packs in their vehicle's booking."""
        pk = self.net.packs
        rack = pk.vehicle[p] < 0
        r = p[rack]
        if r.size:
            e_old = pk.e_kwh[r]
            pk.e_kwh[r] = e_old * (soh_new[rack] / pk.soh[r])
            self.e_capacity_change_kwh[r] += pk.e_kwh[r] - e_old
        c = p[~rack]
        if c.size:
            v = pk.vehicle[c]
            soh = self.fw.soh_applied.copy()
            soh[v] = soh_new[~rack]
            self.fw.apply_soh(v, soh)
        pk.soh[p] = soh_new

    def _retire(self, ret: np.ndarray, s: int) -> None:
        net, pop, cfg = self.net, self.pop, self.fw.cfg
        pk = net.packs
        st = pop.state
        self._hand_over(ret, s, net.pack_e_kwh()[ret])
        if self.second_life is not None:  # at its station; a carried pack at its vehicle's preferred one
            where = np.where(pk.station[ret] >= 0, pk.station[ret], net.veh_pref[np.maximum(pk.vehicle[ret], 0)])
            self.sl_station = np.r_[self.sl_station, where.astype(np.int64)]
        self.retired_cal[ret] += np.clip(st.q_loss_cal[ret], 0.0, 1.0) - pop.q0_cal[ret]  # the run's fade only
        self.retired_cyc[ret] += np.clip(st.q_loss_cyc[ret], 0.0, 1.0) - pop.q0_cyc[ret]
        self.retired_fec[ret] += st.fec[ret] - pop.q0_fec[ret]
        self._replace(cfg, ret)
        self._set_soh(ret, np.ones(ret.size))

    def _price(self, stress) -> None:
        # discharging d battery kWh and recharging it is d / capacity full equivalent cycles
        dq = self.pop.marginal_fade_per_fec(stress, self.fw.cfg.marginal_window_fec)
        self.marginal_cny_per_kwh = dq * self.cost_per_q_cny / self.cap_nom_kwh
        self.net.packs.wear_cost_cny_per_kwh[:] = self.marginal_cny_per_kwh

    def cycle_price_cny_per_kwh(self, p: np.ndarray, e_lo_kwh: np.ndarray, e_hi_kwh: np.ndarray, p_kw: np.ndarray,
                                step: int) -> np.ndarray:
        """The wear of cycling packs ``p`` between stored energies ``e_lo_kwh`` and ``e_hi_kwh`` at
        grid-side power ``p_kw`` (a discharge the EMS considers and its recharge), CNY per battery
        kWh discharged and recharged (the unit of ``packs.wear_cost_cny_per_kwh``), shape like ``p``.

        The published price is set at the stressors of the period just ended: an idle racked pack
        is priced at the floor stressors and then fed back at its slot power (docs/wear.md, Price,
        Timing). Here the same marginal function (:meth:`WearPopulation.marginal_fade_per_fec`,
        same window, same floors) takes the stressors the period close will book for this cycle:
        depth ``(e_hi - e_lo) / usable capacity``, C-rate ``|p_kw| / usable capacity`` (the close's
        grid-side ``sum(p^2 dt) / sum(|p| dt)`` of a constant power), mean SOC half way, the
        ambient of ``step`` plus the close's heating of this cycle's throughput (``2 x depth`` of
        capacity) spread over a wear period, each pack's wear state now. Vectorised over ``p``."""
        cfg, pk = self.fw.cfg, self.net.packs
        p = np.asarray(p, dtype=np.int64)
        cap = pk.capacity_kwh[p] * pk.soh[p]
        dod = np.clip((np.asarray(e_hi_kwh, float) - e_lo_kwh) / cap, 0.0, 1.0)
        soc_mid = np.clip(0.5 * (np.asarray(e_hi_kwh, float) + e_lo_kwh) / cap, 0.0, 1.0)
        t_amb = float(self.fw.t_amb_degc[min(max(int(step), 0), self.fw.t_amb_degc.size - 1)])
        # (no dt_s, fec: the marginal function sets them, over its window and no calendar time)
        stress = dict(t_degc=t_amb + cfg.heating_k_per_c_rate * 2.0 * dod / cfg.update_period_h, soc_mean=soc_mid,
                      dod=dod, c_rate=np.abs(np.asarray(p_kw, float)) / cap)
        dq = self.pop.marginal_fade_per_fec(stress, cfg.marginal_window_fec, idx=p)
        return dq * self.cost_per_q_cny[p] / self.cap_nom_kwh[p]

    # ------------------------------------------------------------------ outputs
    def table(self, network: int = 0):
        """One row per pack id (a retired pack's successor keeps its id; fade and cost summed)."""
        import pandas as pd

        net, pk, st = self.net, self.net.packs, self.pop.state
        q0_cal, q0_cyc = self.pop.q0_cal, self.pop.q0_cyc  # fade before the run (aged packs)
        cal = self.retired_cal + st.q_loss_cal - q0_cal
        cyc = self.retired_cyc + st.q_loss_cyc - q0_cyc
        run_q = self.retired_cal + self.retired_cyc + st.q_loss - q0_cal - q0_cyc
        in_rack = pk.station >= 0
        return pd.DataFrame({
            "network": np.full(pk.n, network, np.int64),
            "pack": np.arange(pk.n),
            "standard": pd.Categorical.from_codes(pk.standard.astype(np.int64), categories=net.standards),
            "location": pd.Categorical(np.where(in_rack, "rack", "vehicle"), categories=["rack", "vehicle"]),
            "station_id": np.asarray([net.station_ids[i] if i >= 0 else None for i in pk.station], object),
            "vehicle": pk.vehicle.astype(np.int64),
            "capacity_nominal_kwh": self.cap_nom_kwh,
            "soh": pk.soh.copy(),
            "capacity_kwh": pk.capacity_kwh * pk.soh,
            "fade_pct": 100 * run_q,
            "fade_calendar_pct": 100 * cal,
            "fade_cycle_pct": 100 * cyc,
            "fec": self.retired_fec + st.fec - self.pop.q0_fec,
            "n_swaps": pk.n_swaps.astype(np.int64),
            "packs_replaced": self.packs_replaced,
            "wear_cost_cny": run_q * self.cost_per_q_cny,
            "replacement_cost_cny": self.replacement_cost_cny,
            # one unit with the fleet's table: CNY per kWh of grid-side throughput (charged plus fed
            # back); the EMS's own price (packs.wear_cost_cny_per_kwh) is per battery kWh discharged
            # and recharged, i.e. 2 / ((eta_c + 1/eta_d) / 2) grid kWh of throughput
            "marginal_wear_cny_per_kwh_throughput": self.marginal_cny_per_kwh * 0.25 * (net.pack_eta_c + 1.0 / net.pack_eta_d),
            "e_capacity_change_kwh": self.e_capacity_change_kwh,
            "out_of_range_periods": st.n_out_of_range,
        })
