"""Battery ageing in the running model: stressors, temperature, attribution, price, second life.

:mod:`v2gsim.physics.wear` holds the published fade models (pure, vectorised). This module runs
them inside a simulation (see ``docs/wear.md`` "Integration"):

* :class:`WearPopulation` -- the stressor accumulators and wear state of N battery packs of any
  kind (vehicle packs, swap-station packs, second-life packs). Every step its owner calls
  :meth:`~WearPopulation.sample` (dense, three numpy ops over N) and, for packs that moved energy,
  :meth:`~WearPopulation.record_power`; once per period :meth:`~WearPopulation.close_period`
  advances the fade models over arrays. A second population of packs uses the same code.
* :class:`FleetWear` -- the engine's wear phase for the vehicle fleet: period timing, battery
  temperature from the ambient profile, capacity feedback into the fleet arrays, the marginal
  wear price written into ``fleet.wear_cost_cny_per_kwh``, retirement and replacement of packs.
* :class:`SwapPackWear` -- the packs of a battery-swap network as a second population of cells:
  the same accumulators and fade update; a pack's ageing follows the pack (rack or vehicle), its
  state of health sets its usable capacity, its marginal wear price goes to the station EMS.
* :class:`SecondLifeStorage` -- retired packs kept at a site as stationary storage, charging in
  valley and discharging in peak tariff hours, ageing on with their own :class:`WearPopulation`.

Attribution of a vehicle's fade to causes uses a *shadow* wear state: the same vehicle's history
with its V2G throughput removed (every V2G discharge, and the charging that later replaces it,
taken out of the throughput; the state of charge raised by the not-yet-replaced V2G energy). The
shadow is advanced with the same model and the same arithmetic as the real state, so without V2G
both are bit-identical and the V2G share is exactly zero.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from v2gsim.engine.actor import Actor, GridInjections, Signals, VehiclePower
from v2gsim.fields import ConfigModel
from v2gsim.market.settlement import GRID_COMPANY, SECOND_LIFE
from v2gsim.physics.ambient import AmbientConfig, ambient_on_clock
from v2gsim.physics.wear import WEAR_MODELS, WearState, model_for_chemistry

__all__ = ["WearConfig", "SecondLifeConfig", "WearPopulation", "FleetWear", "SwapPackWear", "SecondLifeStorage", "SecondLifeActor"]


_Frozen = ConfigModel  # every config model's base (v2gsim.fields)


class SecondLifeConfig(_Frozen):
    enabled: bool = Field(default=True, description="keep retired vehicle packs as stationary storage (else they are recycled)")
    site: str | None = Field(default=None, description="site id that hosts the storage of retired vehicle packs (its bus on a network; null: spread over the EV connections)")
    c_rate_max_per_h: Annotated[float, Field(gt=0, le=2, description="charge/discharge power limit per pack, in capacities per hour")] = 0.5
    p_max_kw: Annotated[float, Field(gt=0, le=1e6, description="converter rating of each storage (grid side, both directions); null: the packs' C-rate only")] | None = None
    soc_min: Annotated[float, Field(ge=0, le=0.5, description="lower SOC limit of the stationary operation")] = 0.1
    soc_max: Annotated[float, Field(ge=0.5, le=1, description="upper SOC limit of the stationary operation")] = 0.95
    eta_charge: Annotated[float, Field(gt=0.5, le=1, description="grid-to-battery efficiency of the storage converter")] = 0.95
    eta_discharge: Annotated[float, Field(gt=0.5, le=1, description="battery-to-grid efficiency of the storage converter")] = 0.95
    end_of_life_soh: Annotated[float, Field(ge=0.3, le=0.95, description="second-life packs are recycled below this state of health")] = 0.6
    band_frac: Annotated[
        float, Field(gt=0, le=0.5, description="charge where the price is in the lowest band_frac of the run's price range, discharge in the highest")
    ] = 0.25


class WearConfig(_Frozen):
    """Scenario section ``wear``: battery ageing of every vehicle (and retired pack)."""

    model: str = Field(
        default="off",
        description="fade model: auto (per chemistry: LFP naumann_lfp, NMC schmalstieg_nmc), off, or a registered "
        "wear model (v2gsim schema lists them)",
    )
    update_period_h: Annotated[
        float, Field(gt=0, le=8760, description="fade models advance once per period; must be a whole number of steps")
    ] = 24.0
    ambient: AmbientConfig = Field(default_factory=AmbientConfig, description="ambient temperature profile (default: guangzhou preset)")
    heating_k_per_c_rate: Annotated[
        float, Field(ge=0, le=50, description="battery temperature rise above ambient per 1C of current (steady state), K")
    ] = 8.0
    driving_speed_kmh: Annotated[
        float, Field(gt=0, le=120, description="mean driving speed, turns consumption into the traction C-rate")
    ] = 30.0
    retirement_soh: Annotated[
        float, Field(ge=0.5, le=0.99, description="packs below this state of health leave vehicle service (end of life for the wear price)")
    ] = 0.8
    replacement_cost_cny_per_kwh: Annotated[
        float, Field(ge=0, le=10_000, description="price of a replacement pack per kWh of capacity")
    ] = 650.0
    price_dispatch: bool = Field(default=True, description="write the marginal wear price into fleet.wear_cost_cny_per_kwh for strategies")
    marginal_window_fec: Annotated[
        float, Field(gt=0, le=10_000, description="the marginal wear price is the fade of the next this-many full equivalent cycles, per cycle")
    ] = 100.0
    rainflow: bool = Field(default=True, description="xu_rainflow: rainflow-count an hourly SOC history (a Python loop per vehicle and period)")
    second_life: SecondLifeConfig = Field(default_factory=SecondLifeConfig)

    @field_validator("model")
    @classmethod
    def _registered(cls, v: str) -> str:
        if v not in ("auto", "off") and v not in WEAR_MODELS:  # the registry as it is now, plugins included
            raise PydanticCustomError("unknown_name", "unknown wear model '{name}'", {"name": v, "hint": WEAR_MODELS.hint(v, "auto", "off")})
        return v

    @property
    def enabled(self) -> bool:
        return self.model != "off"


# causes of throughput
DRIVE, CHARGE, V2G = 0, 1, 2


class WearPopulation:
    """Stressor accumulators and wear states of N packs.

    Args:
        cap_nom_kwh: nominal (new) usable capacity per pack, shape (N,).
        model_ids: index into ``models`` per pack, shape (N,).
        models: fade model instances (:mod:`v2gsim.physics.wear`).
        shadow: keep a second state without V2G throughput (attribution of V2G fade).
        history: samples per period to keep as SOC history (rainflow), 0 for none.

    Energies are battery-side kWh; ``e`` passed to :meth:`sample` is the stored energy.
    """

    def __init__(self, cap_nom_kwh, model_ids, models, *, shadow: bool = True, history: int = 0):
        n = len(cap_nom_kwh)
        self.models = list(models)
        self.cap_nom_kwh = np.asarray(cap_nom_kwh, dtype=np.float64).copy()
        self.model_ids = np.asarray(model_ids, dtype=np.int64).copy()
        self.state = WearState.zeros(n)
        self.with_shadow = shadow
        self.shadow = WearState.zeros(n) if shadow else None
        self.history = int(history)
        # models fed the SOC history (rainflow counting): Xu et al.
        self.hist_models = {i for i, m in enumerate(self.models) if getattr(m, "uses_soc_history", False)} if self.history else set()
        self.sh_diverged = False  # the shadow has seen V2G at some time (else it equals the real state)
        self._alloc_period(n)
        # attribution of the shadow's cycle fade to driving and charging (fractions of nominal)
        self.fade_drive = np.zeros(n)
        self.fade_charge = np.zeros(n)
        # V2G energy taken from the battery and not yet replaced by charging (battery kWh)
        self.debt_kwh = np.zeros(n)
        self.n_debt = 0
        self.t_degc_sum = np.zeros(n)  # sum over periods of period-mean battery temperature x period h
        self.t_h = 0.0

    # ------------------------------------------------------------------ per period accumulators
    def _alloc_period(self, n):
        self.n_samples = 0
        self.e_int = np.zeros(n)
        self.e_min = np.zeros(n)
        self.e_max = np.zeros(n)
        self.p2_int = np.zeros(n)  # sum of p^2 dt over physics steps, kW^2 h (grid side)
        self.repaid_kwh = np.zeros(n)  # charging that replaced earlier V2G energy this period
        self.sh_active = False
        self.sh_e_int = self.sh_e_min = self.sh_e_max = None
        self.hist = np.zeros((n, self.history), dtype=np.float32) if self.history else None
        self._hist_pos = 0

    def __len__(self) -> int:
        return self.cap_nom_kwh.shape[0]

    def begin_period(self, e_kwh: np.ndarray) -> None:
        """Start a period at stored energies ``e_kwh`` (N,)."""
        self.n_samples = 0
        self.e_int[:] = 0.0
        np.copyto(self.e_min, e_kwh)
        np.copyto(self.e_max, e_kwh)
        self.p2_int[:] = 0.0
        self.repaid_kwh[:] = 0.0
        self._hist_pos = 0
        self.sh_active = False
        if self.n_debt:
            self._activate_shadow(e_kwh, first_sample=True)

    def _activate_shadow(self, e_kwh, first_sample=False):
        # from now on the shadow's SOC statistics differ from the real ones; until now they were equal
        self.sh_active = True
        self.sh_e_int = self.e_int.copy()
        if first_sample:
            e_sh = e_kwh + self.debt_kwh
            self.sh_e_min, self.sh_e_max = e_sh.copy(), e_sh.copy()
        else:
            self.sh_e_min, self.sh_e_max = self.e_min.copy(), self.e_max.copy()

    def sample(self, e_kwh: np.ndarray, soc_for_history=None) -> None:
        """Record the stored energy of all packs at the end of a step (dense; ~3 ops over N)."""
        self.n_samples += 1
        self.e_int += e_kwh
        np.minimum(self.e_min, e_kwh, out=self.e_min)
        np.maximum(self.e_max, e_kwh, out=self.e_max)
        if self.sh_active:
            e_sh = e_kwh + self.debt_kwh
            self.sh_e_int += e_sh
            np.minimum(self.sh_e_min, e_sh, out=self.sh_e_min)
            np.maximum(self.sh_e_max, e_sh, out=self.sh_e_max)
        if self.hist is not None and soc_for_history is not None and self._hist_pos < self.history:
            self.hist[:, self._hist_pos] = soc_for_history
            self._hist_pos += 1

    def record_power(self, idx: np.ndarray, p_kw: np.ndarray, dt_h: float, de_batt_kwh=None) -> None:
        """Packs ``idx`` moved grid-side power ``p_kw`` for ``dt_h`` (battery-side change ``de_batt_kwh``).

        ``de_batt_kwh`` is needed only where some pack discharged or owes V2G energy (the shadow);
        pass a callable returning it to compute it lazily.
        """
        if idx.size == 0:
            return
        self.p2_int[idx] += p_kw * p_kw * dt_h
        if not self.with_shadow or (self.n_debt == 0 and not (p_kw < 0).any()):
            return
        de = de_batt_kwh() if callable(de_batt_kwh) else de_batt_kwh
        d0 = self.debt_kwh[idx]
        dis = np.maximum(-de, 0.0)
        rep = np.minimum(np.maximum(de, 0.0), d0)
        d1 = d0 + dis - rep
        self.debt_kwh[idx] = d1
        self.repaid_kwh[idx] += rep
        self.n_debt += int(np.count_nonzero(d1 > 0.0)) - int(np.count_nonzero(d0 > 0.0))
        if self.n_debt and not self.sh_active:
            self._activate_shadow(None)

    # ------------------------------------------------------------------ the period update
    def close_period(self, *, dt_s: float, cap_kwh, thr_drive, thr_charge, thr_v2g, thr_grid_kwh, c_drive,
                     t_amb_degc: float, heating_k_per_c_rate: float) -> dict:
        """Advance the fade models by one period; return the period's stressors.

        Args:
            dt_s: period length, s.
            cap_kwh: usable capacity during the period (N,) (SOC and DOD are relative to it).
            thr_drive, thr_charge, thr_v2g: battery-side throughput of the period by cause, kWh (N,).
            thr_grid_kwh: grid-side energy moved through chargers (charge + discharge), kWh (N,).
            c_drive: traction C-rate while driving, 1/h (N,) or scalar.
            t_amb_degc: mean ambient temperature of the period, degC.
            heating_k_per_c_rate: steady temperature rise per 1C, K.
        """
        n = len(self)
        period_h = dt_s / 3600.0
        ns = max(self.n_samples, 1)
        cap = np.asarray(cap_kwh, dtype=np.float64)
        inv_cap = 1.0 / cap
        soc_mean = np.clip(self.e_int / ns * inv_cap, 0.0, 1.0)
        dod = np.clip((self.e_max - self.e_min) * inv_cap, 0.0, 1.0)
        if self.n_samples == 0:
            dod = np.zeros(n)
        thr_cv = thr_charge + thr_v2g
        thr = thr_drive + thr_cv
        # throughput-weighted C-rate: chargers from sum(p^2 dt)/sum(|p| dt), driving from consumption x speed
        c_grid = np.divide(self.p2_int, thr_grid_kwh, out=np.zeros(n), where=thr_grid_kwh > 1e-12) * inv_cap
        c_rate = np.divide(c_grid * thr_cv + c_drive * thr_drive, thr, out=np.zeros(n), where=thr > 1e-12)
        fec = thr / (2.0 * self.cap_nom_kwh)
        # temperature: mean rise = k * sum(C * duration) / period = k * (throughput / capacity) / period
        t_degc = t_amb_degc + heating_k_per_c_rate * thr * inv_cap / period_h
        hist = self.hist[:, : self._hist_pos] if (self.hist is not None and self._hist_pos >= 2) else None
        stress = dict(dt_s=dt_s, t_degc=t_degc, soc_mean=soc_mean, fec=fec, dod=dod, c_rate=c_rate)
        n_bad = self._update(self.state, stress, hist)
        if self.with_shadow:
            sh_cq = self.shadow.q_loss_cyc.copy()
            if not self.sh_diverged and (self.sh_active or np.any(thr_v2g) or np.any(self.repaid_kwh)):
                self.sh_diverged = True
            if self.sh_diverged:
                if self.sh_active:
                    sh_soc = np.clip(self.sh_e_int / ns * inv_cap, 0.0, 1.0)
                    sh_dod = np.clip((self.sh_e_max - self.sh_e_min) * inv_cap, 0.0, 1.0) if self.n_samples else dod
                else:  # no V2G energy owed during this period: the shadow's SOC equalled the real one
                    sh_soc, sh_dod = soc_mean, dod
                thr_charge_sh = np.maximum(thr_charge - self.repaid_kwh, 0.0)
                thr_sh = thr_drive + thr_charge_sh
                c_sh = np.divide(c_grid * thr_charge_sh + c_drive * thr_drive, thr_sh, out=np.zeros(n), where=thr_sh > 1e-12)
                t_sh = t_amb_degc + heating_k_per_c_rate * thr_sh * inv_cap / period_h
                sh_stress = dict(dt_s=dt_s, t_degc=t_sh, soc_mean=sh_soc, fec=thr_sh / (2.0 * self.cap_nom_kwh), dod=sh_dod, c_rate=c_sh)
                # the rainflow history is the real one; without V2G it would be smoother (documented)
                self._update(self.shadow, sh_stress, hist)
            else:  # no V2G ever: the shadow's inputs equal the real ones, so its state does too
                thr_charge_sh, thr_sh = thr_charge, thr
                for name in ("q_loss_cal", "q_loss_cyc", "t_s", "fec", "fd_cal", "fd_cyc", "n_out_of_range"):
                    np.copyto(getattr(self.shadow, name), getattr(self.state, name))
            d_cyc = self.shadow.q_loss_cyc - sh_cq
            share_drive = np.divide(thr_drive, thr_sh, out=np.zeros(n), where=thr_sh > 1e-12)
            self.fade_drive += d_cyc * share_drive
            self.fade_charge += d_cyc * (1.0 - share_drive)
        self.t_degc_sum += t_degc * period_h
        self.t_h += period_h
        stress["n_out_of_range"] = n_bad
        return stress

    def _update(self, state, stress, hist) -> int:
        n_bad = 0
        if len(self.models) == 1:
            groups = [(0, slice(None), np.arange(len(self)))]
        else:
            groups = [(m_i, sel, sel) for m_i in range(len(self.models)) if (sel := np.flatnonzero(self.model_ids == m_i)).size]
        for m_i, sel, idx in groups:
            kw = {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in stress.items()}
            if hist is not None and m_i in self.hist_models:
                kw["soc_history"] = hist[sel]
            n_bad += self.models[m_i].update(state, idx, **kw)
        return n_bad

    # ------------------------------------------------------------------ price and attribution
    def marginal_fade_per_fec(self, stress: dict, window_fec: float) -> np.ndarray:
        """Fade (fraction of nominal) per full equivalent cycle over the next ``window_fec`` cycles,
        at this period's stressors (depth at least 0.1, C-rate at least 0.1). Shape (N,)."""
        n = len(self)
        trial = self.state.copy()
        st = dict(stress)
        st.pop("n_out_of_range", None)
        st.update(dt_s=0.0, fec=np.full(n, float(window_fec)),
                  dod=np.clip(np.asarray(st["dod"]), 0.1, 1.0), c_rate=np.maximum(np.asarray(st["c_rate"]), 0.1))
        q0 = trial.q_loss.copy()
        self._update(trial, st, None)
        return np.maximum(trial.q_loss - q0, 0.0) / window_fec

    def attribution(self) -> dict[str, np.ndarray]:
        """Fade of the current packs by cause, fractions of nominal capacity, shape (N,) each.

        calendar + driving + charging + v2g = total fade. The V2G part is the real fade minus the
        shadow's (it may be negative where V2G lowered the mean SOC enough to slow calendar ageing).
        """
        total = self.state.q_loss
        if not self.with_shadow:
            return {"total": total, "calendar": self.state.q_loss_cal.copy(), "driving": np.zeros(len(self)),
                    "charging": self.state.q_loss_cyc.copy(), "v2g": np.zeros(len(self))}
        sh_total = self.shadow.q_loss
        return {"total": total, "calendar": self.shadow.q_loss_cal.copy(), "driving": self.fade_drive.copy(),
                "charging": self.fade_charge.copy(), "v2g": total - sh_total}

    def reset_packs(self, idx: np.ndarray) -> None:
        """New packs at ``idx``: fresh wear states, no V2G debt, no attribution."""
        for st in (self.state, self.shadow):
            if st is None:
                continue
            for name in ("q_loss_cal", "q_loss_cyc", "t_s", "fec", "fd_cal", "fd_cyc", "n_out_of_range"):
                getattr(st, name)[idx] = 0.0
        self.fade_drive[idx] = 0.0
        self.fade_charge[idx] = 0.0
        self.n_debt -= int(np.count_nonzero(self.debt_kwh[idx] > 0))
        self.debt_kwh[idx] = 0.0

    def append(self, cap_nom_kwh, model_ids, state_rows: WearState) -> None:
        """Add packs (e.g. retired vehicle packs entering second life) with their wear so far."""
        k = len(cap_nom_kwh)
        if k == 0:
            return
        self.cap_nom_kwh = np.r_[self.cap_nom_kwh, cap_nom_kwh]
        self.model_ids = np.r_[self.model_ids, np.asarray(model_ids, dtype=np.int64)]
        for name in ("q_loss_cal", "q_loss_cyc", "t_s", "fec", "fd_cal", "fd_cyc", "n_out_of_range"):
            setattr(self.state, name, np.r_[getattr(self.state, name), getattr(state_rows, name)])
            if self.shadow is not None:
                setattr(self.shadow, name, np.r_[getattr(self.shadow, name), getattr(state_rows, name)])
        for name in ("fade_drive", "fade_charge", "debt_kwh", "t_degc_sum"):
            setattr(self, name, np.r_[getattr(self, name), np.zeros(k)])
        n = len(self)
        keep_samples = self.n_samples
        e_int, e_min, e_max, p2 = self.e_int, self.e_min, self.e_max, self.p2_int
        self._alloc_period(n)
        self.n_samples = keep_samples
        self.e_int[: e_int.size], self.e_min[: e_min.size], self.e_max[: e_max.size], self.p2_int[: p2.size] = e_int, e_min, e_max, p2


def _resolve_models(cfg: WearConfig, chemistries: list[str]):
    """Model instances and, per chemistry name, the index of its model."""
    if cfg.model == "auto":
        names = [{"LFP": "naumann_lfp"}.get(c.upper(), "schmalstieg_nmc") for c in chemistries]
    else:
        names = [cfg.model] * len(chemistries)
    uniq = sorted(set(names), key=names.index)
    models = [WEAR_MODELS[u]() if cfg.model != "auto" else model_for_chemistry(chemistries[names.index(u)]) for u in uniq]
    return models, [uniq.index(nm) for nm in names], uniq


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


class FleetWear(Actor):
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
                 zone: str | None = None, *, power: VehiclePower | None = None, second_life_site: int | None = None):
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
        self.started = False
        self.finished = False
        self.marginal_cny_per_kwh = np.zeros(n)
        self._initial_price(f)

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
        stress = self.pop.close_period(dt_s=dt_s, cap_kwh=f.capacity_kwh, thr_drive=d_drv, thr_charge=d_chg * f.eta_charge,
                                       thr_v2g=d_dis / f.eta_discharge, thr_grid_kwh=d_chg + d_dis, c_drive=self.c_drive,
                                       t_amb_degc=t_amb, heating_k_per_c_rate=cfg.heating_k_per_c_rate)
        self.n_out_of_range += stress["n_out_of_range"]
        self._last_stress = stress
        # capacity feedback, keeping the state of charge (vehicles with a leased swap pack: from the pack)
        soh = self.pop.state.soh
        own = slice(None) if not self.leased.any() else np.flatnonzero(~self.leased)
        self.apply_soh(own, soh)
        for pw in self.pack_wears:
            pw.close(s_next, dt_s, t_amb)
        # retirement: the vehicle gets a new pack; the old one goes to second life (or recycling)
        ret = np.flatnonzero((soh < cfg.retirement_soh) & ~self.leased)
        if ret.size:
            self._retire(ret, s_next)
        if cfg.price_dispatch:
            self._price(stress)
        if self.second_life is not None:
            self.second_life.close_period(s_next, dt_s, t_amb, cfg.heating_k_per_c_rate)
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

    def _retire(self, ret: np.ndarray, s: int) -> None:
        f = self.fleet
        pop = self.pop
        att = pop.attribution()
        for k in self.retired:
            self.retired[k][ret] += att[k][ret]
        self.retired_fec[ret] += pop.state.fec[ret]
        rows = WearState(**{name: getattr(pop.state, name)[ret].copy() for name in
                            ("q_loss_cal", "q_loss_cyc", "t_s", "fec", "fd_cal", "fd_cyc", "n_out_of_range")})
        if self.second_life is not None:
            self.second_life.add(s, ret, self.cap_nom_kwh[ret], pop.model_ids[ret], rows, f.e_kwh[ret].copy())
        else:
            self.packs_recycled_direct += ret.size
        self.packs_replaced[ret] += 1
        self.replacement_cost_cny[ret] += self.cfg.replacement_cost_cny_per_kwh * self.cap_nom_kwh[ret]
        pop.reset_packs(ret)
        self.apply_soh(ret, np.ones(f.n))

    def _price(self, stress) -> None:
        f = self.fleet
        dq_per_fec = self.pop.marginal_fade_per_fec(stress, self.cfg.marginal_window_fec)
        # one kWh of grid-side throughput moves about (eta_c + 1/eta_d)/2 kWh in the battery,
        # which is that over (2 x nominal capacity) full equivalent cycles
        batt_per_grid = 0.5 * (f.eta_charge + 1.0 / f.eta_discharge)
        self.marginal_cny_per_kwh = dq_per_fec * self.cost_per_q_cny * batt_per_grid / (2.0 * self.cap_nom_kwh)
        f.wear_cost_cny_per_kwh[:] = self.marginal_cny_per_kwh

    def _initial_price(self, f) -> None:
        """A price before the first period ends: typical stressors (SOC 0.6, depth 0.3, 0.2C)."""
        if not self.cfg.price_dispatch:
            return
        n = f.n
        stress = dict(dt_s=0.0, t_degc=np.full(n, float(self.t_amb_degc.mean())), soc_mean=np.full(n, 0.6),
                      fec=np.zeros(n), dod=np.full(n, 0.3), c_rate=np.full(n, 0.2))
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
            "fec": self.retired_fec + pop.state.fec,
            "e_v2g_kwh": f.e_discharged_kwh.copy(),
            "battery_t_mean_degc": mean_t,
            "packs_replaced": self.packs_replaced,
            "wear_cost_cny": tot["total"] * cost_q,
            "wear_cost_v2g_cny": tot["v2g"] * cost_q,
            "replacement_cost_cny": self.replacement_cost_cny,
            "marginal_wear_cny_per_kwh": self.marginal_cny_per_kwh,
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


class SwapPackWear:
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
    * the marginal wear price per battery kWh discharged (and later recharged) goes to
      ``packs.wear_cost_cny_per_kwh``, which the station EMS reads with ``wear_cny_per_kwh: model``;
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
        if cfg.price_dispatch:
            n = P
            stress = dict(dt_s=0.0, t_degc=np.full(n, float(fw.t_amb_degc.mean())), soc_mean=np.full(n, 0.6),
                          fec=np.zeros(n), dod=np.full(n, 0.3), c_rate=np.full(n, 0.2))
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
        stress = self.pop.close_period(dt_s=dt_s, cap_kwh=pk.capacity_kwh * pk.soh, thr_drive=self.thr[0], thr_charge=self.thr[1],
                                       thr_v2g=self.thr[2], thr_grid_kwh=self.thr_grid, c_drive=self.c_drive, t_amb_degc=t_amb,
                                       heating_k_per_c_rate=cfg.heating_k_per_c_rate)
        self.n_out_of_range += stress["n_out_of_range"]
        soh = self.pop.state.soh
        self._set_soh(np.arange(pk.n), soh)
        ret = np.flatnonzero(soh < cfg.retirement_soh)
        if ret.size:
            self._retire(ret, s_next)
        if cfg.price_dispatch:
            self._price(stress)
        if self.second_life is not None:
            self.second_life.close_period(s_next, dt_s, t_amb, cfg.heating_k_per_c_rate)
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
        rows = WearState(**{name: getattr(st, name)[ret].copy() for name in
                            ("q_loss_cal", "q_loss_cyc", "t_s", "fec", "fd_cal", "fd_cyc", "n_out_of_range")})
        if self.second_life is not None:
            where = np.where(pk.station[ret] >= 0, pk.station[ret], net.veh_pref[np.maximum(pk.vehicle[ret], 0)])
            self.second_life.add(s, ret, self.cap_nom_kwh[ret], pop.model_ids[ret], rows, net.pack_e_kwh()[ret])
            self.sl_station = np.r_[self.sl_station, where.astype(np.int64)]
        else:
            self.packs_recycled_direct += ret.size
        self.retired_cal[ret] += np.clip(st.q_loss_cal[ret], 0.0, 1.0)
        self.retired_cyc[ret] += np.clip(st.q_loss_cyc[ret], 0.0, 1.0)
        self.retired_fec[ret] += st.fec[ret]
        self.packs_replaced[ret] += 1
        self.replacement_cost_cny[ret] += cfg.replacement_cost_cny_per_kwh * self.cap_nom_kwh[ret]
        pop.reset_packs(ret)
        self._set_soh(ret, np.ones(ret.size))

    def _price(self, stress) -> None:
        # discharging d battery kWh and recharging it is d / capacity full equivalent cycles
        dq = self.pop.marginal_fade_per_fec(stress, self.fw.cfg.marginal_window_fec)
        self.marginal_cny_per_kwh = dq * self.cost_per_q_cny / self.cap_nom_kwh
        self.net.packs.wear_cost_cny_per_kwh[:] = self.marginal_cny_per_kwh

    # ------------------------------------------------------------------ outputs
    def table(self, network: int = 0):
        """One row per pack id (a retired pack's successor keeps its id; fade and cost summed)."""
        import pandas as pd

        net, pk, st = self.net, self.net.packs, self.pop.state
        cal = self.retired_cal + st.q_loss_cal
        cyc = self.retired_cyc + st.q_loss_cyc
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
            "fade_pct": 100 * (self.retired_cal + self.retired_cyc + st.q_loss),
            "fade_calendar_pct": 100 * cal,
            "fade_cycle_pct": 100 * cyc,
            "fec": self.retired_fec + st.fec,
            "n_swaps": pk.n_swaps.astype(np.int64),
            "packs_replaced": self.packs_replaced,
            "wear_cost_cny": (self.retired_cal + self.retired_cyc + st.q_loss) * self.cost_per_q_cny,
            "replacement_cost_cny": self.replacement_cost_cny,
            "marginal_wear_cny_per_kwh": self.marginal_cny_per_kwh,
            "e_capacity_change_kwh": self.e_capacity_change_kwh,
            "out_of_range_periods": st.n_out_of_range,
        })


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
