"""The operator of a business model: holds its strategy and asks it for a dispatch each step."""

from __future__ import annotations

import mesa

from v2gsim.strategies.base import Dispatch, Observation, Strategy


class Aggregator(mesa.Agent):
    """One entry of ``business_models``; ``site_mask[s]`` is True for the sites it controls."""

    def __init__(self, model, strategy: Strategy, site_mask):
        super().__init__(model)
        self.strategy = strategy
        self.site_mask = site_mask
        self.dispatch = Dispatch.empty()

    @property
    def kind(self) -> str:
        return self.strategy.config.kind

    def decide(self, obs: Observation) -> Dispatch:
        self.dispatch = self.strategy.decide(obs)
        return self.dispatch
