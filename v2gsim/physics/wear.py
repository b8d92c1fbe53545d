"""Vectorised semi-empirical battery ageing (capacity fade) models.

Three published models, each advancing the wear state of N cells at once:

* :class:`NaumannLfp` -- Naumann et al. 2018 (calendar) / 2020 (cycle), LFP/graphite
  (Sony/Murata US26650FTC1, 3 Ah). Loss grows with sqrt(time) and sqrt(FEC).
* :class:`SchmalstiegNmc` -- Schmalstieg et al. 2014, NMC/graphite (Sanyo UR18650E,
  2.15 Ah). Q = 1 - alpha * t_days**0.75 - beta * sqrt(Ah).
* :class:`XuRainflow` -- Xu et al. 2018, rainflow-counted cycle damage plus calendar
  damage, mapped to capacity loss with a two-exponential SEI form.

Conventions: ``t_s`` seconds, ``t_degc`` degrees Celsius, ``soc``/``dod`` fractions
0-1, ``fec`` full equivalent cycles (one FEC = charge plus discharge of one nominal
capacity), ``c_rate`` in 1/h, ``q_loss`` fraction of nominal capacity.

Changing stress is handled by the "virtual time" continuation: for a trajectory
``q = k(stress) * x**p`` the loss already accumulated is converted into the
``x_virtual = (q / k)**(1/p)`` that would have produced it at the current stress,
this period's ``dx`` is added and the loss is evaluated again. At constant stress a
period split into any number of pieces gives exactly the loss of the whole period.

See ``docs/wear.md`` for equations, units, validity ranges and sources.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import rainflow

from v2gsim.registry import Registry

__all__ = [
    "WearState",
    "NaumannLfp",
    "SchmalstiegNmc",
    "XuRainflow",
    "WEAR_MODELS",
    "WearModel",
    "model_for_chemistry",
    "nmc_sanyo_ocv_v",
    "register_wear_model",
    "rainflow_cycles",
]

_SECONDS_PER_DAY = 86400.0
_KELVIN_OFFSET = 273.15
_MIN_DOD = 1e-6  # Xu: cycles shallower than this are not counted


# --------------------------------------------------------------------------- state


@dataclass
class WearState:
    """Wear state of N cells (struct of float64 arrays, each of shape (N,)).

    Attributes:
        q_loss_cal: Calendar capacity loss, fraction of nominal capacity.
        q_loss_cyc: Cycle capacity loss, fraction of nominal capacity.
        t_s: Elapsed (real) time seen by the model, s.
        fec: Cumulative full equivalent cycles seen by the model.
        fd_cal: Xu et al. linearised calendar damage (dimensionless); unused by the
            power-law models.
        fd_cyc: Xu et al. linearised cycle damage (dimensionless).
        n_out_of_range: Number of update periods in which the cell's stressors were
            outside the model's validity range.
    """

    q_loss_cal: np.ndarray
    q_loss_cyc: np.ndarray
    t_s: np.ndarray
    fec: np.ndarray
    fd_cal: np.ndarray
    fd_cyc: np.ndarray
    n_out_of_range: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> WearState:
        """Fresh cells: no loss, no history. ``n`` is the number of cells."""
        return cls(**{f.name: np.zeros(int(n), dtype=np.float64) for f in fields(cls)})

    def __len__(self) -> int:
        return self.q_loss_cal.shape[0]

    def copy(self) -> WearState:
        return WearState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    @property
    def q_loss(self) -> np.ndarray:
        """Total capacity loss, fraction of nominal, clipped to [0, 1]. Shape (N,)."""
        return np.clip(self.q_loss_cal + self.q_loss_cyc, 0.0, 1.0)

    @property
    def soh(self) -> np.ndarray:
        """State of health = 1 - q_loss, clipped at 0 from below. Shape (N,)."""
        return 1.0 - self.q_loss


# --------------------------------------------------------------------------- helpers


def _as_index(idx, n: int) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"boolean idx must have shape ({n},); got {idx.shape}")
        return np.flatnonzero(idx)
    return idx.astype(np.intp, copy=False).reshape(-1)


def _bcast(x, m: int, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    try:
        return np.broadcast_to(a, (m,))
    except ValueError:
        raise ValueError(f"{name}: expected a scalar or an array of shape ({m},); got shape {a.shape}") from None


def _continue_power_law(q0: np.ndarray, k: np.ndarray, dx: np.ndarray, p: float) -> np.ndarray:
    """Continue ``q = k * x**p`` from loss ``q0`` by ``dx`` at coefficient ``k``.

    Exact virtual-x continuation; cells with ``k <= 0`` (no stress) keep their loss.
    The result never decreases.
    """
    k = np.maximum(k, 0.0)
    pos = k > 0.0
    ratio = np.divide(q0, k, out=np.zeros_like(q0), where=pos)
    x_virtual = ratio ** (1.0 / p)
    q1 = np.where(pos, k * (x_virtual + np.maximum(dx, 0.0)) ** p, q0)
    return np.clip(np.maximum(q1, q0), 0.0, 1.0)


def _out_of_range(validity: dict, t_degc, soc, dod, c_rate, cycling) -> np.ndarray:
    def outside(x, key):
        lo, hi = validity[key]
        return (x < lo) | (x > hi)

    bad = outside(soc, "soc") | (~cycling & outside(t_degc, "t_degc_calendar"))
    bad |= cycling & (outside(t_degc, "t_degc_cycle") | outside(dod, "dod") | outside(c_rate, "c_rate"))
    return bad


def _check_wear_model(name: str, cls: object) -> None:
    if not (isinstance(cls, type) and callable(getattr(cls, "update", None))):
        raise TypeError(f"@register_wear_model({name!r}) decorates a class with an update(state, idx, *, dt_s, t_degc, "
                        f"soc_mean, fec, dod, c_rate, soc_history) method (e.g. a WearModel subclass); got {cls!r}")


#: Fade models by the name ``wear.model`` gives. Each is a class whose instance (made without
#: arguments: published parameters) advances a :class:`WearState`. ``auto`` (per chemistry) and
#: ``off`` are words of the scenario, not models.
WEAR_MODELS = Registry("wear model", "v2gsim.wear_models", builtins=("v2gsim.physics.wear",),
                       check=_check_wear_model, reserved=("auto", "off"))

#: Class decorator: ``@register_wear_model("my_fade")`` makes a model available as ``wear.model: my_fade``.
register_wear_model = WEAR_MODELS.register


class WearModel:
    """Base of the fade models: parameter repr, validity counting, time/FEC counters.

    A model implements ``update(state, idx, *, dt_s, t_degc, soc_mean, fec=0, dod=0, c_rate=0,
    soc_history=None, **_) -> int``: advance the cells ``idx`` of ``state`` by one period (in
    place: ``q_loss_cal``, ``q_loss_cyc`` and, through :meth:`finish_update`, ``t_s``, ``fec`` and
    ``n_out_of_range``) and return how many cells were outside ``validity``. Register it with
    :func:`register_wear_model` (see ``docs/extending.md``).
    """

    #: Stressor ranges the fit covers; see docs/wear.md for the source of each bound.
    validity: dict[str, tuple[float, float]] = {}
    #: The engine keeps an hourly SOC history per pack and passes it as ``soc_history`` (n, k).
    uses_soc_history: ClassVar[bool] = False

    def get_params(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @staticmethod
    def stressors(state, idx, dt_s, t_degc, soc_mean, fec, dod, c_rate):
        """``update``'s cells as indices and its stressors broadcast to one value per cell."""
        idx = _as_index(idx, len(state))
        m = idx.size
        names = ("dt_s", "t_degc", "soc_mean", "fec", "dod", "c_rate")
        values = (dt_s, t_degc, soc_mean, fec, dod, c_rate)
        return (idx, *(_bcast(x, m, name) for x, name in zip(values, names, strict=True)))

    def out_of_range(self, t_degc, soc, dod, c_rate, cycling) -> np.ndarray:
        """Cells whose stressors are outside ``validity`` (boolean, shape of the inputs)."""
        return _out_of_range(self.validity, t_degc, soc, dod, c_rate, cycling)

    def finish_update(self, state, idx, dt_s, fec, bad) -> int:
        """Advance the time and FEC counters of cells ``idx``, count the out-of-range ones
        (``bad``, boolean per cell) and return that count: ``update``'s last line."""
        state.t_s[idx] += dt_s
        state.fec[idx] += fec
        state.n_out_of_range[idx] += bad
        return int(np.count_nonzero(bad))


# --------------------------------------------------------------------------- Naumann


@register_wear_model("naumann_lfp")
class NaumannLfp(WearModel):
    """Naumann et al. LFP/graphite model (Sony/Murata 3 Ah).

    Calendar (Naumann et al., J. Energy Storage 17 (2018) 153-169)::

        q_loss_cal = k_ref * exp(-ea / r * (1/T - 1/t_ref_k)) * (c_soc * (soc - 0.5)**3 + d_soc) * sqrt(t_s)

    Cycle (Naumann et al., J. Power Sources 451 (2020) 227666), in percent::

        q_loss_cyc_pct = (a_c * c_rate + b_c) * (c_dod * (dod - 0.6)**3 + d_dod) * sqrt(fec)

    Args:
        k_ref_per_sqrt_s: Calendar rate at 25 degC, 1/sqrt(s).
        ea_j_per_mol: Calendar activation energy, J/mol.
        r_j_per_mol_k: Gas constant, J/(mol K).
        t_ref_k: Arrhenius reference temperature, K.
        c_soc, d_soc: Cubic SOC factor coefficients (dimensionless).
        a_c_rate_h, b_c_rate: C-rate factor (a in h, b dimensionless).
        c_dod, d_dod: Cubic DOD factor coefficients (dimensionless).
    """

    validity = {
        "t_degc_calendar": (0.0, 60.0),
        "t_degc_cycle": (20.0, 40.0),
        "soc": (0.0, 1.0),
        "dod": (0.0, 1.0),
        "c_rate": (0.0, 1.0),
    }

    def __init__(
        self,
        k_ref_per_sqrt_s: float = 1.2571e-5,
        ea_j_per_mol: float = 17126.0,
        r_j_per_mol_k: float = 8.3144598,  # the value Naumann et al. fitted with (CODATA 2014)
        t_ref_k: float = 298.15,
        c_soc: float = 2.8575,
        d_soc: float = 0.60225,
        a_c_rate_h: float = 0.0630,
        b_c_rate: float = 0.0971,
        c_dod: float = 4.0253,
        d_dod: float = 1.0923,
    ):
        self.k_ref_per_sqrt_s = k_ref_per_sqrt_s
        self.ea_j_per_mol = ea_j_per_mol
        self.r_j_per_mol_k = r_j_per_mol_k
        self.t_ref_k = t_ref_k
        self.c_soc = c_soc
        self.d_soc = d_soc
        self.a_c_rate_h = a_c_rate_h
        self.b_c_rate = b_c_rate
        self.c_dod = c_dod
        self.d_dod = d_dod

    # rates -----------------------------------------------------------------
    def calendar_rate(self, soc, t_degc) -> np.ndarray:
        """Coefficient of sqrt(t_s) in the calendar loss, 1/sqrt(s)."""
        t_k = np.asarray(t_degc, dtype=np.float64) + _KELVIN_OFFSET
        soc = np.asarray(soc, dtype=np.float64)
        k_t = self.k_ref_per_sqrt_s * np.exp(-self.ea_j_per_mol / self.r_j_per_mol_k * (1.0 / t_k - 1.0 / self.t_ref_k))
        x = soc - 0.5
        return k_t * (self.c_soc * (x * x * x) + self.d_soc)  # x*x*x: numpy's float pow is ~100x slower

    def cycle_rate(self, dod, c_rate) -> np.ndarray:
        """Coefficient of sqrt(fec) in the cycle loss, as a fraction (not percent)."""
        dod = np.asarray(dod, dtype=np.float64)
        c_rate = np.asarray(c_rate, dtype=np.float64)
        k_c = self.a_c_rate_h * c_rate + self.b_c_rate
        y = dod - 0.6
        k_dod = self.c_dod * (y * y * y) + self.d_dod
        return k_c * k_dod / 100.0

    # constant conditions ---------------------------------------------------
    def calendar_loss(self, t_s, soc, t_degc) -> np.ndarray:
        """Calendar loss after storage for ``t_s`` at constant soc and t_degc."""
        return np.clip(self.calendar_rate(soc, t_degc) * np.sqrt(np.asarray(t_s, dtype=np.float64)), 0.0, 1.0)

    def cycle_loss(self, fec, dod, c_rate) -> np.ndarray:
        """Cycle loss after ``fec`` full equivalent cycles at constant dod and c_rate."""
        return np.clip(self.cycle_rate(dod, c_rate) * np.sqrt(np.asarray(fec, dtype=np.float64)), 0.0, 1.0)

    # stepping --------------------------------------------------------------
    def update(
        self,
        state: WearState,
        idx,
        *,
        dt_s,
        t_degc,
        soc_mean,
        fec=0.0,
        dod=0.0,
        c_rate=0.0,
        soc_history=None,
        v_mean=None,
        v_rms=None,
    ) -> int:
        """Advance cells ``idx`` by one period of length ``dt_s`` (in place).

        Args:
            state: Wear state of all N cells; modified in place.
            idx: Integer indices (M,) (no duplicates) or boolean mask (N,) of cells.
            dt_s: Period length, s; scalar or (M,).
            t_degc: Mean cell temperature over the period, degC; scalar or (M,).
            soc_mean: Time-mean SOC over the period (0-1); scalar or (M,).
            fec: Full equivalent cycles in the period; scalar or (M,).
            dod: Depth of discharge of the period's cycling (0-1); scalar or (M,).
            c_rate: Mean absolute C-rate while cycling, 1/h; scalar or (M,).
            soc_history, v_mean, v_rms: Accepted for a common signature; unused.

        Returns:
            Number of cells in ``idx`` whose stressors were outside ``validity``.
        """
        idx, dt_s, t_degc, soc_mean, fec, dod, c_rate = self.stressors(state, idx, dt_s, t_degc, soc_mean, fec, dod, c_rate)
        state.q_loss_cal[idx] = _continue_power_law(state.q_loss_cal[idx], self.calendar_rate(soc_mean, t_degc), dt_s, 0.5)
        state.q_loss_cyc[idx] = _continue_power_law(state.q_loss_cyc[idx], self.cycle_rate(dod, c_rate), fec, 0.5)
        bad = self.out_of_range(t_degc, soc_mean, dod, c_rate, fec > 0.0)
        return self.finish_update(state, idx, dt_s, fec, bad)

    # resistance (not part of WearState; used to check the shared parts with BLAST-Lite)
    def resistance_gain_calendar(
        self, t_s, soc, t_degc, *, k_ref_per_s=3.4194e-10, ea_j_per_mol=71827.0, c_soc=-3.3903, d_soc=1.5604
    ) -> np.ndarray:
        """Relative resistance increase after storage (Naumann 2018): linear in t_s."""
        t_k = np.asarray(t_degc, dtype=np.float64) + _KELVIN_OFFSET
        soc = np.asarray(soc, dtype=np.float64)
        k_t = k_ref_per_s * np.exp(-ea_j_per_mol / self.r_j_per_mol_k * (1.0 / t_k - 1.0 / self.t_ref_k))
        return k_t * (c_soc * (soc - 0.5) ** 3 + d_soc) * np.asarray(t_s, dtype=np.float64)

    def resistance_gain_cycle(
        self, fec, dod, c_rate, *, a_c_rate_h=-0.0020, b_c_rate=0.0021, c_dod=6.8477, d_dod=0.91882
    ) -> np.ndarray:
        """Relative resistance increase after cycling (Naumann 2020): linear in fec."""
        dod = np.asarray(dod, dtype=np.float64)
        k = (a_c_rate_h * np.asarray(c_rate, dtype=np.float64) + b_c_rate) * (c_dod * (dod - 0.5) ** 3 + d_dod)
        return k * np.asarray(fec, dtype=np.float64) / 100.0


# --------------------------------------------------------------------------- Schmalstieg

# Open-circuit voltage of the Sanyo UR18650E (NMC111/graphite) versus SOC, as tabulated
# in NREL BLAST-Lite (model Nmc111_Gr_Sanyo2Ah_Battery): points at 0 and 10 % SOC from
# Ecker et al., J. Power Sources 248 (2014) 839-851, the rest digitised from Fig. 1 of
# Schmalstieg et al., J. Power Sources 257 (2014) 325-334. Linear interpolation between
# points, constant beyond the ends.
_NMC_SANYO_SOC = np.array([
    0.0, 0.008637153, 0.026779514, 0.044921875, 0.063064236, 0.081206597, 0.099348958,
    0.117491319, 0.135633681, 0.153776042, 0.171918403, 0.190060764, 0.208203125, 0.226345486,
    0.244487847, 0.262630208, 0.280772569, 0.298914931, 0.317057292, 0.335199653, 0.353342014,
    0.371484375, 0.389626736, 0.407769097, 0.425911458, 0.444053819, 0.462196181, 0.480338542,
    0.498480903, 0.516623264, 0.534765625, 0.552907986, 0.571050347, 0.589192708, 0.607335069,
    0.625477431, 0.643619792, 0.661762153, 0.679904514, 0.698046875, 0.716189236, 0.734331597,
    0.752473958, 0.770616319, 0.788758681, 0.806901042, 0.825043403, 0.843185764, 0.861328125,
    0.879470486, 0.897612847, 0.915755208, 0.933897569, 0.952039931, 0.970182292, 0.988324653,
    0.998220486, 1.0,
])
_NMC_SANYO_OCV_V = np.array([
    3.331, 3.345014187, 3.37917149, 3.411603677, 3.440585632, 3.466289865, 3.490268982,
    3.511315401, 3.529946658, 3.547197821, 3.561688798, 3.574972194, 3.586357962, 3.597053683,
    3.605506753, 3.613442288, 3.620342753, 3.626380661, 3.632073544, 3.63690387, 3.642079219,
    3.646909545, 3.652084894, 3.657605266, 3.663470662, 3.670198615, 3.677444104, 3.686759732,
    3.696420384, 3.708323686, 3.720572012, 3.734372943, 3.749553967, 3.765252525, 3.781123596,
    3.797857224, 3.814590852, 3.832532062, 3.849783226, 3.866861877, 3.884458064, 3.900846669,
    3.917752809, 3.934831461, 3.953462717, 3.971921462, 3.991415276, 4.011771649, 4.03195551,
    4.05196686, 4.070770628, 4.087849279, 4.104237884, 4.120108955, 4.135980025, 4.152541142,
    4.160649189, 4.162,
])


def nmc_sanyo_ocv_v(soc) -> np.ndarray:
    """Open-circuit voltage (V) of the Sanyo UR18650E NMC cell at ``soc`` (0-1), any shape."""
    return np.interp(np.asarray(soc, dtype=np.float64), _NMC_SANYO_SOC, _NMC_SANYO_OCV_V)


@register_wear_model("schmalstieg_nmc")
class SchmalstiegNmc(WearModel):
    """Schmalstieg et al. 2014 NMC/graphite model (Sanyo UR18650E, 2.15 Ah).

    ``Q = 1 - alpha * t_days**0.75 - beta * sqrt(ah)`` with::

        alpha = (a_v * V + b_v) * 1e6 * exp(c_t_k / T)          (1/day**0.75, T in K)
        beta  = a_rms * (V_rms - b_rms)**2 + c_beta + d_dod * dod  (1/sqrt(Ah))

    ``V`` is the (time-mean) open-circuit voltage, ``V_rms`` the RMS voltage over the
    cycling, ``ah`` the cell's total charge throughput (charge plus discharge), here
    ``2 * fec * q_nom_ah`` as in BLAST-Lite, so the model applies per cell of any size
    through FEC.

    Args:
        a_v_per_v, b_v: Voltage factor of alpha (1/V, dimensionless).
        c_t_k: Temperature exponent of alpha, K (negative).
        a_rms_per_v2, b_rms_v: RMS-voltage factor of beta (1/V**2, V).
        c_beta, d_dod: Constant and DOD term of beta.
        q_nom_ah: Nominal capacity of the reference cell, Ah (converts FEC to Ah).
    """

    validity = {
        "t_degc_calendar": (35.0, 50.0),
        "t_degc_cycle": (20.0, 40.0),
        "soc": (0.0, 1.0),
        "dod": (0.0, 1.0),
        "c_rate": (0.0, 1.0),
    }

    def __init__(
        self,
        a_v_per_v: float = 7.543,
        b_v: float = -23.75,
        c_t_k: float = -6976.0,
        a_rms_per_v2: float = 7.348e-3,
        b_rms_v: float = 3.667,
        c_beta: float = 7.6e-4,
        d_dod: float = 4.081e-3,
        q_nom_ah: float = 2.15,
    ):
        self.a_v_per_v = a_v_per_v
        self.b_v = b_v
        self.c_t_k = c_t_k
        self.a_rms_per_v2 = a_rms_per_v2
        self.b_rms_v = b_rms_v
        self.c_beta = c_beta
        self.d_dod = d_dod
        self.q_nom_ah = q_nom_ah

    def calendar_rate(self, v, t_degc) -> np.ndarray:
        """alpha: coefficient of t_days**0.75, given OCV ``v`` (V) and t_degc."""
        t_k = np.asarray(t_degc, dtype=np.float64) + _KELVIN_OFFSET
        return (self.a_v_per_v * np.asarray(v, dtype=np.float64) + self.b_v) * 1e6 * np.exp(self.c_t_k / t_k)

    def cycle_rate(self, v_rms, dod) -> np.ndarray:
        """beta: coefficient of sqrt(Ah), given RMS voltage ``v_rms`` (V) and dod."""
        v_rms = np.asarray(v_rms, dtype=np.float64)
        return self.a_rms_per_v2 * (v_rms - self.b_rms_v) ** 2 + self.c_beta + self.d_dod * np.asarray(dod, dtype=np.float64)

    def calendar_loss(self, t_s, soc, t_degc) -> np.ndarray:
        """Calendar loss after storage for ``t_s`` at constant soc and t_degc."""
        t_days = np.asarray(t_s, dtype=np.float64) / _SECONDS_PER_DAY
        return np.clip(self.calendar_rate(nmc_sanyo_ocv_v(soc), t_degc) * t_days**0.75, 0.0, 1.0)

    def cycle_loss(self, fec, dod, v_rms) -> np.ndarray:
        """Cycle loss after ``fec`` full equivalent cycles at constant dod and RMS voltage."""
        ah = 2.0 * np.asarray(fec, dtype=np.float64) * self.q_nom_ah
        return np.clip(self.cycle_rate(v_rms, dod) * np.sqrt(ah), 0.0, 1.0)

    def update(
        self,
        state: WearState,
        idx,
        *,
        dt_s,
        t_degc,
        soc_mean,
        fec=0.0,
        dod=0.0,
        c_rate=0.0,
        soc_history=None,
        v_mean=None,
        v_rms=None,
    ) -> int:
        """Advance cells ``idx`` by one period (in place); see :meth:`NaumannLfp.update`.

        Voltages: ``v_mean`` (time-mean OCV, V) drives alpha and ``v_rms`` (RMS OCV, V)
        drives beta. If not given they come from ``soc_history`` (M, T), equally spaced
        samples of the period, through :func:`nmc_sanyo_ocv_v`; failing that from
        ``ocv(soc_mean)``. ``c_rate`` only enters the validity check (the fit was at 1C).

        Returns:
            Number of cells in ``idx`` whose stressors were outside ``validity``.
        """
        idx, dt_s, t_degc, soc_mean, fec, dod, c_rate = self.stressors(state, idx, dt_s, t_degc, soc_mean, fec, dod, c_rate)
        m = idx.size
        if soc_history is not None and (v_mean is None or v_rms is None):
            v_hist = nmc_sanyo_ocv_v(np.asarray(soc_history, dtype=np.float64).reshape(m, -1))
            v_mean = v_hist.mean(axis=1) if v_mean is None else v_mean
            v_rms = np.sqrt((v_hist**2).mean(axis=1)) if v_rms is None else v_rms
        v0 = nmc_sanyo_ocv_v(soc_mean)
        v_mean = v0 if v_mean is None else _bcast(v_mean, m, "v_mean")
        v_rms = v0 if v_rms is None else _bcast(v_rms, m, "v_rms")

        state.q_loss_cal[idx] = _continue_power_law(
            state.q_loss_cal[idx], self.calendar_rate(v_mean, t_degc), dt_s / _SECONDS_PER_DAY, 0.75
        )
        state.q_loss_cyc[idx] = _continue_power_law(
            state.q_loss_cyc[idx], self.cycle_rate(v_rms, dod), 2.0 * fec * self.q_nom_ah, 0.5
        )
        bad = self.out_of_range(t_degc, soc_mean, dod, c_rate, fec > 0.0)
        return self.finish_update(state, idx, dt_s, fec, bad)


# --------------------------------------------------------------------------- Xu


def rainflow_cycles(soc_history) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rainflow-count the SOC history of each of M cells.

    The ``rainflow`` package counts one series at a time, so this loops over the M rows
    (the one Python loop over cells in this module); everything downstream is vectorised.

    Args:
        soc_history: SOC samples, shape (M, T), T >= 2.

    Returns:
        ``(row, dod, soc_mean, count)``: flat arrays with one entry per counted cycle
        (cycles with depth <= 1e-6, e.g. flat histories, are dropped):
        the row (0..M-1) it belongs to, its depth (range) and mean SOC, and its count
        (1.0 full cycle, 0.5 half cycle).
    """
    hist = np.asarray(soc_history, dtype=np.float64)
    if hist.ndim != 2:
        raise ValueError(f"soc_history must have shape (M, T); got {hist.shape}")
    rows, dods, means, counts = [], [], [], []
    for i in range(hist.shape[0]):
        for rng, mean, count, _i0, _i1 in rainflow.extract_cycles(hist[i]):
            if rng <= _MIN_DOD:
                continue
            rows.append(i)
            dods.append(rng)
            means.append(mean)
            counts.append(count)
    return (
        np.asarray(rows, dtype=np.intp),
        np.asarray(dods, dtype=np.float64),
        np.asarray(means, dtype=np.float64),
        np.asarray(counts, dtype=np.float64),
    )


@register_wear_model("xu_rainflow")
class XuRainflow(WearModel):
    """Xu et al. 2018 rainflow-based model (IEEE Trans. Smart Grid 9(2) 1131-1140).

    Linearised damage ``f_d = f_cal + f_cyc`` with::

        f_cal = k_t * t_s * S_soc(soc_mean) * S_T(T)
        f_cyc = sum_i n_i * S_dod(dod_i) * S_soc(soc_i) * S_T(T)
        S_dod(d) = 1 / (k_d1 * d**k_d2 + k_d3)
        S_soc(s) = exp(k_soc * (s - soc_ref))
        S_T(T)   = exp(k_temp * (T - t_ref_k) * t_ref_k / T)        (T in K)

    and capacity loss ``L = 1 - alpha_sei * exp(-beta_sei * f_d) - (1 - alpha_sei) * exp(-f_d)``.
    ``f_d`` is additive, so continuation under changing stress is exact. The total loss
    L(f_d) is split into calendar and cycle parts by attributing each period's increase
    of L in proportion to that period's increments of f_cal and f_cyc (both parts stay
    monotone; for pure storage the calendar part equals L(f_cal)).
    """

    uses_soc_history = True  # rainflow-counted from the engine's hourly SOC history

    validity = {
        "t_degc_calendar": (15.0, 45.0),
        "t_degc_cycle": (15.0, 45.0),
        "soc": (0.0, 1.0),
        "dod": (0.0, 1.0),
        "c_rate": (0.0, np.inf),
    }

    def __init__(
        self,
        alpha_sei: float = 5.75e-2,
        beta_sei: float = 121.0,
        k_d1: float = 1.40e5,
        k_d2: float = -0.501,
        k_d3: float = -1.23e5,
        k_soc: float = 1.04,
        soc_ref: float = 0.5,
        k_temp_per_k: float = 6.93e-2,
        t_ref_k: float = 298.15,
        k_t_per_s: float = 4.14e-10,
    ):
        self.alpha_sei = alpha_sei
        self.beta_sei = beta_sei
        self.k_d1 = k_d1
        self.k_d2 = k_d2
        self.k_d3 = k_d3
        self.k_soc = k_soc
        self.soc_ref = soc_ref
        self.k_temp_per_k = k_temp_per_k
        self.t_ref_k = t_ref_k
        self.k_t_per_s = k_t_per_s

    # stress functions ------------------------------------------------------
    def s_dod(self, dod) -> np.ndarray:
        """Damage per full cycle of depth ``dod`` (0 for dod <= 0)."""
        dod = np.asarray(dod, dtype=np.float64)
        pos = dod > 0.0
        safe = np.where(pos, dod, 1.0)
        return np.where(pos, 1.0 / (self.k_d1 * safe**self.k_d2 + self.k_d3), 0.0)

    def s_soc(self, soc) -> np.ndarray:
        return np.exp(self.k_soc * (np.asarray(soc, dtype=np.float64) - self.soc_ref))

    def s_temp(self, t_degc) -> np.ndarray:
        t_k = np.asarray(t_degc, dtype=np.float64) + _KELVIN_OFFSET
        return np.exp(self.k_temp_per_k * (t_k - self.t_ref_k) * self.t_ref_k / t_k)

    def loss(self, f_d) -> np.ndarray:
        """Capacity loss L(f_d) for linearised damage ``f_d`` (>= 0)."""
        f_d = np.asarray(f_d, dtype=np.float64)
        a = self.alpha_sei
        return np.clip(1.0 - a * np.exp(-self.beta_sei * f_d) - (1.0 - a) * np.exp(-f_d), 0.0, 1.0)

    # constant conditions ---------------------------------------------------
    def calendar_loss(self, t_s, soc, t_degc) -> np.ndarray:
        """Loss after storage for ``t_s`` at constant soc and t_degc (no cycling)."""
        return self.loss(self.k_t_per_s * np.asarray(t_s, dtype=np.float64) * self.s_soc(soc) * self.s_temp(t_degc))

    def cycle_loss(self, n_cycles, dod, soc_mean, t_degc) -> np.ndarray:
        """Loss after ``n_cycles`` full cycles of depth ``dod`` around ``soc_mean`` (no calendar part)."""
        f = np.asarray(n_cycles, dtype=np.float64) * self.s_dod(dod) * self.s_soc(soc_mean) * self.s_temp(t_degc)
        return self.loss(f)

    def update(
        self,
        state: WearState,
        idx,
        *,
        dt_s,
        t_degc,
        soc_mean,
        fec=0.0,
        dod=0.0,
        c_rate=0.0,
        soc_history=None,
        v_mean=None,
        v_rms=None,
    ) -> int:
        """Advance cells ``idx`` by one period (in place); see :meth:`NaumannLfp.update`.

        Cycles: if ``soc_history`` (M, T) is given they are rainflow-counted from it
        (:func:`rainflow_cycles`; cycles spanning a period boundary are counted as two
        half cycles, so use periods of a day or more). Otherwise the period's throughput
        is taken as ``fec / dod`` cycles of depth ``dod`` around ``soc_mean``.

        Returns:
            Number of cells in ``idx`` whose stressors were outside ``validity``.
        """
        idx, dt_s, t_degc, soc_mean, fec, dod, c_rate = self.stressors(state, idx, dt_s, t_degc, soc_mean, fec, dod, c_rate)
        m = idx.size
        s_t = self.s_temp(t_degc)

        df_cal = self.k_t_per_s * np.maximum(dt_s, 0.0) * self.s_soc(soc_mean) * s_t
        if soc_history is not None:
            row, c_dod, c_mean, count = rainflow_cycles(np.asarray(soc_history, dtype=np.float64).reshape(m, -1))
            per_cycle = count * self.s_dod(c_dod) * self.s_soc(c_mean)
            df_cyc = np.bincount(row, weights=per_cycle, minlength=m) * s_t
            max_dod = np.zeros(m)
            np.maximum.at(max_dod, row, c_dod)
            dod = max_dod
        else:
            # Cycles shallower than _MIN_DOD carry no counted damage (and would divide by ~0).
            n_cycles = np.divide(fec, dod, out=np.zeros(m), where=dod > _MIN_DOD)
            df_cyc = n_cycles * self.s_dod(dod) * self.s_soc(soc_mean) * s_t

        f_cal0, f_cyc0 = state.fd_cal[idx], state.fd_cyc[idx]
        l0 = self.loss(f_cal0 + f_cyc0)
        f_cal1, f_cyc1 = f_cal0 + df_cal, f_cyc0 + df_cyc
        dl = np.maximum(self.loss(f_cal1 + f_cyc1) - l0, 0.0)
        df = df_cal + df_cyc
        share_cal = np.divide(df_cal, df, out=np.zeros(m), where=df > 0.0)
        state.fd_cal[idx] = f_cal1
        state.fd_cyc[idx] = f_cyc1
        state.q_loss_cal[idx] += dl * share_cal
        state.q_loss_cyc[idx] += dl * (1.0 - share_cal)
        cycling = (fec > 0.0) | (df_cyc > 0.0)
        bad = self.out_of_range(t_degc, soc_mean, dod, c_rate, cycling)
        return self.finish_update(state, idx, dt_s, fec, bad)


# --------------------------------------------------------------------------- defaults

_CHEMISTRY_TO_MODEL = {"LFP": "naumann_lfp", "NMC": "schmalstieg_nmc", "NCM": "schmalstieg_nmc"}


def model_for_chemistry(chemistry: str) -> WearModel:
    """Default wear model (an instance with published parameters) for a chemistry.

    "LFP" -> ``WEAR_MODELS["naumann_lfp"]()`` (China's fleet is mostly LFP);
    "NMC"/"NCM" -> ``WEAR_MODELS["schmalstieg_nmc"]()``. Case-insensitive.
    Raises ValueError for anything else.
    """
    key = _CHEMISTRY_TO_MODEL.get(str(chemistry).strip().upper())
    if key is None:
        raise ValueError(
            f"no wear model for chemistry {chemistry!r}; known: {sorted(_CHEMISTRY_TO_MODEL)} "
            f"(or pick one of {sorted(WEAR_MODELS)} explicitly)"
        )
    return WEAR_MODELS[key]()
