"""A business model registered as a plugin, so the shared contract tests run against a plugin too.

Charges the wanting vehicles at a fixed share of their charger's power while the price is at or
below its threshold, and asks every bidirectional vehicle above its departure minimum to feed
back at full power when the price is above it.
"""

from typing import Literal

import numpy as np
from pydantic import Field

import v2gsim
from v2gsim.strategies import Dispatch, Observation, Strategy, StrategyConfig


class PriceBandConfig(StrategyConfig):
    kind: Literal["contract_price_band"] = "contract_price_band"
    threshold_cny_per_kwh: float = Field(default=0.5, ge=0)
    share: float = Field(default=0.7, gt=0, le=1)


@v2gsim.register_strategy("contract_price_band")
class PriceBand(Strategy):
    config_cls = PriceBandConfig

    def decide(self, obs: Observation) -> Dispatch:
        f = obs.fleet
        if obs.price_cny_per_kwh <= self.config.threshold_cny_per_kwh:
            idx = obs.wanting_idx
            return Dispatch(idx, self.config.share * f.p_plug_max_kw[idx])
        idx = obs.plugged_idx
        idx = idx[f.can_discharge[idx] & (f.e_kwh[idx] > f.e_min_departure_kwh[idx])]
        return Dispatch(idx, -f.p_plug_max_kw[idx].astype(np.float64))
