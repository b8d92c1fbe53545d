"""Frequency regulation (调频): performance, mileage and the payments of a regulation request.

The grid operator meters, each step of a regulation window, the capacity an operator actually
holds both ways (:func:`headroom_kw`, from its plugged bidirectional vehicles' power and energy
headroom) and settles the window on it (:func:`settle_regulation`):

* **availability** ``A`` = mean over the window's steps of ``min(up, down, p) / p``;
* **capacity** = ``capacity_price_cny_per_kw x p_kw x A`` when ``A >= availability_threshold``,
  else nothing and a **penalty** of ``capacity_price_cny_per_kw x p_kw x (threshold - A)``;
* **mileage** (MW): with a ``signal``, what the fleet followed, ``sum |r_k - r_(k-1)|`` of
  ``r_k = signal_k x min(available_kW, p)`` over the signal's samples in the window, / 1000
  (with the fleet fully available: ``p x sum |signal_k - signal_(k-1)|``); without one,
  ``mileage_per_mw_h x p/1000 x window_h x A``;
* **mileage paid** = ``mileage_price_cny_per_mw x mileage``.

Figures (DOMAIN.md tags):

* Guangdong's FM market (《广东调频辅助服务市场交易规则(试行)》, NEA Southern Regulatory Office,
  Aug 2018; trial from 1 Sep 2018): mileage offers between 6 and 15 CNY/MW before the spot market,
  cleared at one uniform price (the last accepted unit's); capacity compensation 12 CNY/MWh for
  accepted AGC units (3.56 for the others) [B: a trade-press summary of the rules, China Energy
  Storage Network, 2018; the rules themselves not read]. :data:`GUANGDONG_MILEAGE_PRICE_CNY_PER_MW`.
* Mileage per MW-h of capacity held without a signal: :data:`MILEAGE_PER_MW_H` = 5 [C: our
  assumption. A fast (RegD-like) signal travels several times as far as a slow (RegA-like) one
  per MW held -- PJM pays RegD a mileage ratio of its mileage to RegA's -- but we found no
  published per-hour figure; give a ``signal`` to measure it].
* ``availability_threshold`` 0.8 [C: assumption; Chinese rules assess AGC performance and cut the
  compensation of poor performers, their figures differ].
* ``sustain_min`` 15 [C: assumption: a signal energy-neutral over the window that may sit at +-1
  for a quarter hour].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from v2gsim.errors import Problem

__all__ = ["GUANGDONG_MILEAGE_PRICE_CNY_PER_MW", "GUANGDONG_CAPACITY_CNY_PER_MWH", "MILEAGE_PER_MW_H",
           "read_signal", "signal_steps", "headroom_kw", "settle_regulation", "follow_signal"]

# [B] Guangdong FM market trial rules (2018): mileage offer floor and cap before the spot market
GUANGDONG_MILEAGE_PRICE_CNY_PER_MW = (6.0, 15.0)
# [B] the same rules: capacity compensation of an accepted AGC unit, CNY per MW of capacity per hour
GUANGDONG_CAPACITY_CNY_PER_MWH = 12.0
# [C] mileage (MW) per MW of capacity held per hour, without a signal (module doc)
MILEAGE_PER_MW_H = 5.0


def read_signal(path: str | Path, where: str) -> tuple[np.ndarray | None, list[Problem]]:
    """A normalised regulation signal: a CSV whose column ``signal`` (or its only column) holds
    values in [-1, 1] (+1: the fleet's net load falls by p, feeding or drawing less; -1: it draws
    p more), evenly spaced over the window (one per step, or per second). Problems name ``where``."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        return None, [Problem(where, f"signal file {str(p)!r} does not exist",
                              "give a CSV with a column 'signal' of values in [-1, 1] (relative to the scenario file)")]
    try:
        df = pd.read_csv(p)
    except Exception as exc:  # the parser's own message says what is wrong
        return None, [Problem(where, f"signal file {str(p)!r} cannot be read: {exc}", "give a CSV with a column 'signal'")]
    if "signal" in df.columns:
        col = df["signal"]
    elif df.shape[1] == 1:
        col = df.iloc[:, 0]
    else:
        return None, [Problem(where, f"signal file {str(p)!r} has no column 'signal' (columns: {', '.join(map(str, df.columns))})",
                              "name the column of the normalised signal 'signal'")]
    x = pd.to_numeric(col, errors="coerce").to_numpy(float)
    if x.size == 0 or np.isnan(x).any():
        return None, [Problem(where, f"signal file {str(p)!r} has {'no values' if x.size == 0 else 'values that are not numbers'}",
                              "give one number in [-1, 1] per row")]
    bad = np.flatnonzero(np.abs(x) > 1.0)
    if bad.size:
        return None, [Problem(where, f"signal file {str(p)!r} has values outside [-1, 1] ({bad.size}, first at row {bad[0] + 1}: "
                              f"{x[bad[0]]:g})", "normalise the signal by the capacity it asks for (divide by p)")]
    return x, []


def signal_steps(signal: np.ndarray, n_steps: int, where: str) -> tuple[np.ndarray | None, list[Problem]]:
    """The signal as (n_steps, samples per step): it must split evenly over the window's steps."""
    if signal.size % n_steps:
        return None, [Problem(where, f"the signal has {signal.size} values, which do not split evenly over the window's "
                              f"{n_steps} steps", f"give {n_steps} values (one per step) or a multiple of it (e.g. one per second)")]
    return signal.reshape(n_steps, -1), []


def headroom_kw(p_kw, p_ch_max_kw, p_dis_max_kw, e_kwh, e_lo_kwh, e_cap_kwh, eta_ch, eta_dis, sustain_h: float):
    """Regulation headroom of each vehicle around its power ``p_kw`` (> 0 drawn), kW: ``up`` (how
    much less it can draw / more feed: down to its discharge power, with energy above ``e_lo``
    for ``sustain_h``) and ``down`` (how much more it can draw: up to its charger power, with room
    below ``e_cap`` for ``sustain_h``). Vectorised over vehicles; each >= 0."""
    h = max(float(sustain_h), 1e-9)
    feed = np.minimum(p_dis_max_kw, np.maximum(e_kwh - e_lo_kwh, 0.0) * eta_dis / h)
    draw = np.minimum(p_ch_max_kw, np.maximum(e_cap_kwh - e_kwh, 0.0) / (eta_ch * h))
    return np.maximum(p_kw + feed, 0.0), np.maximum(draw - p_kw, 0.0)


def settle_regulation(r, available_kw: np.ndarray, dt_h: float, signal: np.ndarray | None = None) -> dict:
    """Availability, capacity, penalty and mileage of one window of regulation request ``r`` for
    one operator (module doc). ``available_kw`` (k,): min(up, down) each step; ``signal`` (k, m)
    the signal's samples per step, or None."""
    p = float(r.p_kw or 0.0)
    avail = np.minimum(np.maximum(np.asarray(available_kw, float), 0.0), p)
    share = float(avail.mean() / p) if p > 0 and avail.size else 0.0
    cap_full = r.capacity_price_cny_per_kw * p
    thr = r.availability_threshold
    capacity = cap_full * share if share >= thr else 0.0
    penalty = cap_full * max(thr - share, 0.0) if share < thr else 0.0
    hours = avail.size * dt_h
    if signal is not None:
        followed = (signal * avail[:, None]).ravel()  # kW each sample
        mileage_mw = float(np.abs(np.diff(followed)).sum()) / 1000.0
    else:
        ratio = MILEAGE_PER_MW_H if r.mileage_per_mw_h is None else r.mileage_per_mw_h
        mileage_mw = ratio * p / 1000.0 * hours * share
    return {"availability": share, "capacity_cny": capacity, "regulation_penalty_cny": penalty,
            "mileage_mw": mileage_mw, "mileage_cny": r.mileage_price_cny_per_mw * mileage_mw}


def follow_signal(p_kw, delta_kw: float, p_ch_max_kw, p_dis_max_kw, e_kwh, e_lo_kwh, e_cap_kwh, eta_ch, eta_dis, dt_h: float):
    """The vehicles' powers (> 0 drawn) moved by ``delta_kw`` in total (> 0: draw more), shared in
    proportion to each one's room in that direction: its charger (discharge) power, and the energy
    it can still take above its power (give above its floor) in ``dt_h`` -- so no battery leaves
    ``[e_lo, e_cap]`` (where it starts inside) however the signal moves. Where the room is short
    the fleet follows as far as it can. Vectorised over vehicles."""
    p = np.asarray(p_kw, float)
    hi = np.minimum(p_ch_max_kw, np.maximum(e_cap_kwh - e_kwh, 0.0) / (eta_ch * dt_h))
    lo = -np.minimum(p_dis_max_kw, np.maximum(e_kwh - e_lo_kwh, 0.0) * eta_dis / dt_h)
    hi, lo = np.maximum(hi, np.minimum(p, 0.0)), np.minimum(lo, np.maximum(p, 0.0))  # never pushed further out than it is
    room = np.maximum(hi - p, 0.0) if delta_kw > 0 else np.maximum(p - lo, 0.0)
    total = float(room.sum())
    if total <= 0 or delta_kw == 0:
        return p.copy()
    share = min(abs(delta_kw) / total, 1.0)
    return p + np.sign(delta_kw) * share * room
