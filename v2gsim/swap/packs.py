"""Every pack of a swap network as a struct of arrays (layout: :mod:`v2gsim.agents.swap_station`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Packs:
    """Every pack, shape (P,). See the module docstring for the layout."""

    standard: np.ndarray  # int8, index into SwapNetwork.standards
    chemistry: np.ndarray  # int8, index into fleet.CHEMISTRIES
    capacity_kwh: np.ndarray  # nominal
    soh: np.ndarray  # state of health (1.0 new)
    e_kwh: np.ndarray  # live in a rack; synced at swaps for packs in vehicles
    station: np.ndarray  # int32, -1 in a vehicle
    slot: np.ndarray  # int32 global rack slot, -1 in a vehicle
    vehicle: np.ndarray  # int64, -1 in a rack
    e_charged_kwh: np.ndarray  # grid side, in the rack
    e_discharged_kwh: np.ndarray  # grid side, in the rack
    e_loss_kwh: np.ndarray
    e_throughput_kwh: np.ndarray  # battery side |dE| in the rack
    e_rack_discharged_kwh: np.ndarray  # battery side, in the rack
    n_swaps: np.ndarray  # int32: times swapped in or out
    wear_cost_cny_per_kwh: np.ndarray

    @property
    def n(self) -> int:
        return self.e_kwh.size
