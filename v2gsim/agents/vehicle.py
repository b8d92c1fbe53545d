"""Thin Mesa agents over the struct-of-arrays fleet.

``vehicle.soc`` is ``fleet.e_kwh[i] / fleet.capacity_kwh[i]``: reading or writing an agent
attribute reads or writes the arrays, so the population kernels and the agents never disagree.
"""

from __future__ import annotations

import mesa
import numpy as np

from v2gsim.population.fleet import ARCHETYPES, LOCATION_NAMES


def _array_property(name: str, doc: str):
    def get(self):
        return getattr(self.model.fleet, name)[self.index].item()

    def set_(self, value):
        getattr(self.model.fleet, name)[self.index] = value

    return property(get, set_, doc=doc)


class Vehicle(mesa.Agent):
    """One electric vehicle: a view of row ``index`` of ``model.fleet``."""

    def __init__(self, model, index: int):
        super().__init__(model)
        self.index = int(index)

    e_kwh = _array_property("e_kwh", "stored energy, kWh")
    capacity_kwh = _array_property("capacity_kwh", "usable capacity, kWh")
    plugged = _array_property("plugged", "plugged in at a charger")
    p_kw = _array_property("p_kw", "grid power of the last step, kW (> 0 charging)")
    distance_km = _array_property("distance_km", "distance driven so far, km")

    @property
    def soc(self) -> float:
        f = self.model.fleet
        return float(f.e_kwh[self.index] / f.capacity_kwh[self.index])

    @soc.setter
    def soc(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"soc must be within [0, 1]; got {value}")
        f = self.model.fleet
        f.e_kwh[self.index] = value * f.capacity_kwh[self.index]
        f.below_stop[self.index] = f.e_kwh[self.index] < f.e_stop_kwh[self.index] - 1e-9

    @property
    def location(self) -> str:
        return LOCATION_NAMES[int(self.model.fleet.location[self.index])]

    @property
    def site_id(self) -> str | None:
        s = int(self.model.fleet.site[self.index])
        return self.model.config.sites[s].id if s >= 0 else None

    def step(self) -> None:
        """Physics for this vehicle alone: the same kernel the population step calls."""
        self.model.apply_physics(np.array([self.index]))

    def __repr__(self) -> str:
        return f"Vehicle({self.index}, soc={self.soc:.3f}, {self.location})"


class Driver(mesa.Agent):
    """The person who decides when the vehicle moves; a view of the driver arrays."""

    def __init__(self, model, index: int):
        super().__init__(model)
        self.index = int(index)

    e_min_departure_kwh = _array_property("e_min_departure_kwh", "energy insisted on at departure, kWh")
    e_stop_kwh = _array_property("e_stop_kwh", "energy at which the driver considers the car full, kWh")

    @property
    def archetype(self) -> str:
        return ARCHETYPES[int(self.model.fleet.archetype[self.index])]

    @property
    def vehicle(self) -> Vehicle:
        return self.model.vehicles[self.index]

    def __repr__(self) -> str:
        return f"Driver({self.index}, {self.archetype})"
