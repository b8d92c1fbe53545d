"""The end of a wear period and a pack's retirement, as the fleet's wear (:class:`FleetWear`, one
pack per vehicle) and a swap network's pack wear (:class:`SwapPackWear`, packs that move between
racks and vehicles) both do them: advance the fade models over the period, retire the packs below
``retirement_soh`` (second life or recycling, a new pack in their place), re-price the wear, age
the second-life storages. What differs — whose capacity arrays a new state of health scales, what
a retired pack's record keeps — stays in each class (``_retire``, ``_price``)."""

from __future__ import annotations

import numpy as np

from v2gsim.physics.wear import WearState

# the per-pack wear state a retired pack takes to second life
_RETIRED_FIELDS = ("q_loss_cal", "q_loss_cyc", "t_s", "fec", "fd_cal", "fd_cyc", "n_out_of_range")


class PeriodClose:
    """Mixin over ``pop`` (a WearPopulation), ``second_life`` (or None), ``cap_nom_kwh``,
    ``packs_replaced``, ``replacement_cost_cny``, ``packs_recycled_direct``, ``n_out_of_range``;
    the class gives ``_retire(ret, s)`` and ``_price(stress)``."""

    def _advance(self, cfg, dt_s: float, t_amb: float, **throughputs) -> dict:
        """The fade models over the period just ended (throughputs as ``close_period`` takes them);
        returns the period's stressors."""
        stress = self.pop.close_period(dt_s=dt_s, c_drive=self.c_drive, t_amb_degc=t_amb,
                                       heating_k_per_c_rate=cfg.heating_k_per_c_rate, **throughputs)
        self.n_out_of_range += stress["n_out_of_range"]
        return stress

    def _retire_price_age(self, cfg, retire: np.ndarray, stress: dict, s_next: int, dt_s: float, t_amb: float) -> None:
        """After the new state of health is applied: retire the packs of mask ``retire``, re-price the
        wear (``price_dispatch``), age the second-life storages over the period."""
        ret = np.flatnonzero(retire)
        if ret.size:
            self._retire(ret, s_next)
        if cfg.price_dispatch:
            self._price(stress)
        if self.second_life is not None:
            self.second_life.close_period(s_next, dt_s, t_amb, cfg.heating_k_per_c_rate)

    def _hand_over(self, ret: np.ndarray, s: int, e_kwh: np.ndarray) -> None:
        """Retired packs ``ret`` (holding ``e_kwh``) go to second life, or are recycled."""
        if self.second_life is not None:
            st = self.pop.state
            rows = WearState(**{name: getattr(st, name)[ret].copy() for name in _RETIRED_FIELDS})
            rows.fec -= self.pop.q0_fec[ret]  # FEC counted from the run's start, as every FEC column
            self.second_life.add(s, ret, self.cap_nom_kwh[ret], self.pop.model_ids[ret], rows, e_kwh)
        else:
            self.packs_recycled_direct += ret.size

    def _replace(self, cfg, ret: np.ndarray) -> None:
        """New packs in place of ``ret``: counted, paid for, their cells new."""
        self.packs_replaced[ret] += 1
        self.replacement_cost_cny[ret] += cfg.replacement_cost_cny_per_kwh * self.cap_nom_kwh[ret]
        self.pop.reset_packs(ret)
