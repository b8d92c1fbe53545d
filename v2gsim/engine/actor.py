"""The actor protocol: everything that acts in a step has one method per phase it takes part in.

:meth:`v2gsim.model.V2GModel.step` runs six phases in a fixed order and, inside each, calls the
model's actors in the order of ``model.actors`` (documented there):

1. **signals** -- :meth:`Actor.signals` sees the step's :class:`Signals` (prices, the feeder's
   headroom after the last step; the grid operator, first, publishes the requests whose notice
   has passed);
2. **mobility** -- :meth:`Actor.before_trip` (drivers short of charge for their trip; an actor
   may take some in, e.g. a swap queue), :meth:`Actor.depart` (vehicles leaving), :meth:`Actor.arrive` (vehicles
   arriving; an actor may hold some, e.g. a swap queue) and :meth:`Actor.release` (held vehicles
   that go on to their destination this step);
3. **decide** -- :meth:`Actor.decide`: requests for the step (strategies, station EMS);
4. **physics** -- :meth:`Actor.physics`: requests clipped and applied to batteries;
5. **grid** -- :meth:`Actor.grid`: each actor adds its injections to :class:`GridInjections`; the
   feeder (last) solves;
6. **settle and record** -- :meth:`Actor.settle` writes the step's money to the ledger,
   :meth:`Actor.record` the step's values into preallocated arrays.

:meth:`Actor.begin_recording` runs at the first recorded step (the end of the warm-up) and
:meth:`Actor.finish` once at the end of the run. Every method is a no-op by default, so an actor
overrides only the phases it takes part in; the model calls only those (it looks the overrides up
once, at build time). Actors see the model only through :class:`EngineView`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import mesa
    import pandas as pd

PHASES = ("begin_recording", "signals", "before_trip", "depart", "arrive", "release", "decide", "physics", "grid", "settle", "record", "finish")


@dataclass(slots=True)
class Signals:
    """What every actor knows at the start of a step (read-only by convention: one is built every
    step, so it is a plain slotted record rather than a frozen one).

    Attributes:
        step: position on the clock (warm-up included).
        row: row of the recording (``step - n_warmup``); negative during the warm-up.
        time: local wall-clock time of the step start.
        dt_h: step length, h.
        price_cny_per_kwh: the tariff's energy price this step.
        v2g_price_cny_per_kwh: the tariff's price for energy fed back this step.
        feeder_headroom_kw: extra load the feeder could take after the last step (inf if unknown).
        requests: the grid requests visible this step (:class:`v2gsim.market.events.IssuedRequest`,
            published by the :class:`~v2gsim.agents.grid_operator.GridOperator` in this phase; empty
            without one).
    """

    step: int
    row: int
    time: Any
    dt_h: float
    price_cny_per_kwh: float
    v2g_price_cny_per_kwh: float
    feeder_headroom_kw: float
    requests: tuple = ()


@dataclass
class Arrivals:
    """Vehicles arriving this step (every array shape (k,)).

    Attributes:
        v: vehicle indices.
        e_kwh: stored energy after the trip.
        loc: location code they arrive at (``population.fleet`` HOME, WORK, ...).
        site: site index there, -1 without a charger.
        p_max_kw: power cap of a replayed session (inf otherwise).
        est_step: the driver's stated departure step.
        replay: replayed sessions (they go where the data says).
        next_trip_kwh: energy of the vehicle's next trip (0 unknown).
    """

    v: np.ndarray
    e_kwh: np.ndarray
    loc: np.ndarray
    site: np.ndarray
    p_max_kw: np.ndarray
    est_step: np.ndarray
    replay: np.ndarray
    next_trip_kwh: np.ndarray


@dataclass(frozen=True)
class Released:
    """Held vehicles going on to their destination this step (shape (k,) each)."""

    v: np.ndarray
    loc: np.ndarray
    site: np.ndarray
    p_max_kw: np.ndarray
    est_step: np.ndarray


@dataclass
class VehiclePower:
    """The fleet's physics of the current step, written by the engine in the physics phase:
    vehicles ``idx`` (k,) drew grid-side ``p_kw`` (k,) (> 0 charging). Actors read it."""

    idx: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    p_kw: np.ndarray = field(default_factory=lambda: np.empty(0))


@dataclass(frozen=True)
class SiteTable:
    """Charging sites as arrays, shape (S,) each (S sites of the scenario, or of one business model).

    Attributes:
        ids: site ids.
        index: position of each site in the scenario's ``sites``.
        kind: home, work, public or depot.
        p_max_kw: power of one charger.
        p_limit_kw: the site's grid connection, on its net power (inf: no limit).
        ports: chargers (home sites without a count: one private pile per owner).
        private: home piles that belong to one driver each (always free for their owner).
        bidirectional_share: share of a shared site's chargers that can discharge.
        is_dc: DC chargers.
        bus: feeder bus per site (an index, ``"auto"`` or None).
    """

    ids: tuple[str, ...]
    index: np.ndarray
    kind: tuple[str, ...]
    p_max_kw: np.ndarray
    p_limit_kw: np.ndarray
    ports: np.ndarray
    private: np.ndarray
    bidirectional_share: np.ndarray
    is_dc: np.ndarray
    bus: tuple

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, ids, **columns) -> SiteTable:
        """A table of sites ``ids`` at scenario positions 0, 1, ...; columns not given take their
        neutral value (no limit, no chargers, public AC sites, bus auto)."""
        n = len(ids)
        col = lambda name, default, dtype: _ro(np.asarray(columns.get(name, np.full(n, default)), dtype=dtype).copy())  # noqa: E731
        return cls(tuple(ids), col("index", 0, np.int64) if "index" in columns else _ro(np.arange(n)),
                   tuple(columns.get("kind", ("public",) * n)), col("p_max_kw", 0.0, float), col("p_limit_kw", np.inf, float),
                   col("ports", 0, np.int64), col("private", False, bool), col("bidirectional_share", 0.0, float),
                   col("is_dc", False, bool), tuple(columns.get("bus", ("auto",) * n)))

    @property
    def is_home(self) -> np.ndarray:
        return np.array([k == "home" for k in self.kind], dtype=bool)

    def subset(self, positions) -> SiteTable:
        """The sites at ``positions`` (indices into this table), as a table of their own."""
        p = np.asarray(positions, dtype=np.int64)
        pick = lambda a: _ro(np.asarray(a)[p].copy())  # noqa: E731
        return SiteTable(tuple(self.ids[i] for i in p), pick(self.index), tuple(self.kind[i] for i in p), pick(self.p_max_kw),
                         pick(self.p_limit_kw), pick(self.ports), pick(self.private), pick(self.bidirectional_share), pick(self.is_dc),
                         tuple(self.bus[i] for i in p))


@dataclass(frozen=True)
class EngineView:
    """What an actor may know of the engine (built once; arrays are shared state).

    Attributes:
        mesa_model: the Mesa model, only to register an actor's own Mesa agents.
        fleet: the fleet's struct of arrays (actors that move vehicles write to it).
        blocks: the fleet's population blocks (group, vehicle spec, slice).
        clock: local step start times, warm-up included (n_clock,).
        dt_h: step length, h.
        n_warmup: steps before the recording starts.
        n_steps: recorded steps.
        seed: the run's seed (actors spawn their own streams from it).
        price_cny_per_kwh, v2g_price_cny_per_kwh: the tariff on the clock (n_clock,).
        sites: every site of the scenario.
        power: the fleet's physics of the current step.
        wear: the fleet's battery ageing (:class:`v2gsim.physics.ageing.FleetWear`), or None.
    """

    mesa_model: mesa.Model
    fleet: Any
    blocks: tuple
    clock: pd.DatetimeIndex
    dt_h: float
    n_warmup: int
    n_steps: int
    seed: int
    price_cny_per_kwh: np.ndarray
    v2g_price_cny_per_kwh: np.ndarray
    sites: SiteTable
    power: VehiclePower
    wear: Any = None


class GridInjections:
    """The step's power on the feeder, gathered in the grid phase (kW, > 0 drawn from the grid).

    Attributes:
        net_kw: net active power on the feeder (base load and every injection so far; a network
            feeder takes its PV off before it solves).
        per_load_kw: power per EV load element of a network feeder (n_ev,); None on a
            transformer-only feeder.
        network: the :class:`~v2gsim.agents.feeder.NetworkFeeder`, or None.
    """

    def __init__(self, net_kw: float, network=None, per_load_kw: np.ndarray | None = None):
        self.net_kw = net_kw
        self.network = network
        self.per_load_kw = per_load_kw

    def add(self, p_kw: float, at_loads: Callable[[Any], np.ndarray] | None = None) -> None:
        """Add ``p_kw`` in total; on a network, ``at_loads(network)`` gives it per EV load element."""
        self.net_kw += p_kw
        if self.per_load_kw is not None and at_loads is not None:
            self.per_load_kw = self.per_load_kw + at_loads(self.network)


class Actor:
    """Base of everything that acts in a step. Every phase method is a no-op here.

    Attributes:
        connections: feeder bus of each grid connection the actor has of its own (an int bus
            index or ``"auto"``), in order; a network feeder places them at build time and
            :meth:`~v2gsim.agents.feeder.NetworkFeeder.connection_bus_kw` maps their power.
        operator_id: the business model its connections belong to (None: none).
    """

    connections: tuple = ()
    #: the business model whose load this actor's own grid connections are (the grid operator
    #: meters them as that operator's: :meth:`metered_kw`); None: no operator's
    operator_id: str | None = None

    def metered_kw(self) -> float:
        """This step's net power of the actor's own grid connections (kW, > 0 drawn), read after
        the physics phase by the grid operator's meter. Default: 0."""
        return 0.0

    def begin_recording(self, step: int) -> None:
        """The recorded run starts at ``step`` (end of the warm-up; step 0 without one): zero
        the accumulators, keep the state."""

    def signals(self, sig: Signals) -> None:
        """Phase 1: the step's prices and grid signals."""

    def before_trip(self, step: int, v: np.ndarray, e_kwh: np.ndarray, need_kwh: np.ndarray) -> np.ndarray | None:
        """Phase 2: drivers ``v`` about to start a trip that needs ``need_kwh`` (reserve included)
        hold only ``e_kwh``; return a mask (k,) of those this actor takes in (None: none). It
        hands them back through :meth:`release` with ``loc`` DRIVING: they go on with the trip."""
        return None

    def depart(self, step: int, v: np.ndarray) -> None:
        """Phase 2: vehicles ``v`` leave where they are."""

    def arrive(self, step: int, arrivals: Arrivals) -> np.ndarray | None:
        """Phase 2: vehicles arrive; return a mask (k,) of those this actor holds (None: none)."""
        return None

    def release(self, step: int) -> Released | None:
        """Phase 2, after the arrivals: held vehicles that go on to their destination now."""
        return None

    def decide(self, sig: Signals) -> None:
        """Phase 3: decide the step's requests (never mutate the observation)."""

    def physics(self, sig: Signals) -> None:
        """Phase 4: clip the requests to the limits and apply them."""

    def grid(self, sig: Signals, injections: GridInjections) -> None:
        """Phase 5: add this actor's grid power to ``injections`` (the feeder, last, solves)."""

    def settle(self, sig: Signals, ledger) -> None:
        """Phase 6: write the step's money transfers to ``ledger``."""

    def record(self, sig: Signals) -> None:
        """Phase 6: record the step into preallocated arrays."""

    def finish(self, step_end: int) -> None:
        """Once, at the end of the run (``step_end`` steps done): close what is still open."""

    # ------------------------------------------------------------------ what it records
    def declare(self, recorder) -> None:
        """Called once when the model is built: declare the system columns this actor records
        (:meth:`v2gsim.recorder.Recorder.declare_system`) and keep the arrays it writes into."""

    def tables(self, times: pd.DatetimeIndex, clock: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
        """After the finish phase: tables of its own (name -> DataFrame) for ``Results.extra``."""
        return {}

    def kpis(self) -> dict[str, float]:
        """After the finish phase: counters the tables cannot show (name -> number)."""
        return {}


def takes_part(actor: Actor, phase: str) -> bool:
    """Whether ``actor`` overrides ``phase`` (the model calls only those)."""
    return getattr(type(actor), phase) is not getattr(Actor, phase)


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a
