"""Packs that are not new at the start: ``initial_age_years`` and ``initial_soh`` distributions.

Square-root calendar laws (Naumann: fade ∝ √t) lose most at the start of a pack's life; a run
whose packs all start new therefore overstates the fade per day of a fleet that is, on average,
a few years old. A population group (``population[i]``) and a swap station's pack pool
(``business_models[k].stations[j]``) can give the packs an age and a state of health at build:

* ``initial_age_years``: the packs are aged by the calendar law for that long, at the
  scenario's mean ambient temperature and at :data:`STORAGE_SOC` (the typical SOC the initial
  wear price also assumes), so the run continues the law from that age (fade over the run
  = law(age + t) − law(age) at constant conditions); a population group's packs are also aged by
  the cycle law over the cycles their own driving made in that time (:func:`history_fec`,
  :func:`history_stressors`), a swap station's pool by the calendar law alone (its daily cycles
  from the station's throughput are not known at build);
* ``initial_soh``: the state of health at the start; the fade 1 − soh is calendar fade up to the
  age's calendar fade, the rest cycle fade (so the cycle law continues from that many equivalent
  cycles). Null (default): the age's calendar fade, plus for a population group the cycle fade
  of its driving over the age (1.0 for a new pack).

Either is a number or a distribution (:class:`Spread`). A population group's packs default to the
age of China's NEV stock (``{dist: cn_nev_stock}``, :func:`cn_nev_stock_age_bins`, from the Ministry
of Public Security's yearly figures); ``initial_age_years: 0`` keeps them new. A swap station's pack
pool defaults to new (0 years). ``initial_soh`` defaults to null. Fade reported for the run (``fade_pct``, wear cost) counts from the start, not
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
#: The wear price's other typical stressors before the first period closes (fleet and swap packs)
#: [C]: depth of discharge 0.3 and C-rate 0.2 per hour. The charging C-rate of a pre-aged pack's
#: cycle history is :data:`TYPICAL_C_RATE` too (:func:`history_stressors`).
TYPICAL_DOD = 0.3
TYPICAL_C_RATE = 0.2
#: days per year of ``initial_age_years`` (calendar and cycle history alike)
DAYS_PER_YEAR = 365.25
#: A cycle history never takes a pack below this state of health [C], the lowest ``initial_soh``
#: allowed: a pack at half its capacity is no longer in a car (it would have been replaced during
#: its history, which is not modelled). Only extreme ages, distances and heat reach it (a
#: ride-hailing NMC pack 6 years at a constant 55 degC: 0.89 calendar fade, no room for cycles);
#: the calendar part is never capped.
HISTORY_SOH_FLOOR = 0.5


class Spread(ConfigModel):
    """A per-pack figure drawn at build: ``fixed`` (``value``), ``uniform`` (``low``..``high``),
    ``normal`` (``mean``, ``sd``, clipped to ``low``..``high``), ``empirical`` (``shares`` of the
    bins between consecutive ``edges``, uniform within a bin) or ``cn_nev_stock`` (the age of
    China's NEV stock, :data:`CN_NEV_STOCK_AGE`; no parameters)."""

    dist: Literal["fixed", "uniform", "normal", "empirical", "cn_nev_stock"] = Field(
        description="fixed, uniform, normal (clipped to low..high), empirical (edges + shares) or cn_nev_stock (China's NEV stock ages)")
    value: float | None = Field(default=None, description="fixed: the value")
    low: float | None = Field(default=None, description="uniform: lower end; normal: lower bound")
    high: float | None = Field(default=None, description="uniform: upper end; normal: upper bound")
    mean: float | None = Field(default=None, description="normal: mean")
    sd: Annotated[float, Field(ge=0)] | None = Field(default=None, description="normal: standard deviation")
    edges: list[float] | None = Field(default=None, description="empirical: bin edges, increasing (k + 1 values)")
    shares: list[Annotated[float, Field(ge=0)]] | None = Field(default=None, description="empirical: each bin's share (k values, summing to 1)")

    @model_validator(mode="after")
    def _complete(self):
        need = {"fixed": ("value",), "uniform": ("low", "high"), "normal": ("mean", "sd", "low", "high"),
                "empirical": ("edges", "shares"), "cn_nev_stock": ()}[self.dist]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise PydanticCustomError("spread", "dist {dist} needs {missing}",
                                      {"dist": self.dist, "missing": ", ".join(missing),
                                       "hint": f"give {', '.join(missing)}, e.g. " + {"fixed": "{dist: fixed, value: 2}",
                                                                                      "uniform": "{dist: uniform, low: 0, high: 4}",
                                                                                      "normal": "{dist: normal, mean: 2, sd: 1, low: 0, high: 8}",
                                                                                      "empirical": "{dist: empirical, edges: [0, 1, 3], shares: [0.6, 0.4]}"}[self.dist]})
        if self.low is not None and self.high is not None and self.low > self.high:
            raise PydanticCustomError("spread", "low ({low}) is above high ({high})",
                                      {"low": self.low, "high": self.high, "hint": "swap low and high"})
        if self.dist == "empirical":
            e, w = self.edges, self.shares
            if len(e) != len(w) + 1 or len(w) == 0:
                raise PydanticCustomError("spread", "empirical needs one edge more than shares; got {ne} edges and {nw} shares",
                                          {"ne": len(e), "nw": len(w), "hint": "edges [0, 1, 3] go with shares [0.6, 0.4]"})
            if any(b <= a for a, b in zip(e, e[1:])):
                raise PydanticCustomError("spread", "empirical edges must increase; got {e}", {"e": e, "hint": "list the bin edges in increasing order"})
            if abs(sum(w) - 1.0) > 1e-6:
                raise PydanticCustomError("spread", "empirical shares must sum to 1; they sum to {s}",
                                          {"s": round(sum(w), 9), "hint": "divide each share by their sum"})
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

    def bins(self) -> tuple[np.ndarray, np.ndarray]:
        """(edges, shares) of an ``empirical`` or ``cn_nev_stock`` spread."""
        if self.dist == "cn_nev_stock":
            return cn_nev_stock_age_bins()
        return np.asarray(self.edges, float), np.asarray(self.shares, float)

    def bounds(self) -> tuple[float, float]:
        if self.dist == "fixed":
            return float(self.value), float(self.value)
        if self.dist in ("empirical", "cn_nev_stock"):
            e, _ = self.bins()
            return float(e[0]), float(e[-1])
        return float(self.low), float(self.high)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.dist == "fixed":
            return np.full(n, float(self.value))
        if self.dist == "uniform":
            return rng.uniform(self.low, self.high, n)
        if self.dist == "normal":
            return np.clip(rng.normal(self.mean, self.sd, n), self.low, self.high)
        # empirical: a bin by its share, then uniform within it (one vectorised draw each)
        e, w = self.bins()
        k = rng.choice(w.size, size=n, p=w / w.sum())
        return e[k] + rng.random(n) * (e[k + 1] - e[k])


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


def history_fec(age_years, km_per_day, kwh_per_km, cap_nom_kwh) -> np.ndarray:
    """Full equivalent cycles a pack has made in ``age_years`` of driving ``km_per_day`` at
    ``kwh_per_km`` (battery side), shape like the broadcast inputs: the driving energy and the
    charging that puts it back, ``2 · km · kWh/km · 365.25 · years`` battery kWh, counted as each
    period's close counts it (:func:`~v2gsim.physics.ageing.population.full_equivalent_cycles`).
    V2G and the charging losses' heat are not in it (no V2G before the run) [C]."""
    from v2gsim.physics.ageing.population import full_equivalent_cycles

    days = np.asarray(age_years, float) * DAYS_PER_YEAR
    return full_equivalent_cycles(2.0 * days * np.asarray(km_per_day, float) * np.asarray(kwh_per_km, float), np.asarray(cap_nom_kwh, float))


def history_stressors(km_per_day, kwh_per_km, cap_nom_kwh, c_drive) -> tuple[np.ndarray, np.ndarray]:
    """(depth of discharge, C-rate) of a pre-aged pack's typical day, per pack [C]:

    * depth: the day's driving energy over the nominal capacity (one recharge a day, the period's
      ``(e_max − e_min) / capacity`` of a car that drives and then charges), at most 1;
    * C-rate: throughput-weighted as each close weighs it, half the throughput driving at the
      traction C-rate ``c_drive`` (consumption × ``driving_speed_kmh`` / capacity), half charging
      at :data:`TYPICAL_C_RATE`.

    SOC is :data:`STORAGE_SOC` and temperature the mean ambient (no heating: 8 K per 1C at these
    daily throughputs is under 0.5 K), as the calendar part."""
    depth = np.clip(np.asarray(km_per_day, float) * np.asarray(kwh_per_km, float) / np.asarray(cap_nom_kwh, float), 0.0, 1.0)
    c_rate = 0.5 * (np.asarray(c_drive, float) + TYPICAL_C_RATE)
    return depth, np.broadcast_to(c_rate, depth.shape).copy()


def pre_age(state: WearState, models, model_ids: np.ndarray, age_years: np.ndarray, soh: np.ndarray, t_degc: float,
            fec=0.0, dod=0.0, c_rate=0.0) -> None:
    """Age fresh cells ``state`` in place: calendar law for ``age_years`` at ``t_degc`` and
    :data:`STORAGE_SOC`, and the cycle law over ``fec`` full equivalent cycles at depth ``dod`` and
    ``c_rate`` (the cycle history, :func:`history_fec`, :func:`history_stressors`; scalars or shape
    (N,); 0: none) where ``soh`` is NaN; then, where ``soh`` is not NaN, set the total fade to
    1 − soh (calendar fade capped at it, the rest cycle fade; no cycle history is applied there).
    A cycle history's fade is capped so that it takes no pack below :data:`HISTORY_SOH_FLOOR`.
    Counters of out-of-range periods stay 0. One update per model over the whole age: at constant
    stressors the laws' continuation makes that the same as any split into days.

    The ``soh`` cycle part is put into ``q_loss_cyc`` only: the power-law models (naumann_lfp,
    schmalstieg_nmc) continue from the loss (virtual cycles), xu_rainflow continues its damage
    sum from the calendar age alone (its cycle offset stays an offset). A cycle history goes
    through each model's own update, so xu_rainflow's damage sum holds it too."""
    n = len(state)
    age_s = np.asarray(age_years, float) * DAYS_PER_YEAR * 86400.0
    given = ~np.isnan(soh)
    fec = np.where(given, 0.0, np.broadcast_to(np.asarray(fec, float), (n,)))
    dod = np.broadcast_to(np.asarray(dod, float), (n,))
    c_rate = np.broadcast_to(np.asarray(c_rate, float), (n,))
    for m_i, model in enumerate(models):
        idx = np.flatnonzero((model_ids == m_i) & ((age_s > 0) | (fec > 0)))
        if idx.size:
            model.update(state, idx, dt_s=age_s[idx], t_degc=t_degc, soc_mean=STORAGE_SOC, fec=fec[idx], dod=dod[idx], c_rate=c_rate[idx])
    state.n_out_of_range[:] = 0.0
    # the cycle history stops at HISTORY_SOH_FLOOR (a state of health of 0 has no capacity to scale)
    room = np.maximum((1.0 - HISTORY_SOH_FLOOR) - state.q_loss_cal, 0.0)
    over = (fec > 0) & (state.q_loss_cyc > room)
    if over.any():
        state.q_loss_cyc[over] = room[over]
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


#: A simpler spread for a Chinese fleet: uniform over 0-4 years, mean 2.0, inside the 1.5-2.4-year
#: band :func:`china_nev_mean_age_years` gives [B]. The real stock is younger-skewed (36 %
#: registered within the last year); the default is :data:`DEFAULT_GROUP_AGE` below.
CHINA_FLEET_AGE_EXAMPLE = {"dist": "uniform", "low": 0.0, "high": 4.0}


#: China's NEV stock at each year end and new NEV registrations per year, millions, as the
#: Ministry of Public Security (MPS) announced them each January [A]:
#:
#: * 2024: 31.40 in use, 11.25 newly registered (Xinhua, en.people.cn/n3/2025/0117/c90000-20267347.html;
#:   shine.cn/biz/auto/2501172408/, 17 Jan 2025);
#: * 2023: 20.41 in use, 7.43 registered (Xinhua, en.people.cn/n3/2024/0111/c90000-20120828.html,
#:   11 Jan 2024, which also gives 1.2 registered in 2019);
#: * 2022: 13.10 in use, 5.35 registered (MPS via agencies, dailymailnews.pk "China sees surge in
#:   registered NEVs in 2022", Jan 2023; Xinhua's 2024 note "7.43, 2.07 more than 2022" gives 5.36);
#: * 2021: 7.84 in use, 2.95 registered, "1.78 million more than the previous year" (so 1.17 in
#:   2020) (MPS via CnEVPost, cnevpost.com/2022/01/13/chinas-nev-fleet-reaches-7-84-million-81-6-bevs);
#: * 2020: 4.92 in use, "1.11 million (29.18 %) more than 2019" (so 3.81 at the end of 2019)
#:   (Xinhua, peoplesdaily.pdnews.cn, 8 Jan 2021; MPS figures as relayed by de-ta.org);
#: * 2019: 1.20 registered (Xinhua 2024 above).
#:
#: The stock counts every NEV (private cars, taxis, buses, trucks; 81 % battery-electric in 2020-21);
#: there is no published split of the stock by age or by use, so private groups take the whole
#: stock's ages [B].
CN_NEV_MPS_MILLIONS = {
    # year: (stock at the year end, newly registered in the year)
    2019: (4.92 - 1.11, 1.20),
    2020: (4.92, 2.95 - 1.78),
    2021: (7.84, 2.95),
    2022: (13.10, 5.35),
    2023: (20.41, 7.43),
    2024: (31.40, 11.25),
}

#: Age (years) given to the stock registered before 2019 that is still in use at the end of 2024:
#: uniform over 6-10 years [B]. China had only 0.12 million NEVs in 2014 (MPS, shine.cn 2025
#: above), so nearly all of it was registered 2015-2018.
CN_NEV_OLDER_AGE_YEARS = (6.0, 10.0)


def cn_nev_stock_age_bins(year: int = 2024) -> tuple[np.ndarray, np.ndarray]:
    """Age distribution of China's NEV stock at the end of ``year`` [B, derived from
    :data:`CN_NEV_MPS_MILLIONS`]: edges (years) and the share of the stock in each bin.

    The vehicles registered ``k`` years before the year end's year (``k`` = 0 for that year) are
    ``k``..``k + 1`` years old; registrations are taken as still in use (scrapping 2020-2024 was
    0.56 million against 28 million registered: the stock grew by registrations less that much,
    counted against the oldest vehicles). The rest of the stock (registered before 2019, net of
    all scrapping) is spread over :data:`CN_NEV_OLDER_AGE_YEARS`.
    At the end of 2024 that is 36 / 24 / 17 / 9.4 / 3.7 / 3.8 % under 1 / 2 / ... / 6 years and
    6.5 % older; mean age 2.19 years."""
    years = sorted(y for y in CN_NEV_MPS_MILLIONS if y <= year)
    if not years or years[-1] != year:
        raise ValueError(f"no MPS figures for {year}; known: {sorted(CN_NEV_MPS_MILLIONS)}")
    stock = CN_NEV_MPS_MILLIONS[year][0]
    cohorts = [CN_NEV_MPS_MILLIONS[y][1] for y in reversed(years)]  # age 0-1, 1-2, ...
    older = stock - sum(cohorts)
    if older < 0:
        raise ValueError(f"registrations since {years[0]} exceed the stock at the end of {year}")
    lo, hi = CN_NEV_OLDER_AGE_YEARS
    if lo < len(cohorts):
        raise ValueError(f"the older stock's ages ({lo}-{hi} years) overlap the registered cohorts (0-{len(cohorts)} years)")
    # a gap between the last cohort and the older band is an empty bin
    edges = np.array([*range(len(cohorts) + 1), *([lo] if lo > len(cohorts) else []), hi], float)
    shares = np.array([*cohorts, *([0.0] if lo > len(cohorts) else []), older]) / stock
    return edges, shares


#: The default ``initial_age_years`` of a population group when wear is on: the age of China's
#: NEV stock at the end of 2024 (:func:`cn_nev_stock_age_bins`). ``initial_age_years: 0`` keeps
#: the packs new. A swap station's pack pool stays new by default (docs/wear.md, Initial age).
DEFAULT_GROUP_AGE = {"dist": "cn_nev_stock"}
