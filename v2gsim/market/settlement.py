"""The ledger: every money transfer of a run, written in the settle phase only.

An entry moves ``amount_cny`` from ``payer`` to ``payee`` for ``energy_kwh`` at one recorded step,
for a ``reason``. Entries are double: what the payer pays, the payee receives, so over all actors
the nets add up to zero at every step.

Storage stays bounded whatever the fleet size: entries are aggregated per step and per *flow*
(payer, payee, reason), each flow one preallocated pair of arrays over the recorded steps; a
city-year with a handful of flows is a few MB. Per-vehicle money stays where it was, in the
``cost_cny`` / ``revenue_cny`` columns of ``Results.vehicles``; the drivers' entries are their sum
per step.

Actors (``payer`` / ``payee``):

* ``grid_company`` -- sells energy at the tariff and buys energy fed back at the V2G price;
* each business model's operator, by its id (``uncontrolled``, ``battery_swap``, ...; ``<kind><k>``
  where one kind appears twice, like the KPI prefixes);
* ``drivers`` -- every driver, aggregated;
* ``second_life`` -- the owner of the retired packs kept as stationary storage.

Reasons: ``charging`` (a driver pays for energy drawn at a charger), ``v2g`` (a driver is paid
for energy fed back), ``energy_purchase`` (an operator or pack owner buys energy from the grid
company), ``energy_sale`` (the grid company buys energy fed back), ``request_reward`` (the grid
company pays for energy fed back during its discharge request), ``request_payment`` (the grid
company pays for energy delivered against the baseline in a request's window),
``request_penalty`` (an operator pays for delivering less than the share of a request it must),
``capacity_payment`` (the grid company pays for regulation capacity held); the last three are
booked by the grid operator (:mod:`v2gsim.market.events`).

Contract reasons (:mod:`v2gsim.market.contracts`): ``contract_share`` (drivers give back the
operator's share of their V2G payment), ``wear_compensation`` (an operator pays drivers per kWh
fed back), ``min_guarantee`` (an operator tops drivers' monthly V2G income up to the guarantee),
``battery_lease`` (drivers pay a swap operator for leased packs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GRID_COMPANY = "grid_company"
DRIVERS = "drivers"
SECOND_LIFE = "second_life"
REASONS = ("charging", "v2g", "energy_purchase", "energy_sale", "request_reward", "request_payment", "request_penalty", "capacity_payment")
CONTRACT_REASONS = ("contract_share", "wear_compensation", "min_guarantee", "battery_lease")
REASONS = REASONS + CONTRACT_REASONS
COLUMNS = ("step", "time", "payer", "payee", "reason", "energy_kwh", "amount_cny")


class Ledger:
    """Money transfers per recorded step and flow.

    Args:
        n_steps: recorded steps (entries at warm-up steps are not kept, like every accumulator).
    """

    def __init__(self, n_steps: int):
        self.n_steps = int(n_steps)
        self.flows: list[tuple[str, str, str]] = []
        self._index: dict[tuple[str, str, str], int] = {}
        self._amount: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []

    def flow(self, payer: str, payee: str, reason: str) -> int:
        """The index of flow (payer, payee, reason), created on first use."""
        key = (payer, payee, reason)
        k = self._index.get(key)
        if k is None:
            if reason not in REASONS:
                raise ValueError(f"unknown ledger reason {reason!r}; known: {', '.join(REASONS)}")
            if payer == payee:
                raise ValueError(f"a ledger entry moves money between two actors; got {payer!r} paying itself")
            k = self._index[key] = len(self.flows)
            self.flows.append(key)
            self._amount.append(np.zeros(self.n_steps))
            self._energy.append(np.zeros(self.n_steps))
        return k

    def post(self, row: int, payer: str, payee: str, reason: str, energy_kwh: float, amount_cny: float) -> None:
        """Book ``amount_cny`` from ``payer`` to ``payee`` for ``energy_kwh`` at recorded step ``row``
        (a negative row, in the warm-up, is not kept). Amounts add up within a step."""
        if row < 0 or (amount_cny == 0.0 and energy_kwh == 0.0):
            return
        k = self._index.get((payer, payee, reason))
        if k is None:
            k = self.flow(payer, payee, reason)
        self._amount[k][row] += amount_cny
        self._energy[k][row] += energy_kwh

    # ------------------------------------------------------------------ reading
    def table(self, times: pd.DatetimeIndex | None = None) -> pd.DataFrame:
        """Long table, one row per step and flow with money or energy: ``step`` (recorded step),
        ``time``, ``payer``, ``payee``, ``reason``, ``energy_kwh``, ``amount_cny``."""
        parts = []
        for k, (payer, payee, reason) in enumerate(self.flows):
            a, e = self._amount[k], self._energy[k]
            rows = np.flatnonzero((a != 0.0) | (e != 0.0))
            parts.append((rows, np.full(rows.size, k), e[rows], a[rows]))
        if parts:
            rows, flow, energy, amount = (np.concatenate(x) for x in zip(*parts))
            order = np.lexsort((flow, rows))
            rows, flow, energy, amount = rows[order], flow[order], energy[order], amount[order]
        else:
            rows, flow, energy, amount = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0)
        names = sorted({x for f in self.flows for x in f[:2]})
        code = {n: i for i, n in enumerate(names)}
        payer = np.array([code[f[0]] for f in self.flows], np.int64)[flow] if self.flows else np.empty(0, np.int64)
        payee = np.array([code[f[1]] for f in self.flows], np.int64)[flow] if self.flows else np.empty(0, np.int64)
        reason = np.array([REASONS.index(f[2]) for f in self.flows], np.int64)[flow] if self.flows else np.empty(0, np.int64)
        time = pd.DatetimeIndex(np.asarray(times.values)[rows]) if times is not None else pd.DatetimeIndex(np.full(rows.size, np.datetime64("NaT", "ns")))
        return pd.DataFrame({
            "step": rows.astype(np.int64),
            "time": time,
            "payer": pd.Categorical.from_codes(payer, categories=names),
            "payee": pd.Categorical.from_codes(payee, categories=names),
            "reason": pd.Categorical.from_codes(reason, categories=list(REASONS)),
            "energy_kwh": energy,
            "amount_cny": amount,
        })

    def net_by_step(self) -> pd.DataFrame:
        """Each actor's net money per recorded step (received − paid), CNY; shape (n_steps, actors)."""
        names = sorted({x for f in self.flows for x in f[:2]})
        out = pd.DataFrame(0.0, index=pd.RangeIndex(self.n_steps, name="step"), columns=names)
        for k, (payer, payee, _) in enumerate(self.flows):
            out[payer] -= self._amount[k]
            out[payee] += self._amount[k]
        return out

    def totals(self, actor: str) -> dict[str, float]:
        """What ``actor`` paid and received over the run (CNY) and the energy on each side (kWh)."""
        paid = sum(float(self._amount[k].sum()) for k, f in enumerate(self.flows) if f[0] == actor)
        got = sum(float(self._amount[k].sum()) for k, f in enumerate(self.flows) if f[1] == actor)
        return {"paid_cny": paid, "received_cny": got, "net_cny": got - paid}


def empty_table() -> pd.DataFrame:
    """A ledger table without entries (results saved before the ledger existed)."""
    return Ledger(0).table()
