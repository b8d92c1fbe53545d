"""The feeder: one transformer with a rating that sums every load on it."""

from __future__ import annotations

import mesa


class Feeder(mesa.Agent):
    """Transformer loading from the net active power at a power factor.

    loading_pct = |P| / (pf * S_rated) * 100; headroom_kw = pf * S_rated - P.
    """

    def __init__(self, model, transformer_kva: float, power_factor: float):
        super().__init__(model)
        self.transformer_kva = transformer_kva
        self.power_factor = power_factor
        self.loading_pct = 0.0
        self.headroom_kw = float("inf")

    @property
    def rating_kw(self) -> float:
        return self.transformer_kva * self.power_factor

    def solve(self, net_load_kw: float) -> None:
        self.loading_pct = abs(net_load_kw) / self.rating_kw * 100.0
        self.headroom_kw = self.rating_kw - net_load_kw
