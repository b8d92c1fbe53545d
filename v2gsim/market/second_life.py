"""Second-life storage: retired packs (the fleet's and every swap network's) kept as stationary
storage, operated by the tariff, ageing on, and the actor that runs them in the engine's phases."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from v2gsim.engine.actor import Actor, GridInjections, Signals
from v2gsim.market.settlement import GRID_COMPANY, SECOND_LIFE
from v2gsim.physics.ageing.population import WearPopulation

if TYPE_CHECKING:  # pragma: no cover
    from v2gsim.physics.ageing.config import SecondLifeConfig
    from v2gsim.physics.ageing.fleet import FleetWear
    from v2gsim.physics.wear import WearState


class SecondLifeStorage:
    """Retired vehicle packs at one site, operated as a stationary battery by the tariff.

    The packs charge at up to ``c_rate_max_per_h`` in the lowest price band and discharge in the
    highest (bands from the run's price range), within ``[soc_min, soc_max]`` of their present
    capacity. Revenue is the arbitrage at the site's purchase price (energy discharged replaces
    energy bought). Packs below ``end_of_life_soh`` are recycled. ``p_kw`` (total) and
    ``p_each_kw`` (per pack, shape (K,)) are the step's grid power (> 0 charging); the engine puts
    it on the feeder (:meth:`FleetWear.storage_step`).
    """

    def __init__(self, cfg: SecondLifeConfig, models, price_cny_per_kwh: np.ndarray, dt_h: float):
        self.cfg = cfg
        self.dt_h = dt_h
        self.price = price_cny_per_kwh
        lo, hi = float(np.min(price_cny_per_kwh)), float(np.max(price_cny_per_kwh))
        band = cfg.band_frac * (hi - lo)
        self.mode = np.zeros(price_cny_per_kwh.size, dtype=np.int8)
        if hi - lo > 1e-9:
            self.mode[price_cny_per_kwh <= lo + band] = 1
            self.mode[price_cny_per_kwh >= hi - band] = -1
        self.pop = WearPopulation(np.zeros(0), np.zeros(0, np.int64), models, shadow=False)
        self.e_kwh = np.zeros(0)
        self.cap_kwh = np.zeros(0)
        self.alive = np.zeros(0, bool)
        self.origin_vehicle = np.zeros(0, np.int64)
        self.retired_step = np.zeros(0, np.int64)
        self.recycled_step = np.zeros(0, np.int64)
        self.soh_at_retirement = np.zeros(0)
        self.fec_at_retirement = np.zeros(0)
        self.e_charged_kwh = np.zeros(0)  # grid side
        self.e_discharged_kwh = np.zeros(0)  # grid side
        self.revenue_cny = np.zeros(0)
        self._thr0 = np.zeros((0, 2))
        self.p_kw = 0.0
        self.p_each_kw = np.zeros(0)
        self._grid_idx, self._grid_kwh = None, None  # the last step's packs that moved energy and their grid kWh

    def __len__(self) -> int:
        return self.e_kwh.size

    def add(self, step: int, vehicles, cap_nom_kwh, model_ids, state_rows: WearState, e_kwh) -> None:
        k = len(vehicles)
        if k == 0:
            return
        soh = 1.0 - np.clip(state_rows.q_loss_cal + state_rows.q_loss_cyc, 0.0, 1.0)
        self.pop.append(cap_nom_kwh, model_ids, state_rows)
        cap = cap_nom_kwh * soh
        self.cap_kwh = np.r_[self.cap_kwh, cap]
        self.e_kwh = np.r_[self.e_kwh, np.minimum(e_kwh, cap)]
        self.alive = np.r_[self.alive, np.ones(k, bool)]
        self.origin_vehicle = np.r_[self.origin_vehicle, vehicles]
        self.retired_step = np.r_[self.retired_step, np.full(k, step)]
        self.recycled_step = np.r_[self.recycled_step, np.full(k, -1)]
        self.soh_at_retirement = np.r_[self.soh_at_retirement, soh]
        self.fec_at_retirement = np.r_[self.fec_at_retirement, state_rows.fec]
        for name in ("e_charged_kwh", "e_discharged_kwh", "revenue_cny", "p_each_kw"):
            setattr(self, name, np.r_[getattr(self, name), np.zeros(k)])
        self._thr0 = np.r_[self._thr0, np.zeros((k, 2))]
        # the new packs start their period now: their statistics begin at the present energy
        n0 = len(self) - k
        self.pop.e_min[n0:] = self.e_kwh[n0:]
        self.pop.e_max[n0:] = self.e_kwh[n0:]
        self.pop.e_int[n0:] = self.e_kwh[n0:] * self.pop.n_samples

    def step(self, s: int) -> None:
        """Charge or discharge by the tariff for one step; sample the wear stressors."""
        if self.p_kw != 0.0:
            self.p_each_kw[:] = 0.0
        self._grid_idx, self._grid_kwh = None, None  # what settle() pays for
        if not self.alive.any():
            self.p_kw = 0.0
            return
        c, dt = self.cfg, self.dt_h
        mode = self.mode[s]
        idx = np.flatnonzero(self.alive)
        if mode != 0:
            cap, e = self.cap_kwh[idx], self.e_kwh[idx]
            p_lim = c.c_rate_max_per_h * cap
            if mode > 0:
                de = np.minimum(p_lim * dt, np.maximum(c.soc_max * cap - e, 0.0))
                if c.p_max_kw is not None and de.sum() / c.eta_charge > c.p_max_kw * dt:  # converter rating, pro rata
                    de *= c.p_max_kw * dt * c.eta_charge / de.sum()
                grid = de / c.eta_charge
                self.e_charged_kwh[idx] += grid
            else:
                de = -np.minimum(p_lim * dt, np.maximum(e - c.soc_min * cap, 0.0))
                if c.p_max_kw is not None and -de.sum() * c.eta_discharge > c.p_max_kw * dt:
                    de *= c.p_max_kw * dt / (-de.sum() * c.eta_discharge)
                grid = de * c.eta_discharge
                self.e_discharged_kwh[idx] += -grid
            self._grid_idx, self._grid_kwh = idx, grid
            self.e_kwh[idx] = e + de
            self.pop.record_power(idx, grid / dt, dt)
            self.p_each_kw[idx] = grid / dt
            self.p_kw = float(grid.sum() / dt)
        else:
            self.p_kw = 0.0
        self.pop.sample(self.e_kwh)

    def settle(self, s: int) -> tuple[float, float, float, float]:
        """The step's money per pack (``revenue_cny``): energy bought at the site's purchase price,
        energy discharged credited at it (it replaces energy bought). Returns the step's
        (kWh bought, CNY paid, kWh fed back, CNY credited)."""
        idx, grid = self._grid_idx, self._grid_kwh
        if idx is None:
            return 0.0, 0.0, 0.0, 0.0
        if self.mode[s] > 0:
            paid = grid * self.price[s]
            self.revenue_cny[idx] -= paid
            return float(grid.sum()), float(paid.sum()), 0.0, 0.0
        got = -grid * self.price[s]
        self.revenue_cny[idx] += got
        return 0.0, 0.0, float(-grid.sum()), float(got.sum())

    def close_period(self, s: int, dt_s: float, t_amb_degc: float, heating_k_per_c_rate: float) -> None:
        if len(self) == 0:
            return
        c = self.cfg
        thr_c = (self.e_charged_kwh - self._thr0[:, 0]) * c.eta_charge
        thr_d = (self.e_discharged_kwh - self._thr0[:, 1]) / c.eta_discharge
        grid = (self.e_charged_kwh - self._thr0[:, 0]) + (self.e_discharged_kwh - self._thr0[:, 1])
        self._thr0 = np.c_[self.e_charged_kwh, self.e_discharged_kwh]
        soh0 = self.pop.state.soh
        self.pop.close_period(dt_s=dt_s, cap_kwh=np.maximum(self.cap_kwh, 1e-9), thr_drive=np.zeros(len(self)), thr_charge=thr_c,
                              thr_v2g=thr_d, thr_grid_kwh=grid, c_drive=0.0, t_amb_degc=t_amb_degc, heating_k_per_c_rate=heating_k_per_c_rate)
        soh1 = self.pop.state.soh
        ratio = np.divide(soh1, soh0, out=np.ones(len(self)), where=soh0 > 0)
        self.cap_kwh *= ratio
        self.e_kwh *= ratio
        dead = self.alive & (soh1 < c.end_of_life_soh)
        if dead.any():
            self.alive[dead] = False
            self.recycled_step[dead] = s
            self.e_kwh[dead] = 0.0
        self.pop.begin_period(self.e_kwh)


class SecondLifeActor(Actor):
    """Second-life storage of retired packs (the fleet's and every swap network's, held by
    :class:`FleetWear`) as an actor: it operates the storages in the physics phase, puts their
    power on the feeder in the grid phase and records ``second_life_charge_kw`` /
    ``second_life_discharge_kw``.

    Retired vehicle packs sit at ``second_life.site``'s bus (spread over the site's piles, or over
    every EV connection without a site); retired swap packs at their station's bus.
    """

    def __init__(self, wear: FleetWear):
        self.wear = wear
        self.p_kw = 0.0
        self._charge_kw = self._discharge_kw = 0.0
        self._operated = False

    def physics(self, sig: Signals) -> None:
        """Operate every storage for the step (none before the recorded run starts)."""
        p = ch = dis = 0.0
        self._operated = self.wear.started
        if self.wear.started:
            for sl in self.wear.storages():
                sl.step(sig.step)
                if sl.p_kw > 0:
                    ch += sl.p_kw
                else:
                    dis -= sl.p_kw
                p += sl.p_kw
        self.p_kw, self._charge_kw, self._discharge_kw = p, ch, dis

    def grid(self, sig: Signals, injections: GridInjections) -> None:
        injections.add(self.p_kw, self._at_loads if self.p_kw != 0.0 else None)

    def _at_loads(self, feeder) -> np.ndarray:
        """The step's second-life power per EV load element of a network feeder, shape (n_ev,)."""
        w = self.wear
        out = np.zeros(feeder.n_ev)
        sl = w.second_life
        if sl is not None and sl.p_kw != 0.0:
            out += feeder.site_bus_kw(w.second_life_site, sl.p_kw)
        for pw in w.pack_wears:
            if pw.second_life is not None and pw.second_life.p_kw != 0.0:
                out += feeder.connection_bus_kw(pw.net, np.bincount(pw.sl_station, weights=pw.second_life.p_each_kw,
                                                                    minlength=pw.net.n_stations))
        return out

    def settle(self, sig: Signals, ledger) -> None:
        """The packs' owner buys energy from the grid company and is credited the purchase price
        for what it feeds back (per pack in ``revenue_cny``)."""
        if not self._operated:
            return
        for sl in self.wear.storages():
            kwh_in, paid, kwh_out, got = sl.settle(sig.step)
            ledger.post(sig.row, SECOND_LIFE, GRID_COMPANY, "energy_purchase", kwh_in, paid)
            ledger.post(sig.row, GRID_COMPANY, SECOND_LIFE, "energy_sale", kwh_out, got)

    def declare(self, recorder) -> None:
        """Per recorded step: second_life_charge_kw, second_life_discharge_kw (both >= 0)."""
        self._rec_charge_kw = recorder.declare_system("second_life_charge_kw")
        self._rec_discharge_kw = recorder.declare_system("second_life_discharge_kw")

    def record(self, sig: Signals) -> None:
        r = sig.row
        if 0 <= r < self._rec_charge_kw.size:
            self._rec_charge_kw[r] += self._charge_kw
            self._rec_discharge_kw[r] += self._discharge_kw
