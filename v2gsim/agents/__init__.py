"""Mesa agents. Drivers and vehicles are thin views over the fleet arrays; aggregators and the
feeder are ordinary agents with their own ``step``."""

from v2gsim.agents.aggregator import Aggregator
from v2gsim.agents.feeder import Feeder, NetworkFeeder
from v2gsim.agents.vehicle import Driver, Vehicle

__all__ = ["Aggregator", "Driver", "Feeder", "NetworkFeeder", "Vehicle"]
