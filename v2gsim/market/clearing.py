"""Bids and merit-order clearing of a grid request.

Each operator a request addresses answers with a :class:`Bid` -- the power it offers over the
window and the price per kWh it asks -- built from its flexibility envelope (see each business
model's ``bid``). The grid operator accepts the cheapest bids first until the request's target is
met (merit order); the last bid accepted, the marginal one, may be accepted in part, and every
accepted kWh is paid the marginal bid's price (uniform pricing, pay-as-cleared). Bids above the
request's price cap are refused; provincial DR markets cap bids (Shandong 30 CNY/kW per event;
Guangdong's day-ahead VPP bids at most 1.5 x the spot cap [B, DOMAIN.md "Demand response"]).
Uniform pricing at the marginal bid is an assumption of this model [C]: we did not check which
provinces clear pay-as-cleared and which pay-as-bid. A regulation request clears the same way on
its mileage price: a bid's ``price_cny_per_kwh`` is then CNY per MW of mileage and the cap the
request's ``mileage_price_cny_per_mw`` (Guangdong's FM market clears mileage offers at one uniform
price [B], v2gsim.market.regulation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Bid", "Clearing", "clear"]


@dataclass(frozen=True)
class Bid:
    """An operator's answer to a request: ``p_kw`` offered over the whole window at ``price_cny_per_kwh``."""

    operator_id: str
    p_kw: float
    price_cny_per_kwh: float


@dataclass(frozen=True)
class Clearing:
    """The cleared request.

    Attributes:
        bids: the bids, as given (k,).
        accepted_kw: power accepted from each bid, shape (k,).
        price_cny_per_kwh: the uniform price (the marginal accepted bid's); NaN if nothing was accepted.
        marginal: position of the marginal bid in ``bids`` (-1 if none).
    """

    bids: tuple[Bid, ...]
    accepted_kw: np.ndarray
    price_cny_per_kwh: float
    marginal: int

    @property
    def total_kw(self) -> float:
        return float(self.accepted_kw.sum())


def clear(bids, target_kw: float, price_cap_cny_per_kwh: float | None = None) -> Clearing:
    """Merit-order clearing of ``bids`` for ``target_kw`` at a uniform price.

    Bids are taken cheapest first (equal prices in the order given); bids with no power, or
    above the cap, are refused. The marginal bid gets what is left of the target.
    """
    bids = tuple(bids)
    p = np.array([max(b.p_kw, 0.0) for b in bids], dtype=float)
    price = np.array([b.price_cny_per_kwh for b in bids], dtype=float)
    ok = p > 0
    if price_cap_cny_per_kwh is not None:
        ok &= price <= price_cap_cny_per_kwh + 1e-12
    order = [i for i in np.argsort(price, kind="stable") if ok[i]]
    accepted = np.zeros(len(bids))
    left = max(float(target_kw), 0.0)
    marginal = -1
    for i in order:
        if left <= 1e-9:
            break
        accepted[i] = min(p[i], left)
        left -= accepted[i]
        marginal = int(i)
    return Clearing(bids, accepted, float(price[marginal]) if marginal >= 0 else float("nan"), marginal)
