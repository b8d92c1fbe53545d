"""Battery ageing of the vehicle fleet, an actor of the engine (see the package docstring)."""

from __future__ import annotations

import numpy as np

from v2gsim.engine.actor import Actor, Signals, VehiclePower
from v2gsim.market.second_life import SecondLifeStorage
from v2gsim.physics.ageing.closing import PeriodClose
from v2gsim.physics.ageing.config import WearConfig
from v2gsim.physics.ageing.packs import SwapPackWear
from v2gsim.physics.ageing.population import WearPopulation, full_equivalent_cycles
from v2gsim.physics.ambient import ambient_on_clock
from v2gsim.physics.wear import WEAR_MODELS, model_for_chemistry


def _resolve_models(cfg: WearConfig, chemistries: list[str]):
    """Model instances and, per chemistry name, the index of its model."""
    if cfg.model == "auto":
        names = [{"LFP": "naumann_lfp"}.get(c.upper(), "schmalstieg_nmc") for c in chemistries]
    else:
        names = [cfg.model] * len(chemistries)
    uniq = sorted(set(names), key=names.index)
    models = [WEAR_MODELS[u]() if cfg.model != "auto" else model_for_chemistry(chemistries[names.index(u)]) for u in uniq]
    return models, [uniq.index(nm) for nm in names], uniq


class FleetWear(PeriodClose, Actor):
    """Battery ageing of the vehicle fleet, an actor of :class:`~v2gsim.model.V2GModel`.

    Built by the model when ``wear.model`` is not ``off``. Phases: :meth:`begin` at the first
    recorded step (``begin_recording``), :meth:`after_physics` in the physics phase (the fleet's
    power of the step, from ``power``), :meth:`end_step` in the record phase (it is the last
    actor: it samples the step's end state and, at a period's end, advances the fade models and
    scales the capacities for the next step); :meth:`finish` closes the last (partial) period.
    Swap networks register their packs with :meth:`pack_wear`.

    Capacity feedback: at each period end, ``capacity_kwh``, ``e_full_kwh``, ``e_stop_kwh``,
    ``e_min_departure_kwh``, ``e_public_below_kwh``, ``p_batt_max_kw`` and ``e_kwh`` are scaled
    by ``soh_new / soh_old`` (the state of charge is kept). The stored energy that disappears
    with the capacity is booked per vehicle in ``e_capacity_change_kwh`` (negative), so
    ``Δe_kwh = e_charged·η_c − e_discharged/η_d − e_driven + e_capacity_change`` holds; a new pack
    after retirement is fitted at the same state of charge and books the difference (positive).
    """

    def __init__(self, cfg: WearConfig, fleet, clock, step_min: int, start_step: int, n_clock: int, price_cny_per_kwh, chemistry_names,
                 zone: str | None = None, *, power: VehiclePower | None = None, second_life_site: int | None = None,
                 initial: tuple[np.ndarray, np.ndarray] | None = None):
        self.cfg = cfg
        self.power = power if power is not None else VehiclePower()
        self.second_life_site = second_life_site  # site index of the vehicle packs' second-life storage (None: spread)
        self.fleet = fleet
        f = fleet
        n = f.n
        self.dt_h = step_min / 60.0
        steps = cfg.update_period_h * 60.0 / step_min
        if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
            from v2gsim.errors import Problem, ScenarioError

            raise ScenarioError([Problem("wear.update_period_h", f"must be a whole number of {step_min}-minute steps; got {cfg.update_period_h} h",
                                         f"use a multiple of {step_min / 60:g} h, e.g. 24")])
        self.period_steps = int(round(steps))
        self.start_step = start_step
        self.n_clock = n_clock
        self.t_amb_degc = ambient_on_clock(cfg.ambient, clock, step_min, zone)  # zone: time.timezone, for CSV times
        self.models, chem_model, self.model_names = _resolve_models(cfg, list(chemistry_names))
        self.chem_model = np.asarray(chem_model, dtype=np.int64)  # model index per fleet.CHEMISTRIES entry
        model_ids = self.chem_model[f.chemistry.astype(np.int64)]
        use_hist = cfg.rainflow and any(getattr(m, "uses_soc_history", False) for m in self.models)
        self.hist_every = max(1, int(round(60 / step_min))) if use_hist else 0
        hist_len = int(np.ceil(self.period_steps / self.hist_every)) + 1 if use_hist else 0
        self.pop = WearPopulation(f.capacity_kwh.copy(), model_ids, self.models, shadow=True, history=hist_len)
        self.cap_nom_kwh = f.capacity_kwh.copy()
        self.soh_applied = np.ones(n)
        self.c_drive = f.consumption_kwh_per_km * cfg.driving_speed_kmh / self.cap_nom_kwh
        self.cost_per_q_cny = cfg.replacement_cost_cny_per_kwh * self.cap_nom_kwh / (1.0 - cfg.retirement_soh)
        # per vehicle, across every pack it had
        self.e_capacity_change_kwh = np.zeros(n)
        self.packs_replaced = np.zeros(n, np.int32)
        self.replacement_cost_cny = np.zeros(n)
        self.retired = {k: np.zeros(n) for k in ("total", "calendar", "driving", "charging", "v2g")}
        self.retired_fec = np.zeros(n)
        self.n_out_of_range = 0
        self.price_cny_per_kwh = np.asarray(price_cny_per_kwh)
        self.second_life = SecondLifeStorage(cfg.second_life, self.models, self.price_cny_per_kwh, self.dt_h) if cfg.second_life.enabled else None
        self.packs_recycled_direct = 0
        # vehicles whose pack belongs to a swap operator: their capacity follows the pack they carry
        self.leased = np.zeros(n, bool)
        self.pack_wears: list[SwapPackWear] = []
        self.n_steps_rec = max(n_clock - start_step, 0)
        self._thr0 = None
        self._period_start = None
        self._last_stress = None
        self._drive_last_kwh = np.zeros(n)  # battery kWh driven in the last closed period (the day's driving cycle)
        self._step = start_step  # the step being run (for the ambient of a V2G cycle priced now)
        self.started = False
        self.finished = False
        self.marginal_cny_per_kwh = np.zeros(n)
        if initial is not None:  # (age in years, soh or NaN, km per day) per vehicle: packs not new at the start
            self._start_aged(*initial)
        self._initial_price(f)

    def _start_aged(self, age_years: np.ndarray, soh: np.ndarray, km_per_day=0.0) -> None:
        """Packs not new at the start: the calendar law over ``age_years`` and, where ``soh`` is NaN,
        the cycle law over the cycles of ``km_per_day`` (the group's mean driving, per vehicle) in
        that time, at the typical day's depth and C-rate (:mod:`v2gsim.physics.ageing.initial`)."""
        from v2gsim.physics.ageing.initial import history_fec, history_stressors

        f = self.fleet
        fec = history_fec(age_years, km_per_day, f.consumption_kwh_per_km, self.cap_nom_kwh)
        dod, c_rate = history_stressors(km_per_day, f.consumption_kwh_per_km, self.cap_nom_kwh, self.c_drive)
        self.pop.start_aged(age_years, soh, float(self.t_amb_degc.mean()), fec=fec, dod=dod, c_rate=c_rate)
        self.scale_at_build(np.arange(f.n), self.pop.state.soh)

    # ------------------------------------------------------------------ phases
    def pack_wear(self, network) -> SwapPackWear:
        """Age the packs of a swap network (a :class:`~v2gsim.agents.swap_station.SwapNetwork`)
        as a second population; called once by the network when it is built."""
        pw = SwapPackWear(self, network)
        self.pack_wears.append(pw)
        return pw

    def begin_recording(self, step: int) -> None:
        self.begin(step)

    def physics(self, sig: Signals) -> None:
        self.after_physics(sig.step, self.power.idx, self.power.p_kw)

    def record(self, sig: Signals) -> None:
        self.end_step(sig.step)

    def begin(self, s: int) -> None:
        f = self.fleet
        self.started = True
        self._period_start = s
        self._thr0 = self._throughputs(f)
        self.pop.begin_period(f.e_kwh)
        for pw in self.pack_wears:
            pw.begin()

    def after_physics(self, s: int, idx: np.ndarray, p_kw: np.ndarray) -> None:
        if not self.started or idx.size == 0:
            return
        f = self.fleet
        dt = self.dt_h

        def de():
            return np.where(p_kw > 0, p_kw * dt * f.eta_charge[idx], p_kw * dt / f.eta_discharge[idx])

        self.pop.record_power(idx, p_kw, dt, de)
        for pw in self.pack_wears:
            pw.after_physics(idx, p_kw)

    def storages(self):
        """Every second-life storage: the vehicle packs', then each swap network's."""
        if self.second_life is not None:
            yield self.second_life
        for pw in self.pack_wears:
            if pw.second_life is not None:
                yield pw.second_life

    def end_step(self, s: int) -> None:
        self._step = s + 1
        if not self.started:
            return
        f = self.fleet
        hist = None
        if self.hist_every and (s - self._period_start) % self.hist_every == 0:
            hist = f.e_kwh / f.capacity_kwh
        self.pop.sample(f.e_kwh, hist)
        for pw in self.pack_wears:
            pw.sample()
        if (s + 1 - self._period_start) >= self.period_steps:
            self._close(s + 1)

    def finish(self, s_end: int) -> None:
        """Close the last period if it has steps (idempotent)."""
        if self.started and not self.finished and s_end > self._period_start:
            self._close(s_end)
        self.finished = True

    # ------------------------------------------------------------------ internals
    def _throughputs(self, f):
        return (f.e_driven_kwh.copy(), f.e_charged_kwh.copy(), f.e_discharged_kwh.copy())

    def _close(self, s_next: int) -> None:
        f = self.fleet
        cfg = self.cfg
        s0 = self._period_start
        dt_s = (s_next - s0) * self.dt_h * 3600.0
        t_amb = float(self.t_amb_degc[s0:s_next].mean())
        drv0, chg0, dis0 = self._thr0
        d_drv = f.e_driven_kwh - drv0
        d_chg = f.e_charged_kwh - chg0
        d_dis = f.e_discharged_kwh - dis0
        stress = self._advance(cfg, dt_s, t_amb, cap_kwh=f.capacity_kwh, thr_drive=d_drv, thr_charge=d_chg * f.eta_charge,
                               thr_v2g=d_dis / f.eta_discharge, thr_grid_kwh=d_chg + d_dis)
        self._last_stress = stress
        self._drive_last_kwh = d_drv.copy()
        # capacity feedback, keeping the state of charge (vehicles with a leased swap pack: from the pack)
        soh = self.pop.state.soh
        own = slice(None) if not self.leased.any() else np.flatnonzero(~self.leased)
        self.apply_soh(own, soh)
        for pw in self.pack_wears:
            pw.close(s_next, dt_s, t_amb)
        # retirement: the vehicle gets a new pack; the old one goes to second life (or recycling)
        self._retire_price_age(cfg, (soh < cfg.retirement_soh) & ~self.leased, stress, s_next, dt_s, t_amb)
        self._period_start = s_next
        self._thr0 = self._throughputs(f)
        self.pop.begin_period(f.e_kwh)

    def apply_soh(self, idx, soh_new: np.ndarray, *, keep_energy: bool = False) -> None:
        """Scale the capacity arrays of vehicles ``idx`` (indices or a slice) to state of health
        ``soh_new[idx]``. The stored energy scales with them (state of charge kept, the change
        booked in ``e_capacity_change_kwh``) unless ``keep_energy`` (a swap brings its own)."""
        f = self.fleet
        soh = soh_new[idx]
        ratio = soh / self.soh_applied[idx]
        names = ("capacity_kwh", "e_full_kwh", "e_stop_kwh", "e_min_departure_kwh", "e_public_below_kwh", "p_batt_max_kw")
        for name in names:
            getattr(f, name)[idx] *= ratio
        self.soh_applied[idx] = soh
        if keep_energy:
            return
        e_old = f.e_kwh[idx].copy()  # a view when idx is a slice
        f.e_kwh[idx] *= ratio
        self.e_capacity_change_kwh[idx] += f.e_kwh[idx] - e_old
        f.below_stop[idx] = f.e_kwh[idx] < f.e_stop_kwh[idx] - 1e-9

    def scale_at_build(self, idx: np.ndarray, soh: np.ndarray) -> None:
        """Vehicles ``idx`` start with packs of state of health ``soh`` (shape like ``idx``): their
        capacity arrays and stored energy scale (state of charge kept). Not a change during the
        run, so nothing is booked in ``e_capacity_change_kwh``."""
        f = self.fleet
        ratio = soh / self.soh_applied[idx]
        all_soh = self.soh_applied.copy()
        all_soh[idx] = soh
        self.apply_soh(idx, all_soh, keep_energy=True)
        f.e_kwh[idx] *= ratio
        f.below_stop[idx] = f.e_kwh[idx] < f.e_stop_kwh[idx] - 1e-9

    def _retire(self, ret: np.ndarray, s: int) -> None:
        f = self.fleet
        pop = self.pop
        att = pop.attribution()
        for k in self.retired:
            self.retired[k][ret] += att[k][ret]
        self.retired_fec[ret] += pop.state.fec[ret] - pop.q0_fec[ret]  # the run's cycles only
        self._hand_over(ret, s, f.e_kwh[ret].copy())
        self._replace(self.cfg, ret)
        self.apply_soh(ret, np.ones(f.n))

    def _price(self, stress) -> None:
        f = self.fleet
        dq_per_fec = self.pop.marginal_fade_per_fec(stress, self.cfg.marginal_window_fec)
        # one kWh of grid-side throughput moves about (eta_c + 1/eta_d)/2 kWh in the battery,
        # which is that over (2 x nominal capacity) full equivalent cycles
        batt_per_grid = 0.5 * (f.eta_charge + 1.0 / f.eta_discharge)
        self.marginal_cny_per_kwh = dq_per_fec * self.cost_per_q_cny * batt_per_grid / (2.0 * self.cap_nom_kwh)
        f.wear_cost_cny_per_kwh[:] = self.marginal_cny_per_kwh

    def v2g_price_cny_per_kwh(self, idx: np.ndarray, e_floor_kwh: np.ndarray | None = None, p_kw: np.ndarray | None = None,
                              step: int | None = None) -> np.ndarray:
        """The marginal wear of V2G for vehicles ``idx`` now, CNY per grid kWh fed back (and later
        recharged), shape like ``idx``: the unit contracts pay and ``wear_cny_per_kwh: model`` means.

        The published price (``fleet.wear_cost_cny_per_kwh``) is the cycle fade per kWh at the last
        period's stressors held fixed; the attribution (real minus the no-V2G shadow) books what V2G
        adds to the period: its own throughput *and* the deeper cycle it makes of the day's driving
        throughput (Naumann's depth factor) at the V2G C-rate. This prices that difference for the
        V2G cycle considered: from the stored energy now down to ``e_floor_kwh`` (default the
        driver's ``e_min_departure_kwh``) at grid power ``p_kw`` (default the charger's
        ``p_plug_max_kw``), plus the V2G energy of the period not yet recharged (the pack's debt):

        * without V2G: the period's depth so far (the shadow's SOC range when it differs), the day's
          driving throughput ``D`` (the larger of this period's so far and the last period's) and
          its recharge, ``fec0 = D / cap_nom``, at the last close's C-rate (traction before one);
        * with V2G: depth down to the floor, ``fec1 = fec0 + v / cap_nom`` for ``v`` battery kWh out
          and back, the C-rate throughput-weighted with the V2G's ``|p| / capacity``;
        * each through the ageing model's own marginal function
          (:meth:`WearPopulation.marginal_fade_per_fec`, same window, floors, pack state), the
          step's ambient plus the close's heating; one call over ``2k`` rows, no loop;
        * ``(m1 fec1 - m0 fec0) / (v / cap_nom)`` per V2G FEC; a grid kWh fed back is ``1/eta_d``
          battery kWh out and back, ``1 / (eta_d cap_nom)`` FEC.

        Mean SOC is the period's so far in both (V2G's calendar relief is no throughput cost and is
        not priced, docs/wear.md "Reconciling"). Where no V2G is left (at the floor, no debt) it is
        ``m1`` alone, the price of the first kWh of a cycle at that depth."""
        f, pop, cfg = self.fleet, self.pop, self.cfg
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            return np.zeros(0)
        cap = f.capacity_kwh[idx]
        cap_nom = self.cap_nom_kwh[idx]
        e_now = f.e_kwh[idx]
        floor = f.e_min_departure_kwh[idx] if e_floor_kwh is None else np.broadcast_to(np.asarray(e_floor_kwh, float), idx.shape)
        p = f.p_plug_max_kw[idx] if p_kw is None else np.broadcast_to(np.asarray(p_kw, float), idx.shape)
        debt = pop.debt_kwh[idx]
        v_batt = debt + np.maximum(e_now - floor, 0.0)  # battery kWh of this V2G cycle (out, and back later)
        if self.started:  # the period's SOC range so far, real and (where it differs) without V2G
            hi1, lo1 = np.maximum(pop.e_max[idx], e_now), np.minimum(pop.e_min[idx], np.minimum(e_now, floor))
            if pop.sh_active:
                hi0, lo0 = pop.sh_e_max[idx], pop.sh_e_min[idx]
            else:
                hi0, lo0 = pop.e_max[idx], pop.e_min[idx]
            hi0, lo0 = np.maximum(hi0, e_now + debt), np.minimum(lo0, e_now + debt)
            drive = np.maximum(f.e_driven_kwh[idx] - self._thr0[0][idx], self._drive_last_kwh[idx])
            n_s = max(pop.n_samples, 1)
            soc = np.clip(pop.e_int[idx] / n_s / cap, 0.0, 1.0) if pop.n_samples else np.clip(e_now / cap, 0.0, 1.0)
        else:
            hi0 = lo0 = e_now
            hi1, lo1 = e_now, np.minimum(e_now, floor)
            drive = self._drive_last_kwh[idx]
            soc = np.clip(e_now / cap, 0.0, 1.0)
        dod0 = np.clip((hi0 - lo0) / cap, 0.0, 1.0)
        dod1 = np.clip((hi1 - lo1) / cap, 0.0, 1.0)
        thr0 = 2.0 * drive  # battery kWh: driving and the charging that replaces it
        thr1 = thr0 + 2.0 * v_batt
        c0 = self.c_drive[idx] if self._last_stress is None else self._last_stress["c_rate"][idx]
        c_v2g = np.abs(p) / cap
        c1 = np.divide(c0 * thr0 + c_v2g * 2.0 * v_batt, thr1, out=c_v2g.copy(), where=thr1 > 1e-12)
        k = self.cfg.heating_k_per_c_rate / cfg.update_period_h
        t_amb = float(self.t_amb_degc[min(max(int(self._step if step is None else step), 0), self.t_amb_degc.size - 1)])
        stress = dict(t_degc=np.r_[t_amb + k * thr0 / cap, t_amb + k * thr1 / cap], soc_mean=np.r_[soc, soc],
                      dod=np.r_[dod0, dod1], c_rate=np.r_[c0, c1])
        m = pop.marginal_fade_per_fec(stress, cfg.marginal_window_fec, idx=np.r_[idx, idx])
        m0, m1 = m[: idx.size], m[idx.size:]
        fec0, fec_v = full_equivalent_cycles(thr0, cap_nom), full_equivalent_cycles(2.0 * v_batt, cap_nom)
        per_fec = np.where(fec_v > 1e-12, np.divide(m1 * (fec0 + fec_v) - m0 * fec0, fec_v, out=m1.copy(), where=fec_v > 1e-12), m1)
        return np.maximum(per_fec, 0.0) * self.cost_per_q_cny[idx] / (f.eta_discharge[idx] * cap_nom)

    def _initial_price(self, f) -> None:
        """A price before the first period ends: typical stressors (SOC 0.6, depth 0.3, 0.2C)."""
        from v2gsim.physics.ageing.initial import STORAGE_SOC, TYPICAL_C_RATE, TYPICAL_DOD

        if not self.cfg.price_dispatch:
            return
        n = f.n
        stress = dict(dt_s=0.0, t_degc=np.full(n, float(self.t_amb_degc.mean())), soc_mean=np.full(n, STORAGE_SOC),
                      fec=np.zeros(n), dod=np.full(n, TYPICAL_DOD), c_rate=np.full(n, TYPICAL_C_RATE))
        self._price(stress)

    # ------------------------------------------------------------------ outputs
    def vehicle_table(self):
        """Per-vehicle wear summary (pandas DataFrame), summed over every pack each vehicle had."""
        import pandas as pd

        f = self.fleet
        pop = self.pop
        att = pop.attribution()
        tot = {k: self.retired[k] + att[k] for k in self.retired}
        # a leased (swap) pack is the operator's: the driver's row shows the fade of the vehicle's
        # use (attribution) but no cost; soh and capacity are those of the pack it carries now
        cost_q = np.where(self.leased, 0.0, self.cost_per_q_cny)
        mean_t = np.divide(pop.t_degc_sum, pop.t_h, out=np.full(f.n, np.nan), where=pop.t_h > 0) if pop.t_h else np.full(f.n, np.nan)
        return pd.DataFrame({
            "vehicle": np.arange(f.n),
            "wear_model": pd.Categorical.from_codes(pop.model_ids, categories=self.model_names),
            "capacity_nominal_kwh": self.cap_nom_kwh,
            "capacity_kwh": f.capacity_kwh.copy(),
            "soh": np.where(self.leased, self.soh_applied, pop.state.soh),
            "battery_leased": self.leased.copy(),
            "range_km": f.e_full_kwh / f.consumption_kwh_per_km,
            "fade_pct": 100 * tot["total"],
            "fade_calendar_pct": 100 * tot["calendar"],
            "fade_driving_pct": 100 * tot["driving"],
            "fade_charging_pct": 100 * tot["charging"],
            "fade_v2g_pct": 100 * tot["v2g"],
            "fec": self.retired_fec + pop.state.fec - pop.q0_fec,
            "e_v2g_kwh": f.e_discharged_kwh.copy(),
            "battery_t_mean_degc": mean_t,
            "packs_replaced": self.packs_replaced,
            "wear_cost_cny": tot["total"] * cost_q,
            "wear_cost_v2g_cny": tot["v2g"] * cost_q,
            "replacement_cost_cny": self.replacement_cost_cny,
            "marginal_wear_cny_per_kwh_throughput": self.marginal_cny_per_kwh,  # CNY per kWh of grid-side throughput
            "e_capacity_change_kwh": self.e_capacity_change_kwh,
            "out_of_range_periods": pop.state.n_out_of_range,
        })

    def tables(self, times, clock) -> dict:
        """``wear`` (per vehicle), ``wear_packs`` (retired packs) and, with swap packs, ``swap_pack_wear``."""
        out = {"wear": self.vehicle_table(), "wear_packs": self.pack_table()}
        sp = self.swap_pack_table()
        if sp is not None:
            out["swap_pack_wear"] = sp
        return out

    def pack_table(self):
        """Retired packs (second life), one row each (pandas DataFrame)."""
        import pandas as pd

        cols = ["pack", "origin", "origin_vehicle", "origin_pack", "station", "retired_step", "recycled_step", "soh_at_retirement", "soh",
                "capacity_kwh", "fec_at_retirement", "fec", "fade_second_life_pct", "e_charged_kwh", "e_discharged_kwh", "revenue_cny", "status"]
        parts = []
        if self.second_life is not None and len(self.second_life):
            parts.append(self._sl_table(self.second_life, "vehicle", None))
        for pw in self.pack_wears:
            if pw.second_life is not None and len(pw.second_life):
                parts.append(self._sl_table(pw.second_life, "swap", pw))
        if not parts:
            return pd.DataFrame({c: [] for c in cols})
        t = pd.concat(parts, ignore_index=True)
        t["pack"] = np.arange(len(t))
        t["origin"] = pd.Categorical(t["origin"], categories=["vehicle", "swap"])
        return t[cols]

    def _sl_table(self, sl, origin: str, pw):
        import pandas as pd

        soh = sl.pop.state.soh
        k = len(sl)
        swap = pw is not None
        return pd.DataFrame({
            "pack": np.arange(k),
            "origin": np.full(k, origin, object),
            "origin_vehicle": np.full(k, -1, np.int64) if swap else sl.origin_vehicle,
            "origin_pack": sl.origin_vehicle if swap else np.full(k, -1, np.int64),
            "station": np.asarray([pw.net.station_ids[i] for i in pw.sl_station], object) if swap else np.full(k, None, object),
            "retired_step": sl.retired_step - self.start_step,
            "recycled_step": np.where(sl.recycled_step >= 0, sl.recycled_step - self.start_step, -1),
            "soh_at_retirement": sl.soh_at_retirement,
            "soh": soh,
            "capacity_kwh": sl.cap_kwh,
            "fec_at_retirement": sl.fec_at_retirement,
            "fec": sl.pop.state.fec,
            "fade_second_life_pct": 100 * (sl.soh_at_retirement - soh),
            "e_charged_kwh": sl.e_charged_kwh,
            "e_discharged_kwh": sl.e_discharged_kwh,
            "revenue_cny": sl.revenue_cny,
            "status": np.where(sl.alive, "second_life", "recycled"),
        })

    def kpis(self) -> dict[str, float]:
        """Counts the tables cannot show (validity warnings, packs recycled without second life)."""
        out = {"wear_out_of_range_periods": float(self.n_out_of_range), "packs_recycled_direct": float(self.packs_recycled_direct)}
        if self.pack_wears:
            out["swap_pack_out_of_range_periods"] = float(sum(pw.n_out_of_range for pw in self.pack_wears))
            out["swap_packs_recycled_direct"] = float(sum(pw.packs_recycled_direct for pw in self.pack_wears))
        return out

    def swap_pack_table(self):
        """Every swap pack position (pack id of its :class:`~v2gsim.agents.swap_station.SwapNetwork`),
        one row each, over all swap networks (pandas DataFrame); None without swap packs."""
        import pandas as pd

        if not self.pack_wears:
            return None
        return pd.concat([pw.table(k) for k, pw in enumerate(self.pack_wears)], ignore_index=True)
