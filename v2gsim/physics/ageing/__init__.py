"""Battery ageing in the running model: stressors, temperature, attribution, price, second life.

:mod:`v2gsim.physics.wear` holds the published fade models (pure, vectorised). This module runs
them inside a simulation (see ``docs/wear.md`` "Integration"), one module each:

* :class:`WearPopulation` (``population``) -- the stressor accumulators and wear state of N battery packs of any
  kind (vehicle packs, swap-station packs, second-life packs). Every step its owner calls
  :meth:`~WearPopulation.sample` (dense, three numpy ops over N) and, for packs that moved energy,
  :meth:`~WearPopulation.record_power`; once per period :meth:`~WearPopulation.close_period`
  advances the fade models over arrays. A second population of packs uses the same code.
* :class:`FleetWear` (``fleet``) -- the engine's wear phase for the vehicle fleet: period timing, battery
  temperature from the ambient profile, capacity feedback into the fleet arrays, the marginal
  wear price written into ``fleet.wear_cost_cny_per_kwh``, retirement and replacement of packs.
* :class:`SwapPackWear` (``packs``) -- the packs of a battery-swap network as a second population of cells:
  the same accumulators and fade update; a pack's ageing follows the pack (rack or vehicle), its
  state of health sets its usable capacity, its marginal wear price goes to the station EMS.
* :class:`~v2gsim.market.second_life.SecondLifeStorage` (:mod:`v2gsim.market.second_life`, with its actor) -- retired packs kept at a site as stationary storage, charging in
  valley and discharging in peak tariff hours, ageing on with their own :class:`WearPopulation`.

Attribution of a vehicle's fade to causes uses a *shadow* wear state: the same vehicle's history
with its V2G throughput removed (every V2G discharge, and the charging that later replaces it,
taken out of the throughput; the state of charge raised by the not-yet-replaced V2G energy). The
shadow is advanced with the same model and the same arithmetic as the real state, so without V2G
both are bit-identical and the V2G share is exactly zero.

``config`` holds the scenario sections (:class:`WearConfig`, :class:`SecondLifeConfig`). The names
are importable from this package; each is imported on first use, so importing one module does
not import the others.
"""

from __future__ import annotations

import importlib

_HOME = {
    "WearConfig": "config", "SecondLifeConfig": "config",
    "WearPopulation": "population", "DRIVE": "population", "CHARGE": "population", "V2G": "population",
    "FleetWear": "fleet", "SwapPackWear": "packs",
    "SecondLifeStorage": "v2gsim.market.second_life", "SecondLifeActor": "v2gsim.market.second_life",
}
__all__ = ["WearConfig", "SecondLifeConfig", "WearPopulation", "FleetWear", "SwapPackWear", "SecondLifeStorage", "SecondLifeActor"]


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(home if "." in home else f"{__name__}.{home}")
    return getattr(module, name)
