"""Valley fills for the distributed aggregator: a charging invitation to its enrolled drivers.

A visible ``valley_fill`` request addressed to a distributed operator becomes a *charging*
invitation, announced to its enrolled drivers when the request becomes visible: each kWh an
accepting driver charges in the window is rewarded at the request's price (the aggregator passes
on what the grid operator pays it; with clearing, the uniform price of its dispatch). With
``e_kwh`` and a price cap above the price it sizes the reward as for a discharge call: the lowest
reward, in 0.25 CNY/kWh steps up to the cap, at which the answer probabilities times each
driver's room in the window add up to ``e_kwh``.

The answer (the simpler rule this module documents, an assumption [C]): the calibrated logit of
the discharge invitations (:meth:`Distributed.answer_probability`, intercept from the Shenzhen
anchor of 15 May 2024 [A]) with

* the reward per kWh charged in place of the reward per kWh fed back;
* the room below the driver's target (the state of charge it could add, a fraction of capacity)
  in place of the margin above the V2G reserve (no room: ``p = 0``), measured against the same
  reference margin;
* no range-anxiety or wear-fear term: charging sooner neither empties the battery nor adds
  throughput, the two barriers those traits stand for (Geske & Schumann 2018, Energy Policy,
  name range anxiety and battery wear as the barriers to V2G, not to charging).

We found no published participation share for an EV charging (valley-filling) invitation in
China to calibrate on; so small rewards answer as small discharge rewards do, which likely
understates the answer to a charging invitation (it costs the driver nothing). One uniform draw
per driver and invitation from the aggregator's own stream, spawn key ``(2, j)`` (the discharge
invitations use ``(1, j)``), so the answers never move the discharge answers and a higher reward
never turns a yes into a no.

Those who accept and stay past the window (by their stated departure) hold their charging from
the announcement (at most a day ahead) to the window's start and charge at full power in the window, up to their full
point or ``valley_top_up_soc`` of their capacity if higher. :class:`ValleyRewards` books the reward
(operator → drivers, ledger reason ``valley_reward``) for every kWh (grid side) an accepting driver
draws in the window; the driver's own baseline is taken as zero (a limit: a driver who would have
charged in the window anyway is paid for it too). The operator itself is settled by the grid
operator against its baseline (v2gsim.market.settlement).
"""

from __future__ import annotations

import numpy as np

from v2gsim.engine.actor import Actor
from v2gsim.market.settlement import DRIVERS

#: spawn-key branch of the valley-fill answers in the aggregator's random stream
VALLEY_STREAM = 2


def valley_target_kwh(f, idx: np.ndarray, top_up_soc: float | None) -> np.ndarray:
    """Energy each driver ``idx`` (k,) charges up to in a valley-fill window: the full point, or
    ``top_up_soc`` of the capacity if higher. Shape (k,), kWh."""
    e = f.e_stop_kwh[idx]
    if top_up_soc is None:
        return e
    return np.minimum(np.maximum(e, top_up_soc * f.capacity_kwh[idx]), f.capacity_kwh[idx])


def valley_answer_probability(b0: float, d, reward_cny_per_kwh: float, room_soc: np.ndarray) -> np.ndarray:
    """Probability an enrolled driver accepts a charging invitation at ``reward_cny_per_kwh`` with
    ``room_soc`` (k,) below its target (module docstring), shape (k,)."""
    u = b0 + d.reward_slope_per_cny * reward_cny_per_kwh + d.soc_margin_slope * (room_soc - d.soc_margin_ref)
    return np.where(room_soc > 0, 1.0 / (1.0 + np.exp(-u)), 0.0)


def valley_room_kwh(f, idx: np.ndarray, top_up_soc: float | None, hours: float) -> np.ndarray:
    """Grid-side energy each driver ``idx`` (k,) could add in a window of ``hours``: its room below
    the target through the charging losses, at most its plug power over the window. Shape (k,)."""
    room = np.maximum(0.0, valley_target_kwh(f, idx, top_up_soc) - f.e_kwh[idx]) / f.eta_charge[idx]
    return np.minimum(room, f.p_plug_max_kw[idx] * hours)


class ValleyRewards(Actor):
    """The distributed aggregator's payments to its drivers for charging in its valley-fill windows.

    Each recorded step inside a window it pays ``reward × kWh`` (grid side, what the physics
    applied) to every accepting driver that drew energy, and keeps the totals per vehicle
    (``valley_reward_cny``, a column of ``Results.vehicles`` once a valley fill was announced).
    Vectorised over the vehicles that drew power this step."""

    def __init__(self, strategy, engine):
        self.strategy = strategy
        self.power = engine.power
        self.dt_h = engine.dt_h
        self.payer = strategy.context.operator_id or strategy.config.kind
        self.total_cny = np.zeros(engine.fleet.e_kwh.size)
        self.kwh = 0.0

    def begin_recording(self, step: int) -> None:
        self.total_cny[:] = 0.0
        self.kwh = 0.0

    def settle(self, sig, ledger) -> None:
        st = self.strategy
        if not st.vf_events or sig.step >= st.vf_at.size:
            return
        k = int(st.vf_at[sig.step])
        if k < 0:
            return
        ev = st.vf_events[k]
        if ev["yes"] is None:
            return
        idx, p = self.power.idx, self.power.p_kw
        paid = ev["yes"][idx] & (p > 0)
        if not paid.any():
            return
        v, e_kwh = idx[paid], p[paid] * self.dt_h
        amount = e_kwh * ev["reward"]
        ev["energy_kwh"] += float(e_kwh.sum())
        ev["paid_cny"] += float(amount.sum())
        if sig.row < 0:
            return
        self.total_cny[v] += amount
        self.kwh += float(e_kwh.sum())
        ledger.post(sig.row, self.payer, DRIVERS, "valley_reward", float(e_kwh.sum()), float(amount.sum()))

    def vehicle_columns(self) -> dict[str, np.ndarray]:
        """``valley_reward_cny`` per vehicle once the aggregator announced a valley fill (else none,
        so runs without one keep their tables)."""
        if not any(ev["yes"] is not None for ev in self.strategy.vf_events):
            return {}
        return {"valley_reward_cny": self.total_cny.copy()}
