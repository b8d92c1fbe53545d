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
company pays for energy fed back during its discharge request), ``swap_fee`` (a driver pays the
swap operator for a swap: the service fee and the energy gained, kWh = energy gained),
``demand_charge`` and ``capacity_charge`` (the two-part tariff's charges, paid to the grid
company at the last recorded step of each billing month: :class:`TwoPartBilling`),
``request_payment`` (the grid company pays for energy delivered against the baseline in a
request's window), ``request_penalty`` (an operator pays for delivering less than the share of a request it must),
``capacity_payment`` (the grid company pays for regulation capacity held, times its availability),
``mileage_payment`` (the grid company pays the regulation mileage); the last four are
booked by the grid operator (:mod:`v2gsim.market.events`).

Contract reasons (:mod:`v2gsim.market.contracts`): ``contract_share`` (drivers give back the
operator's share of their V2G payment), ``wear_compensation`` (an operator pays drivers per kWh
fed back), ``min_guarantee`` (an operator tops drivers' monthly V2G income up to the guarantee),
``battery_lease`` (drivers pay a swap operator for leased packs).

``valley_reward``: a distributed operator pays its drivers per kWh they charge in a valley-fill
window they accepted (:mod:`v2gsim.strategies.distributed_valley`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GRID_COMPANY = "grid_company"
DRIVERS = "drivers"
SECOND_LIFE = "second_life"
REASONS = ("charging", "v2g", "energy_purchase", "energy_sale", "request_reward", "swap_fee", "demand_charge", "capacity_charge",
           "request_payment", "request_penalty", "capacity_payment")
CONTRACT_REASONS = ("contract_share", "wear_compensation", "min_guarantee", "battery_lease")
# mileage_payment: the grid company pays regulation mileage (v2gsim.market.regulation); after the
# others, so the codes of the earlier reasons do not change
REASONS = REASONS + CONTRACT_REASONS + ("mileage_payment",)
# valley_reward: a distributed aggregator pays its drivers per kWh charged in a valley-fill window
# (v2gsim.strategies.distributed_valley); last, for the same reason
REASONS = REASONS + ("valley_reward",)
# idle_fee: a driver whose full car stays plugged at a public charger past the grace period pays its
# operator per minute (v2gsim.population.idle); last, for the same reason
REASONS = REASONS + ("idle_fee",)
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


class TwoPartBilling:
    """The two-part tariff's charges as ledger entries, posted at the last recorded step of each
    billing month (the run's last step for a month it leaves): the demand charge on the month's
    highest ``window_min`` mean (per site, ``meter="sites"``, or of the feeder's net load,
    ``"feeder"``) and the capacity charge on ``capacity_kva``, a partly simulated month pro rata --
    the rules and figures of :mod:`v2gsim.market.bills`, computed step by step.

    Who pays: a site's demand charge, the operator that owns the site (``site_payers``; the
    drivers where no business model owns it). The feeder-wide charges (demand metered on the
    feeder, capacity) are split among ``shared_payers`` by ``shared_weights`` (the model passes
    each operator's installed charger power: our choice, documented in docs/tariffs.md).

    Args:
        times: local time stamps of the recorded steps.
        step_min: step length, min.
        demand_rate: CNY per kW per month, or None.
        window_min: the meter's demand period, min.
        meter: ``"sites"`` or ``"feeder"``.
        capacity_rate: CNY per kVA per month, or None.
        capacity_kva: the contracted capacity, kVA.
        site_payers: payer of each site's demand charge (one per site).
        shared_payers, shared_weights: payers of the feeder-wide charges and their weights (>= 0).
    """

    def __init__(self, times: pd.DatetimeIndex, step_min: float, *, demand_rate: float | None, window_min: int,
                 meter: str, capacity_rate: float | None, capacity_kva: float, site_payers: list[str],
                 shared_payers: list[str], shared_weights: np.ndarray):
        n = len(times)
        self.demand_rate, self.capacity_rate, self.capacity_kva = demand_rate, capacity_rate, float(capacity_kva)
        self.meter = meter
        self.site_payers = list(site_payers)
        w = np.asarray(shared_weights, float)
        self.shared_payers = list(shared_payers) if w.sum() > 0 else [DRIVERS]
        self.shared_shares = w / w.sum() if w.sum() > 0 else np.ones(1)
        month = np.asarray(times.year * 12 + times.month, np.int64)
        self._last = np.r_[month[1:] != month[:-1], True] if n else np.zeros(0, bool)
        steps = pd.Series(1.0, index=month).groupby(level=0).sum()
        days_in = pd.Series(np.asarray(times.days_in_month, float), index=month).groupby(level=0).first()
        share = (steps * step_min / 1440.0 / days_in).to_dict()
        self._share = np.array([share[m] for m in month]) if n else np.zeros(0)
        # demand windows: several steps make one window when steps are shorter than it
        if step_min < window_min:
            self._win = np.asarray(times.asi8 // (int(window_min) * 60 * 10**9), np.int64)
        else:
            self._win = np.arange(n, dtype=np.int64)
        self._win_end = np.r_[self._win[1:] != self._win[:-1], True] | self._last if n else np.zeros(0, bool)
        k = len(self.site_payers) if meter == "sites" else 1
        self._sum = np.zeros(k)
        self._count = 0
        self._peak_kw = np.zeros(k)

    def settle(self, row: int, site_p_kw: np.ndarray, net_kw: float, ledger: Ledger) -> None:
        """Recorded step ``row``: this step's power per site (kW) and the feeder's net load (kW)."""
        if row < 0 or row >= self._share.size:
            return
        p = np.asarray(site_p_kw, float) if self.meter == "sites" else np.array([net_kw], float)
        self._sum += np.maximum(p, 0.0)  # export is demand 0 (bills.monthly_demand_kw)
        self._count += 1
        if self._win_end[row]:
            np.maximum(self._peak_kw, self._sum / self._count, out=self._peak_kw)
            self._sum[:] = 0.0
            self._count = 0
        if not self._last[row]:
            return
        share = float(self._share[row])
        if self.demand_rate is not None:
            amount = self.demand_rate * self._peak_kw * share
            if self.meter == "sites":
                for payer, a in zip(self.site_payers, amount):
                    ledger.post(row, payer, GRID_COMPANY, "demand_charge", 0.0, float(a))
            else:
                for payer, w in zip(self.shared_payers, self.shared_shares):
                    ledger.post(row, payer, GRID_COMPANY, "demand_charge", 0.0, float(amount[0] * w))
        if self.capacity_rate is not None:
            total = self.capacity_rate * self.capacity_kva * share
            for payer, w in zip(self.shared_payers, self.shared_shares):
                ledger.post(row, payer, GRID_COMPANY, "capacity_charge", 0.0, float(total * w))
        self._peak_kw[:] = 0.0  # a new billing month
