"""One limiter for every shared grid connection: charging sites and swap stations.

Rule: a connection of ``limit`` kW holds **each direction** separately. Where the charging
requested behind it adds up to more than the limit, every charging request is scaled by the same
factor so that they add up to the limit; the same for discharging. Each device keeps its share
(pro rata), the strategy's priorities within the step are not second-guessed.

Why each direction and not the net: the engine applies the limit to the *requests*, before the
batteries answer (CC-CV taper, full point, discharge floor). A request can only shrink there. With
both directions held separately the net stays within ``[-limit, limit]`` whatever the batteries
then deliver; a limit on the requested net could be broken afterwards (a discharging vehicle
stopping at its floor leaves the charging ones above the limit). The planners
(:mod:`v2gsim.strategies.dispatch`) bound the net; where a plan charges some vehicles and
discharges others at one site at the same step beyond the limit, the engine scales it down
(docs/engine.md, "Limits").
"""

from __future__ import annotations

import numpy as np


def limit_pro_rata(p_kw: np.ndarray, group: np.ndarray, limit_kw: np.ndarray, n_groups: int) -> np.ndarray:
    """Scale requests so that each group's charging and its discharging stay within its limit.

    Args:
        p_kw: requested power per device, shape (k,); > 0 charging, < 0 discharging.
        group: the connection of each device, int indices in ``[0, n_groups)``, shape (k,).
        limit_kw: each connection's limit, shape (n_groups,); inf = none.
        n_groups: number of connections.

    Returns:
        The limited powers, shape (k,): unchanged where a direction is within its limit.
    """
    load = np.bincount(group, weights=np.maximum(p_kw, 0.0), minlength=n_groups)
    feed = np.bincount(group, weights=np.maximum(-p_kw, 0.0), minlength=n_groups)
    over_load, over_feed = load > limit_kw, feed > limit_kw
    if not (over_load.any() or over_feed.any()):
        return p_kw
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # groups within their limit take 1.0
        k_load = np.where(over_load, limit_kw / load, 1.0)
        k_feed = np.where(over_feed, limit_kw / feed, 1.0)
    return np.where(p_kw > 0, p_kw * k_load[group], p_kw * k_feed[group])
