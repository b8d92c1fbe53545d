"""Packs that are not new at the start: ``initial_age_years`` and ``initial_soh`` distributions.

Square-root calendar laws (Naumann: fade ∝ √t) lose most at the start of a pack's life; a run
whose packs all start new therefore overstates the fade per day of a fleet that is, on average,
a few years old. A population group (``population[i]``) and a swap station's pack pool
(``business_models[k].stations[j]``) can give the packs an age and a state of health at build:

* ``initial_age_years``: the packs are aged by the calendar law alone for that long, at the
  scenario's mean ambient temperature and at :data:`STORAGE_SOC` (the typical SOC the initial
  wear price also assumes), so the run continues the law from that age (fade over the run
  = law(age + t) − law(age) at constant conditions);
* ``initial_soh``: the state of health at the start; the fade 1 − soh is calendar fade up to the
  age's calendar fade, the rest cycle fade (so the cycle law continues from that many equivalent
  cycles). Null (default): the age's calendar fade alone (1.0 for a new pack).

Either is a number or a distribution (:class:`Spread`). Defaults (0 years, null) leave every pack
new, as before. Fade reported for the run (``fade_pct``, wear cost) counts from the start, not
from the pack's manufacture; ``soh`` is the real state of health.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from v2gsim.fields import ConfigModel
from v2gsim.physics.wear import WearState

#: SOC at which the pre-run (calendar) ageing is taken [C]: an assumption, the same "typical"
#: SOC the wear price uses before the first period closes.
STORAGE_SOC = 0.6


class Spread(ConfigModel):
    """A per-pack figure drawn at build: ``fixed`` (``value``), ``uniform`` (``low``..``high``) or
    ``normal`` (``mean``, ``sd``, clipped to ``low``..``high``)."""

    dist: Literal["fixed", "uniform", "normal"] = Field(description="fixed, uniform or normal (clipped to low..high)")
    value: float | None = Field(default=None, description="fixed: the value")
    low: float | None = Field(default=None, description="uniform: lower end; normal: lower bound")
    high: float | None = Field(default=None, description="uniform: upper end; normal: upper bound")
    mean: float | None = Field(default=None, description="normal: mean")
    sd: Annotated[float, Field(ge=0)] | None = Field(default=None, description="normal: standard deviation")

    @model_validator(mode="after")
    def _complete(self):
        need = {"fixed": ("value",), "uniform": ("low", "high"), "normal": ("mean", "sd", "low", "high")}[self.dist]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise PydanticCustomError("spread", "dist {dist} needs {missing}",
                                      {"dist": self.dist, "missing": ", ".join(missing),
                                       "hint": f"give {', '.join(missing)}, e.g. " + {"fixed": "{dist: fixed, value: 2}",
                                                                                      "uniform": "{dist: uniform, low: 0, high: 4}",
                                                                                      "normal": "{dist: normal, mean: 2, sd: 1, low: 0, high: 8}"}[self.dist]})
        if self.low is not None and self.high is not None and self.low > self.high:
            raise PydanticCustomError("spread", "low ({low}) is above high ({high})",
                                      {"low": self.low, "high": self.high, "hint": "swap low and high"})
        return self

    @classmethod
    def of(cls, value: float) -> Spread:
        return cls(dist="fixed", value=value)

    @staticmethod
    def wrap(v):
        """A plain number in a scenario means ``{dist: fixed, value: number}``."""
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"dist": "fixed", "value": v}
        return v

    def bounds(self) -> tuple[float, float]:
        if self.dist == "fixed":
            return float(self.value), float(self.value)
        return float(self.low), float(self.high)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.dist == "fixed":
            return np.full(n, float(self.value))
        if self.dist == "uniform":
            return rng.uniform(self.low, self.high, n)
        return np.clip(rng.normal(self.mean, self.sd, n), self.low, self.high)


def check_range(spread: float | Spread | None, lo: float, hi: float, what: str) -> None:
    """Raise a PydanticCustomError (with a hint) if ``spread`` can fall outside [lo, hi]."""
    if spread is None:
        return
    a, b = (float(spread), float(spread)) if not isinstance(spread, Spread) else spread.bounds()
    if a < lo or b > hi:
        raise PydanticCustomError("range", "{what} must lie within {lo}..{hi}; got {a}..{b}",
                                  {"what": what, "lo": lo, "hi": hi, "a": a, "b": b, "hint": f"keep the values (and low/high) within {lo}..{hi}"})


def _within(lo: float, hi: float, what: str) -> AfterValidator:
    def check(v):
        check_range(v, lo, hi, what)
        return v

    return AfterValidator(check)


#: a pack pool's ``initial_age_years`` (population groups, swap stations): a number (fixed) or a
#: :class:`Spread`, within 0..30 years
InitialAge = Annotated[Spread, BeforeValidator(Spread.wrap), _within(0.0, 30.0, "initial_age_years")]
#: a pack pool's ``initial_soh``: a number (fixed) or a :class:`Spread`, within 0.5..1
InitialSoh = Annotated[Spread, BeforeValidator(Spread.wrap), _within(0.5, 1.0, "initial_soh")]


def draw(spread: float | Spread | None, n: int, rng: np.random.Generator, default: float) -> np.ndarray:
    """Per-pack values, shape (n,); ``default`` where ``spread`` is None. A fixed number draws nothing."""
    if spread is None:
        return np.full(n, default)
    if not isinstance(spread, Spread):
        return np.full(n, float(spread))
    return spread.draw(n, rng)


def is_new(age_years, soh) -> bool:
    """Both at their defaults: every pack new (nothing to do at build)."""
    def zero(x):
        return x is None or (isinstance(x, Spread) and x.dist == "fixed" and x.value == 0.0) or (not isinstance(x, Spread) and float(x) == 0.0)

    return zero(age_years) and soh is None


def pre_age(state: WearState, models, model_ids: np.ndarray, age_years: np.ndarray, soh: np.ndarray, t_degc: float) -> None:
    """Age fresh cells ``state`` in place: calendar law for ``age_years`` at ``t_degc`` and
    :data:`STORAGE_SOC`; then, where ``soh`` is not NaN, set the total fade to 1 − soh (calendar
    fade capped at it, the rest cycle fade). Counters of out-of-range periods stay 0.

    The cycle part is put into ``q_loss_cyc`` only: the power-law models (naumann_lfp,
    schmalstieg_nmc) continue from the loss (virtual cycles), xu_rainflow continues its damage
    sum from the calendar age alone (its cycle offset stays an offset)."""
    n = len(state)
    age_s = np.asarray(age_years, float) * 365.25 * 86400.0
    for m_i, model in enumerate(models):
        idx = np.flatnonzero((model_ids == m_i) & (age_s > 0))
        if idx.size:
            model.update(state, idx, dt_s=age_s[idx], t_degc=t_degc, soc_mean=STORAGE_SOC, fec=0.0, dod=0.0, c_rate=0.0)
    state.n_out_of_range[:] = 0.0
    given = ~np.isnan(soh)
    if given.any():
        target = np.clip(1.0 - soh, 0.0, 1.0)
        cal = np.where(given, np.minimum(state.q_loss_cal, target), state.q_loss_cal)
        # xu_rainflow: keep its damage consistent with the capped calendar loss (scale fd_cal down)
        scale = np.divide(cal, state.q_loss_cal, out=np.ones(n), where=state.q_loss_cal > 0)
        state.fd_cal *= scale
        state.q_loss_cal[:] = cal
        state.q_loss_cyc[:] = np.where(given, target - cal, state.q_loss_cyc)


#: China's new-energy-vehicle stock and registrations, millions, from the Ministry of Public
#: Security as reported by Xinhua (en.people.cn, 11 Jan 2024) [A]: 20.41 million NEVs in use at
#: the end of 2023, 7.43 million newly registered in 2023, "an increase of 2.07 million compared
#: to 2022" (so 5.36 million in 2022), 1.2 million in 2019.
CHINA_NEV_2023 = {"stock_end_2023": 20.41, "registered_2023": 7.43, "registered_2022": 7.43 - 2.07, "registered_2019": 1.2}


def china_nev_mean_age_years(older_mean_age_years: float) -> float:
    """Mean age of China's NEV stock at the end of 2023 [B, derived from :data:`CHINA_NEV_2023`]:
    2023's registrations half a year old, 2022's one and a half, the rest (registered before 2022,
    net of scrapping) at ``older_mean_age_years``. With that between 2.5 (all from 2021) and 5
    years, the mean is 1.5-2.4 years; 63 % of the stock was under two years old."""
    c = CHINA_NEV_2023
    older = c["stock_end_2023"] - c["registered_2023"] - c["registered_2022"]
    return (0.5 * c["registered_2023"] + 1.5 * c["registered_2022"] + older_mean_age_years * older) / c["stock_end_2023"]


#: An example spread for a Chinese fleet (not the default): uniform over 0-4 years, mean 2.0,
#: inside the 1.5-2.4-year band :func:`china_nev_mean_age_years` gives [B]. The real stock is
#: younger-skewed (36 % registered within the last year) and, for a city, regional.
CHINA_FLEET_AGE_EXAMPLE = {"dist": "uniform", "low": 0.0, "high": 4.0}
