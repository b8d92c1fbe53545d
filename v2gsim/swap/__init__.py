"""Battery-swap stations in parts: the packs (``packs``), the drivers' queues and the swaps
(``queue``), the racks' energy management and physics (``rack``). :class:`v2gsim.agents.swap_station.SwapNetwork`
puts them together as one actor; its module docstring describes the model."""
