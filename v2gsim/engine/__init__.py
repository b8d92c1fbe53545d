"""The engine's contracts: the actor protocol (:mod:`v2gsim.engine.actor`) and the one limiter
(:mod:`v2gsim.engine.limits`). :class:`v2gsim.model.V2GModel` runs the phases."""
