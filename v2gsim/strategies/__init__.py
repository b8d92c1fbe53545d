"""Business-model strategies. Importing this package registers the built-in ones."""

from v2gsim.strategies.base import (
    STRATEGIES,
    Dispatch,
    FleetView,
    Observation,
    Strategy,
    StrategyConfig,
    StrategyContext,
    register,
    strategy_for,
)
from v2gsim.strategies import uncontrolled  # noqa: F401  (registers "uncontrolled")
from v2gsim.strategies import distributed  # noqa: F401  (registers "distributed")
from v2gsim.strategies import centralized  # noqa: F401  (registers "centralized")
from v2gsim.strategies import battery_swap  # noqa: F401  (registers "battery_swap")

__all__ = [
    "STRATEGIES",
    "Dispatch",
    "FleetView",
    "Observation",
    "Strategy",
    "StrategyConfig",
    "StrategyContext",
    "register",
    "strategy_for",
]
