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
