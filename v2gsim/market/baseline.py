"""The baseline of a demand-response event and what was delivered against it.

A grid company pays a demand-response provider for the load it changed, which needs the load it
*would* have had: the customer baseline load (CBL). The method here is the day-matching average
that Chinese DR programmes use: the mean of the load on the N most recent similar days at the same
clock times, similar meaning the same day type (workday or rest day) and not an event day of the
same provider. GB/T 32127-2015 (需求响应效果监测与综合效益评价导则, "Guide for monitoring effect and
comprehensive benefit evaluation of demand response") defines the baseline on the load of
similar days before the event [A: the standard exists and covers the baseline; its exact N we did
not read]; provincial DR rules take the 5 most recent workdays for a workday event [C: a common
figure, not checked against one province's text]. The day-matching family is reviewed in
"Demand Response Impact Evaluation: A Review of Methods for Estimating the Customer Baseline
Load", Energies 15(14):5259 (2022), doi:10.3390/en15145259 (EU Joint Research Centre) [A].

Fallback when the run has fewer similar days before the event (a short run, or an event early in
it): first the mean of the similar days there are (at least one), then the most recent earlier
non-event days of any type, then the most recent earlier days even if they were event days (a
``daily`` request makes every day an event day), and with no earlier day at all no baseline (the
delivery is unknown: nothing is paid or penalised, and the table says so). We do not fall back on
the like-for-like reference run: the grid company settles in the run from metered load it has, and
the reference runs after the run; a warm-up of N days gives every event in the recorded run a full
baseline (the warm-up days are metered too).

Day types are China's official calendar (:mod:`v2gsim.data.cn_calendar`): public holidays and the
days off moved into the week are rest days like Saturdays and Sundays, and the weekend days worked
in exchange (调休) are workdays. So the baseline of a workday event never averages a holiday, and
a make-up Saturday is a similar day for a workday event (and has workdays as its similar days).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from v2gsim.data.cn_calendar import is_workday

__all__ = ["Baseline", "similar_day_baseline", "day_type"]


@dataclass(frozen=True)
class Baseline:
    """A window's baseline.

    Attributes:
        p_kw: baseline power per step of the window, shape (b - a,); NaN without a baseline.
        days_back: the days used, in days before the event (1 = the day before).
        method: ``similar_days`` (N similar days found), ``fewer_similar_days``, ``any_days``,
            ``event_days`` or ``none`` (see the module doc).
    """

    p_kw: np.ndarray
    days_back: tuple[int, ...]
    method: str


def day_type(times: pd.DatetimeIndex) -> np.ndarray:
    """0 for a workday, 1 for a rest day (Saturday, Sunday, public holiday) on China's official
    calendar, per time (:func:`v2gsim.data.cn_calendar.is_workday`)."""
    return (~is_workday(times)).astype(np.int8)


def similar_day_baseline(load_kw: np.ndarray, clock: pd.DatetimeIndex, a: int, b: int, *, n_days: int = 5,
                         event: np.ndarray | None = None, steps_per_day: int) -> Baseline:
    """Baseline of clock steps ``[a, b)`` from the load metered on earlier days.

    Args:
        load_kw: metered net load per clock step, shape (n_clock,); only steps before ``a`` are read.
        clock: step start times, (n_clock,).
        a, b: the window (b exclusive).
        n_days: similar days averaged (N).
        event: (n_clock,) bool, steps inside an event of this provider (their days are not
            similar days); None: none.
        steps_per_day: clock steps in a day.

    Returns:
        The :class:`Baseline`: per step, the mean of the load at the same clock times ``k`` days
        earlier over the chosen days ``k``.
    """
    if b <= a:
        raise ValueError(f"empty window [{a}, {b})")
    load = np.asarray(load_kw, dtype=float)
    kinds = day_type(clock[[a]])[0]
    candidates = [k for k in range(1, a // steps_per_day + 1) if a - k * steps_per_day >= 0]
    shift = lambda k: slice(a - k * steps_per_day, b - k * steps_per_day)  # noqa: E731
    is_event = (lambda k: bool(event[shift(k)].any())) if event is not None else (lambda k: False)  # noqa: E731
    same = [k for k in candidates if day_type(clock[[a - k * steps_per_day]])[0] == kinds and not is_event(k)]
    if len(same) >= n_days:
        days, method = same[:n_days], "similar_days"
    elif same:
        days, method = same, "fewer_similar_days"
    else:
        other = [k for k in candidates if not is_event(k)][:n_days]
        days, method = (other, "any_days") if other else (candidates[:n_days], "event_days")
    if not days:
        return Baseline(np.full(b - a, np.nan), (), "none")
    p = np.mean([load[shift(k)] for k in days], axis=0)
    return Baseline(p, tuple(days), method)
