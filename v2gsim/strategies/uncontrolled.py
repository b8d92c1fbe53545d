"""Uncontrolled charging: plug in, charge at full power until full or departure."""

from __future__ import annotations

from typing import Literal

import numpy as np

from v2gsim.strategies.base import Dispatch, Observation, Strategy, StrategyConfig, register


class UncontrolledConfig(StrategyConfig):
    kind: Literal["uncontrolled"] = "uncontrolled"


@register("uncontrolled")
class Uncontrolled(Strategy):
    """The baseline every business model is compared with."""

    config_cls = UncontrolledConfig

    def decide(self, obs: Observation) -> Dispatch:
        idx = obs.wanting_idx
        f = obs.fleet
        # Ask only for the energy still missing to the driver's full point, so a target below
        # 100 % is not overshot within a step; the engine applies the taper and the limits.
        p_to_stop_kw = (f.e_stop_kwh[idx] - f.e_kwh[idx]) / (f.eta_charge[idx] * obs.dt_h)
        p_kw = np.minimum(f.p_plug_max_kw[idx], p_to_stop_kw)
        return Dispatch(idx, p_kw)
