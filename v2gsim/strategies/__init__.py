"""Business-model strategies and their registry.

Importing this package registers nothing: the registry (:data:`STRATEGIES`) imports the built-in
strategies the first time it is used, then the installed entry points, the same way a user's
module registers its own (see ``docs/extending.md``).
"""

from v2gsim.strategies.base import (
    STRATEGIES,
    Dispatch,
    FleetView,
    Observation,
    Strategy,
    StrategyConfig,
    StrategyContext,
    register,
    register_strategy,
    strategy_for,
)

__all__ = [
    "STRATEGIES",
    "Dispatch",
    "FleetView",
    "Observation",
    "Strategy",
    "StrategyConfig",
    "StrategyContext",
    "register",
    "register_strategy",
    "strategy_for",
]
