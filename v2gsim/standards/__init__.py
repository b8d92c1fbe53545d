"""Charging standards: connectors and bidirectional protocols of vehicles and chargers.

* :mod:`~v2gsim.standards.catalogue` -- the connectors and protocols, with their sources;
* :mod:`~v2gsim.standards.config` -- the scenario fields (``sites[].standards``,
  ``population[].standards``);
* :mod:`~v2gsim.standards.compat` -- compatibility masks over vehicle classes x charger types
  and the draw of the charger a car takes;
* :mod:`~v2gsim.standards.checks` -- validation with YAML paths and fixes;
* :mod:`~v2gsim.standards.actor` -- the V2G capacity plugged (and blocked) every step;
* :mod:`~v2gsim.standards.pair` -- the fragmented / unified standards pair as one table.
"""
