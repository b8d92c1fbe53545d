"""Stressor accumulators and wear states of N battery packs of any kind (vehicle, swap, second life)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from v2gsim.physics.wear import WearState

# causes of throughput
DRIVE, CHARGE, V2G = 0, 1, 2


def full_equivalent_cycles(throughput_kwh, cap_nom_kwh):
    """Full equivalent cycles of a battery-side throughput (driving, charging and V2G energy in and
    out of the cells, kWh): ``throughput / (2 x nominal capacity)``, charge plus discharge of one
    nominal capacity being one FEC. The one definition: each period's close and the cycle history
    of a pre-aged pack (:func:`v2gsim.physics.ageing.initial.history_fec`) use it."""
    return throughput_kwh / (2.0 * cap_nom_kwh)


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
        # fade the packs had when the run started (initial_age_years / initial_soh): not the run's
        self.q0_cal = np.zeros(n)
        self.q0_cyc = np.zeros(n)
        self.q0_fec = np.zeros(n)  # full equivalent cycles before the run (a pre-aged pack's history)

    def start_aged(self, age_years: np.ndarray, soh: np.ndarray, t_degc: float, fec=0.0, dod=0.0, c_rate=0.0) -> None:
        """Packs that are not new at the start (:func:`v2gsim.physics.ageing.initial.pre_age`; ``fec``,
        ``dod``, ``c_rate``: the cycle history, per pack or scalar): the shadow starts equal, the
        starting fade and cycles are kept so attribution and the FEC columns count the run's only."""
        from v2gsim.physics.ageing.initial import pre_age

        pre_age(self.state, self.models, self.model_ids, age_years, soh, t_degc, fec=fec, dod=dod, c_rate=c_rate)
        if self.shadow is not None:
            self.shadow = self.state.copy()
        self.q0_cal = self.state.q_loss_cal.copy()
        self.q0_cyc = self.state.q_loss_cyc.copy()
        self.q0_fec = self.state.fec.copy()

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
        fec = full_equivalent_cycles(thr, self.cap_nom_kwh)
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
                sh_stress = dict(dt_s=dt_s, t_degc=t_sh, soc_mean=sh_soc, fec=full_equivalent_cycles(thr_sh, self.cap_nom_kwh), dod=sh_dod, c_rate=c_sh)
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

    def _update(self, state, stress, hist, model_ids=None) -> int:
        """Advance ``state`` (rows with model ``model_ids``, default the population's) by ``stress``."""
        n_bad = 0
        ids = self.model_ids if model_ids is None else model_ids
        if len(self.models) == 1:
            groups = [(0, slice(None), np.arange(len(state)))]
        else:
            groups = [(m_i, sel, sel) for m_i in range(len(self.models)) if (sel := np.flatnonzero(ids == m_i)).size]
        for m_i, sel, idx in groups:
            kw = {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in stress.items()}
            if hist is not None and m_i in self.hist_models:
                kw["soc_history"] = hist[sel]
            n_bad += self.models[m_i].update(state, idx, **kw)
        return n_bad

    # ------------------------------------------------------------------ price and attribution
    def marginal_fade_per_fec(self, stress: dict, window_fec: float, idx: np.ndarray | None = None) -> np.ndarray:
        """Fade (fraction of nominal) per full equivalent cycle over the next ``window_fec`` cycles,
        at stressors ``stress`` (depth at least 0.1, C-rate at least 0.1), from each pack's current
        wear state. Shape (N,), or like ``idx`` (the packs to price; the stressors then shaped like
        it, and no other pack's state is copied)."""
        if idx is None:
            trial, ids = self.state.copy(), None
        else:
            idx = np.asarray(idx, dtype=np.int64)
            trial = WearState(**{f.name: getattr(self.state, f.name)[idx] for f in fields(WearState)})  # fancy index: a copy
            ids = self.model_ids[idx]
        n = len(trial)
        st = dict(stress)
        st.pop("n_out_of_range", None)
        st.update(dt_s=0.0, fec=np.full(n, float(window_fec)),
                  dod=np.clip(np.asarray(st["dod"]), 0.1, 1.0), c_rate=np.maximum(np.asarray(st["c_rate"]), 0.1))
        q0 = trial.q_loss.copy()
        self._update(trial, st, None, ids)
        return np.maximum(trial.q_loss - q0, 0.0) / window_fec

    def attribution(self) -> dict[str, np.ndarray]:
        """Fade of the current packs by cause, fractions of nominal capacity, shape (N,) each.

        calendar + driving + charging + v2g = total fade. The V2G part is the real fade minus the
        shadow's (it may be negative where V2G lowered the mean SOC enough to slow calendar ageing).
        """
        q0 = self.q0_cal + self.q0_cyc  # fade before the run (aged packs), not the run's
        total = self.state.q_loss - q0
        if not self.with_shadow:
            return {"total": total, "calendar": self.state.q_loss_cal - self.q0_cal, "driving": np.zeros(len(self)),
                    "charging": self.state.q_loss_cyc - self.q0_cyc, "v2g": np.zeros(len(self))}
        sh_total = self.shadow.q_loss - q0
        return {"total": total, "calendar": self.shadow.q_loss_cal - self.q0_cal, "driving": self.fade_drive.copy(),
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
        self.q0_cal[idx] = 0.0
        self.q0_cyc[idx] = 0.0
        self.q0_fec[idx] = 0.0
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
        for name in ("fade_drive", "fade_charge", "debt_kwh", "t_degc_sum", "q0_cal", "q0_cyc", "q0_fec"):
            setattr(self, name, np.r_[getattr(self, name), np.zeros(k)])
        n = len(self)
        keep_samples = self.n_samples
        e_int, e_min, e_max, p2 = self.e_int, self.e_min, self.e_max, self.p2_int
        self._alloc_period(n)
        self.n_samples = keep_samples
        self.e_int[: e_int.size], self.e_min[: e_min.size], self.e_max[: e_max.size], self.p2_int[: p2.size] = e_int, e_min, e_max, p2
