"""The operator of a business model: holds its strategy and asks it for a dispatch each step."""

from __future__ import annotations

import mesa
import numpy as np

from v2gsim.engine.actor import Actor, Signals
from v2gsim.strategies.base import Dispatch, FleetView, Observation, Strategy


class Aggregator(Actor, mesa.Agent):
    """One entry of ``business_models``; ``site_mask[s]`` is True for the sites it controls.

    In the decide phase it shows its strategy the vehicles plugged at its sites (a read-only
    :class:`Observation`) and keeps the answer in :attr:`dispatch`, which the engine's physics
    clips and applies.

    Args:
        model: the Mesa model (registration only).
        strategy: the business model's strategy.
        site_mask: (S,) bool, the sites it controls.
        number: its position in ``business_models``.
        fleet_view: read-only fleet arrays.
        owner: read-only (N,) business model whose site each vehicle is plugged at (-1 none).
        plugged: read-only (N,) plugged mask, used when this is the only business model.
        below_stop: read-only (N,) mask of vehicles below their full point.
        sole: the only business model, owning every site (its vehicles are all plugged ones).
        operator_id: its id in the ledger and in KPI names (default: the kind).
    """

    def __init__(self, model, strategy: Strategy, site_mask, number: int = 0, *, fleet_view: FleetView | None = None,
                 owner: np.ndarray | None = None, plugged: np.ndarray | None = None, below_stop: np.ndarray | None = None,
                 sole: bool = False, operator_id: str | None = None):
        super().__init__(model)
        self.strategy = strategy
        self.site_mask = site_mask
        self.number = number
        self.operator_id = operator_id or strategy.config.kind  # its id in the ledger and in KPI names
        self.dispatch = Dispatch.empty()
        self._fleet_view, self._owner, self._plugged, self._below_stop, self._sole = fleet_view, owner, plugged, below_stop, sole
        self._seen_requests: tuple = ()  # the grid operator's last published tuple, and the part addressed here
        self._my_requests: tuple = ()

    def requests(self, sig: Signals) -> tuple:
        """The visible grid requests addressed to this operator (one tuple object while nothing new comes)."""
        if sig.requests is not self._seen_requests:
            self._seen_requests = sig.requests
            mine = tuple(q for q in sig.requests if q.addresses(self.operator_id))
            if len(mine) != len(self._my_requests):  # the published tuple only grows
                self._my_requests = mine
        return self._my_requests

    @property
    def kind(self) -> str:
        return self.strategy.config.kind

    def observation(self, sig: Signals) -> Observation:
        mine = self._plugged if self._sole else self._owner == self.number
        if mine.flags.writeable:
            mine = mine.view()
            mine.flags.writeable = False
        return Observation(sig.step, sig.time, sig.dt_h, sig.price_cny_per_kwh, sig.v2g_price_cny_per_kwh, self._fleet_view, mine,
                           self._below_stop, sig.feeder_headroom_kw, self.requests(sig))

    def bid(self, request, sig: Signals):
        """Its strategy's answer to a request put to clearing (a :class:`v2gsim.market.clearing.Bid`, or None;
        None for a kind it does not bid for, ``Strategy.bid_kinds``)."""
        if request.kind not in getattr(self.strategy, "bid_kinds", ("discharge_call",)):
            return None
        return self.strategy.bid(request, self.observation(sig))

    def decide(self, sig: Signals) -> None:
        self.dispatch = self.strategy.decide(self.observation(sig))

    def kpis(self) -> dict[str, float]:
        """The strategy's own counters, as ``<operator id>_<name>``."""
        return {f"{self.operator_id}_{name}": float(v) for name, v in self.strategy.kpis().items()}
