"""One limiter for every shared grid connection: charging sites and swap stations.

Rule: a connection of ``limit`` kW bounds its **net** power, ``-limit <= charging - discharging
<= limit``, as the planners (:mod:`v2gsim.strategies.dispatch`) assume. Where a connection's
requests would break it, the dominant direction is scaled pro rata (one factor for all its
devices), so each device keeps its share and the strategy's priorities within the step stand.

The engine applies it to the *requests*, before the batteries answer (CC-CV taper, full point,
discharge floor), and a battery may deliver less than it was asked for. So that the net holds
after the batteries answer, at a connection whose requests exceed the limit in either direction
(*binding*), the caller

1. clips each device to its own limits (charger, discharge permission),
2. clips discharge requests to what the battery can deliver (:func:`deliverable_discharge_kw`,
   exact: discharging runs at constant power down to a floor),
3. scales charging so that the net import stays within the limit (:func:`limit_import`),
4. applies the charging,
5. scales discharging so that the net export, against the charging *delivered*, stays within the
   limit (:func:`limit_export`; needed only where discharging alone exceeds the limit),
6. applies the discharging.

A connection within its limit in both directions is not touched. Charging may deliver less than
asked, which only lowers the import; the export bound is taken against what it delivered.
"""

from __future__ import annotations

import numpy as np


def direction_sums(p_kw: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Charging and discharging per connection (both >= 0), shape (n_groups,) each."""
    return (np.bincount(group, weights=np.maximum(p_kw, 0.0), minlength=n_groups),
            np.bincount(group, weights=np.maximum(-p_kw, 0.0), minlength=n_groups))


def binding(p_kw: np.ndarray, group: np.ndarray, limit_kw: np.ndarray, n_groups: int) -> np.ndarray:
    """Connections whose charging or discharging alone exceeds the limit, bool (n_groups,)."""
    load, feed = direction_sums(p_kw, group, n_groups)
    return (load > limit_kw) | (feed > limit_kw)


def deliverable_discharge_kw(e_kwh: np.ndarray, e_floor_kwh: np.ndarray, eta_discharge: np.ndarray, dt_h: float) -> np.ndarray:
    """Grid-side power a battery can feed for ``dt_h`` at constant power without going below its
    floor, kW (same shapes)."""
    return np.maximum(e_kwh - e_floor_kwh, 0.0) * eta_discharge / dt_h


def limit_import(p_kw: np.ndarray, group: np.ndarray, limit_kw: np.ndarray, n_groups: int) -> np.ndarray:
    """Scale each connection's charging so that charging − discharging <= its limit.

    Args:
        p_kw: requests per device, shape (k,), > 0 charging (discharge requests already
            deliverable).
        group: connection of each device, ints in ``[0, n_groups)``, shape (k,).
        limit_kw: limit per connection, shape (n_groups,), inf = none.
        n_groups: number of connections.
    """
    load, feed = direction_sums(p_kw, group, n_groups)
    over = load - feed > limit_kw
    if not over.any():
        return p_kw
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # connections within the limit take 1.0
        k = np.where(over, (limit_kw + feed) / load, 1.0)
    return np.where(p_kw > 0, p_kw * k[group], p_kw)


def limit_export(p_kw: np.ndarray, group: np.ndarray, limit_kw: np.ndarray, n_groups: int, charging_kw: np.ndarray) -> np.ndarray:
    """Scale each connection's discharging so that discharging − ``charging_kw`` <= its limit.

    ``charging_kw`` (n_groups,) is the charging its devices actually drew this step; other
    arguments as :func:`limit_import`.
    """
    feed = np.bincount(group, weights=np.maximum(-p_kw, 0.0), minlength=n_groups)
    over = feed - charging_kw > limit_kw
    if not over.any():
        return p_kw
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k = np.where(over, (limit_kw + charging_kw) / feed, 1.0)
    return np.where(p_kw < 0, p_kw * k[group], p_kw)


def first_in_line(site: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Mask of the entries (each waiting for a place at ``site[i]``) that get one of their site's
    ``free`` places, first come first served in array order (arrivals, queues, detours)."""
    # most calls (two in three on the provisioned city) find room for everyone at every site:
    # one count per site answers them without the stable sort and ranks below
    if (np.bincount(site, minlength=free.size) <= free).all():
        return np.ones(site.size, bool)
    order = np.argsort(site, kind="stable")
    s = site[order]
    rank = np.empty(site.size, np.int64)
    rank[order] = np.arange(site.size) - np.searchsorted(s, s, side="left")
    return rank < free[site]
