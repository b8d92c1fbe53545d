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
    # the wear model's marginal price per battery kWh discharged and recharged (a round trip), not
    # per kWh of throughput as fleet.wear_cost_cny_per_kwh (read it with wear_cny_per_kwh_discharged)
    wear_cost_cny_per_kwh: np.ndarray

    @property
    def n(self) -> int:
        return self.e_kwh.size


def wear_cny_per_kwh_discharged(wear_cny_per_kwh: float | str, pack_price_cny_per_kwh: np.ndarray) -> np.ndarray:
    """The wear a swap operator counts per battery kWh a pack discharges (and later recharges),
    CNY/kWh, shape as ``pack_price_cny_per_kwh``: the battery_swap config's ``wear_cny_per_kwh``
    when it is a number, else (``model``) the wear model's price given, as it is: the price of the
    cycle considered (:meth:`v2gsim.swap.rack.Racks.cycle_wear_cny_per_kwh`, at its own stressors).

    One reader for every swap consumer (the EMS's sell-for-price test and bids, the stations'
    booked wear). No conversion: :class:`~v2gsim.physics.ageing.packs.SwapPackWear` prices a pack
    at the fade of discharging a battery kWh and recharging it (``FEC = battery throughput / (2 x
    capacity)``), already the unit a number means. The fleet's published price is per kWh of
    grid-side throughput and is doubled by :func:`v2gsim.market.contracts.wear_price_cny_per_kwh_discharged`
    (the fallback of the fleet's V2G price, :func:`v2gsim.market.contracts.v2g_wear_cny_per_kwh`);
    doubling the packs' price too would count each round trip's wear twice
    (tests/test_swap_wear_units.py)."""
    price = np.asarray(pack_price_cny_per_kwh, dtype=float)
    if wear_cny_per_kwh == "model":
        return price
    return np.full(price.shape, float(wear_cny_per_kwh))
