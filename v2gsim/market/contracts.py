"""Contracts between operators and drivers, settled in the ledger.

Two kinds, both scenario configuration (section ``contracts``):

* **Aggregator–driver contracts** (``contracts.drivers``), one per business model (its operator
  id) and optionally per population group. Each covered driver who feeds energy back at the
  operator's sites:

  - keeps the share ``v2g_revenue_share`` of the V2G payment for it (the price the business
    model pays per kWh fed back: the tariff's V2G price, or an invitation's reward); the rest
    goes back to the operator as its fee (ledger reason ``contract_share``, drivers → operator);
  - is paid ``wear_compensation_cny_per_kwh`` per kWh fed back (grid side, as metered): a fixed
    figure, or ``from_wear_model``, the wear model's marginal price of a kWh discharged and
    recharged, for the V2G cycle each vehicle runs (:func:`v2g_wear_cny_per_kwh`) at that step (reason
    ``wear_compensation``, operator → drivers);
  - is guaranteed ``min_guarantee_cny_per_month`` of V2G income (kept share plus compensation)
    per calendar month while enrolled (the business model's enrolment, see
    :meth:`v2gsim.strategies.base.Strategy.enrolled`) and plugged in at the operator's sites for
    at least ``min_guarantee_plugged_h_per_month`` hours of the month (default 0: one step is
    enough); the operator tops up the difference at the month's last recorded step (reason
    ``min_guarantee``). A month the run covers in part is pro-rated by its recorded days, the
    hours required too.

* **Battery-as-a-service leases** (``contracts.leases``) between a battery_swap operator and the
  drivers of swappable vehicles: ``fee_cny_per_month`` (or a preset from
  ``presets/leases.yaml``, NIO BaaS figures with sources) per subscribed vehicle, paid at each
  month's last recorded step, pro-rated like the guarantee (reason ``battery_lease``).

Everything is vectorised over vehicles: the per-step clauses are a few array operations over
the vehicles that moved energy this step; the monthly ones over the covered vehicles once a
month. Per-vehicle totals become columns of ``Results.vehicles`` (:data:`VEHICLE_COLUMNS`);
``revenue_cny`` there stays the gross V2G payment, so a driver's net is
``revenue_cny − contract_share_cny + wear_compensation_cny + min_guarantee_cny − cost_cny −
battery_lease_cny``. Every entry has a payer and a payee, so the ledger still nets zero per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, model_validator

from v2gsim.engine.actor import Actor, Signals
from v2gsim.errors import Problem
from v2gsim.fields import ConfigModel
from v2gsim.market.settlement import CONTRACT_REASONS, DRIVERS

FROM_WEAR_MODEL = "from_wear_model"
__all__ = ["CONTRACT_REASONS", "BatteryLease", "ContractBook", "ContractsConfig", "DriverContract", "DriverTerms",
           "contract_problems", "driver_terms", "lease_presets", "month_settlement_rows", "v2g_wear_cny_per_kwh", "wear_price_cny_per_kwh_discharged"]
#: per-vehicle totals over the recorded run (CNY), columns of ``Results.vehicles`` when the
#: scenario has contracts
VEHICLE_COLUMNS = ("contract_share_cny", "wear_compensation_cny", "min_guarantee_cny", "battery_lease_cny")


# ---------------------------------------------------------------------------------- config

class DriverContract(ConfigModel):
    """An aggregator–driver contract: what the operator passes on to the drivers it covers."""

    operator: Annotated[str, Field(min_length=1, description="the business model's operator id: its kind, or <kind><k> where a kind "
                                   "appears twice (k = its position in business_models)")]
    groups: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, description="population groups (positions in population) the contract covers; default every driver")
    v2g_revenue_share: Annotated[float, Field(ge=0, le=1, description="share of the V2G payment (per kWh fed back) the driver keeps; "
                                              "the operator keeps the rest as its fee")] = 1.0
    wear_compensation_cny_per_kwh: Annotated[float, Field(ge=0, le=10)] | Literal["from_wear_model"] = Field(
        default=0.0, description="paid per kWh fed back (grid side): CNY/kWh, or from_wear_model (the wear model's marginal "
        "price of a kWh discharged and recharged; needs wear.model and wear.price_dispatch)")
    min_guarantee_cny_per_month: Annotated[float, Field(ge=0, le=100_000, description="V2G income guaranteed per calendar month to "
                                                        "each enrolled driver plugged in at the operator's sites that month")] = 0.0
    min_guarantee_plugged_h_per_month: Annotated[float, Field(ge=0, le=744, description="hours plugged in at the operator's "
                                                              "sites a month needs for the guarantee (pro-rated in a part "
                                                              "month); 0: plugged in once is enough")] = 0.0


@cache
def lease_presets() -> dict[str, dict[str, Any]]:
    """The bundled BaaS lease presets (``presets/leases.yaml``), by name."""
    text = resources.files("v2gsim.market").joinpath("presets/leases.yaml").read_text("utf-8")
    return yaml.safe_load(text) or {}


class BatteryLease(ConfigModel):
    """A battery-as-a-service lease: drivers of swappable vehicles pay the swap operator a fee per
    vehicle and month."""

    operator: Annotated[str, Field(min_length=1, description="the battery_swap business model's operator id")]
    groups: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, description="population groups subscribed (swappable vehicles only); default every swappable vehicle")
    preset: str | None = Field(default=None, description="a bundled lease (presets/leases.yaml): nio_baas_70_2020, "
                               "nio_baas_standard_2025, nio_baas_long_range_2025")
    fee_cny_per_month: Annotated[float, Field(ge=0, le=100_000, description="fee per subscribed vehicle and month (with a preset: "
                                              "replaces the preset's fee plus extra fee)")] | None = None

    @model_validator(mode="after")
    def _fee(self):
        if self.preset is None and self.fee_cny_per_month is None:
            raise ValueError("give fee_cny_per_month or a preset (e.g. preset: nio_baas_standard_2025)")
        if self.preset is not None and self.preset not in lease_presets():
            raise ValueError(f"unknown lease preset {self.preset!r}; known: {', '.join(lease_presets())}")
        return self

    @property
    def monthly_fee_cny(self) -> float:
        """The fee per vehicle and month: the given one, else the preset's fee plus its extra fee."""
        if self.fee_cny_per_month is not None:
            return float(self.fee_cny_per_month)
        p = lease_presets()[self.preset]
        return float(p["fee_cny_per_month"]) + float(p.get("extra_fee_cny_per_month", 0.0))


class ContractsConfig(ConfigModel):
    """Contracts between operators and drivers (see :mod:`v2gsim.market.contracts`)."""

    drivers: list[DriverContract] = Field(default_factory=list, description="aggregator-driver contracts")
    leases: list[BatteryLease] = Field(default_factory=list, description="battery-as-a-service leases of swap operators")

    @property
    def empty(self) -> bool:
        return not self.drivers and not self.leases


def operator_ids_of(business_models) -> list[str]:
    """The operator ids of business-model entries, as the engine names them (``<kind>``, or
    ``<kind><k>`` where a kind appears twice)."""
    kinds = [bm.kind for bm in business_models]
    return [k if kinds.count(k) == 1 else f"{k}{i}" for i, k in enumerate(kinds)]


def contracts_for_reference(cfg: ContractsConfig, business_models, reference_models) -> ContractsConfig:
    """The contracts of a run's uncontrolled reference: those whose operator keeps its kind there
    (a swap operator's leases); a contract with an operator whose control is taken away is
    dropped (the reference runs no V2G programme to contract)."""
    if cfg.empty:
        return cfg
    old, new = operator_ids_of(business_models), operator_ids_of(reference_models)
    keep = {o for o, n in zip(old, new) if o == n}
    return ContractsConfig(drivers=[c for c in cfg.drivers if c.operator in keep], leases=[c for c in cfg.leases if c.operator in keep])


# ---------------------------------------------------------------------------------- checks

def contract_problems(sc) -> list[Problem]:
    """Problems of a validated scenario's ``contracts`` section, each with its path and a fix:
    unknown operators or groups, a driver covered twice by one operator, ``from_wear_model``
    without a wear price, leases with an operator that is not a swap operator or groups without
    swappable vehicles."""
    cc = sc.contracts
    if cc.empty:
        return []
    kinds = [bm.kind for bm in sc.business_models]
    ids = operator_ids_of(sc.business_models)
    n_groups = len(sc.population)
    out: list[Problem] = []

    def check_common(path: str, c) -> bool:
        ok = True
        if c.operator not in ids:
            from v2gsim.scenario.schema import _suggest

            out.append(Problem(f"{path}.operator", f"names operator {c.operator!r}, which no business model is",
                               _suggest(c.operator, ids)))
            ok = False
        for j, g in enumerate(c.groups or []):
            if g >= n_groups:
                out.append(Problem(f"{path}.groups[{j}]", f"population group {g} does not exist (the scenario has {n_groups})",
                                   f"use a position 0..{n_groups - 1} in population, or leave groups out for every driver"))
                ok = False
        return ok

    covered: dict[str, dict[int, int]] = {}  # operator -> group -> the contract covering it
    for i, c in enumerate(cc.drivers):
        path = f"contracts.drivers[{i}]"
        if not check_common(path, c):
            continue
        mine = covered.setdefault(c.operator, {})
        groups = c.groups if c.groups is not None else list(range(n_groups))
        clash = next((mine[g] for g in groups if g in mine), None)
        if clash is not None:
            out.append(Problem(f"{path}.groups", f"a driver of operator {c.operator!r} is covered by contracts.drivers[{clash}] too",
                               "give each population group one contract per operator (list disjoint groups)"))
        mine.update({g: i for g in groups})
        if c.wear_compensation_cny_per_kwh == FROM_WEAR_MODEL and not (sc.wear.enabled and sc.wear.price_dispatch):
            out.append(Problem(f"{path}.wear_compensation_cny_per_kwh", "from_wear_model needs the wear model's price, which this "
                               "scenario does not compute", "turn it on (wear: {model: auto, price_dispatch: true}) or give a "
                               "figure in CNY/kWh"))
    for i, c in enumerate(cc.leases):
        path = f"contracts.leases[{i}]"
        if not check_common(path, c):
            continue
        kind = kinds[ids.index(c.operator)]
        if kind != "battery_swap":
            out.append(Problem(f"{path}.operator", f"operator {c.operator!r} is a {kind} business model; a battery lease is "
                               "with a swap operator", "name a battery_swap business model"))
        groups = c.groups if c.groups is not None else range(n_groups)
        swappable = [g for g in groups if _pack_standard(sc.population[g].vehicle) is not None]
        for j, g in enumerate(c.groups or []):
            if g not in swappable:
                out.append(Problem(f"{path}.groups[{j}]", f"population group {g} drives vehicles without a swappable pack",
                                   "lease packs to groups whose vehicle has a pack_standard"))
        if c.groups is None and not swappable:
            out.append(Problem(f"{path}.groups", "no population group drives a swappable vehicle",
                               "add a group with a swappable vehicle (a pack_standard) or remove the lease"))
    return out


def _pack_standard(vehicle) -> str | None:
    from v2gsim.population.fleet import vehicle_spec

    try:
        return vehicle_spec(vehicle).pack_standard
    except (KeyError, ValueError):
        return None


# ---------------------------------------------------------------------------------- the wear price

def wear_price_cny_per_kwh_discharged(wear_cost_cny_per_kwh: np.ndarray) -> np.ndarray:
    """The published throughput price as a price of one kWh fed back, CNY/kWh, shape as the input.

    The wear model publishes ``fleet.wear_cost_cny_per_kwh``, the marginal wear of one kWh of
    grid-side *throughput* (charge or discharge; docs/wear.md, "Price"). A kWh fed back is
    recharged later, so it costs two kWh of throughput: twice the published price. Only the
    fallback of :func:`v2g_wear_cny_per_kwh` (no wear model pricing V2G cycles)."""
    return 2.0 * np.maximum(np.asarray(wear_cost_cny_per_kwh, dtype=float), 0.0)


def v2g_wear_cny_per_kwh(fleet, idx: np.ndarray, e_floor_kwh: np.ndarray | None = None) -> np.ndarray:
    """The wear model's price of one kWh fed back (and later recharged) by vehicles ``idx``, CNY/kWh,
    shape like ``idx``: the one reader of the wear price for V2G decisions and payments (the
    centralized plan and bids, the distributed drivers' answers, the contracts' ``from_wear_model``
    compensation).

    With the wear model on (``fleet.v2g_wear_price`` set, a :class:`~v2gsim.strategies.base.FleetView`
    or the fleet) it is the marginal wear of the V2G cycle each vehicle would run now, at that
    cycle's own stressors: from its stored energy down to ``e_floor_kwh`` (k,; default the driver's
    minimum at departure; a reader that knows a shallower cycle passes its end) at its charger's
    power, on top of the day's driving cycle
    (:meth:`v2gsim.physics.ageing.fleet.FleetWear.v2g_price_cny_per_kwh`, docs/wear.md "Price",
    "Timing"). Without it, twice the published throughput price
    (:func:`wear_price_cny_per_kwh_discharged`)."""
    idx = np.asarray(idx, dtype=np.int64)
    price = getattr(fleet, "v2g_wear_price", None)
    if price is not None:
        return np.asarray(price(idx) if e_floor_kwh is None else price(idx, e_floor_kwh), dtype=float)
    return wear_price_cny_per_kwh_discharged(fleet.wear_cost_cny_per_kwh[idx])


# ---------------------------------------------------------------------------------- per-vehicle terms

@dataclass(frozen=True)
class DriverTerms:
    """One operator's contract terms per vehicle (every array shape (N,)); what its strategy sees.

    Attributes:
        covered: the vehicle's driver has a contract with this operator.
        share: share of the V2G payment the driver keeps (1 where not covered).
        compensation_cny_per_kwh: fixed wear compensation per kWh fed back (0 where not covered
            or where it comes from the wear model).
        from_wear_model: the compensation is the wear model's price.
        guarantee_cny_per_month: minimum monthly V2G income (0 where not covered).
        guarantee_plugged_h_per_month: hours plugged in at the operator's sites a month needs
            for the guarantee (0: once).
    """

    covered: np.ndarray
    share: np.ndarray
    compensation_cny_per_kwh: np.ndarray
    from_wear_model: np.ndarray
    guarantee_cny_per_month: np.ndarray
    guarantee_plugged_h_per_month: np.ndarray

    def compensation(self, idx: np.ndarray, wear_price) -> np.ndarray:
        """Wear compensation per kWh fed back for vehicles ``idx`` (k,), CNY/kWh. ``wear_price``: a
        callable ``idx -> (k,)``, the wear model's price of a kWh fed back
        (:func:`v2g_wear_cny_per_kwh`), called only for the vehicles whose contract pays it."""
        comp = self.compensation_cny_per_kwh[idx].astype(float)
        wm = self.from_wear_model[idx]
        if wm.any():
            comp[wm] = np.maximum(np.asarray(wear_price(idx[wm]), dtype=float), 0.0)
        return comp


def _covered(groups: list[int] | None, vehicle_group: np.ndarray) -> np.ndarray:
    return np.ones(vehicle_group.size, bool) if groups is None else np.isin(vehicle_group, np.asarray(groups, np.int64))


def driver_terms(cfg: ContractsConfig, operator_ids: list[str], vehicle_group: np.ndarray) -> list[DriverTerms | None]:
    """Per business model (in ``operator_ids`` order), its drivers' terms, or None without a contract."""
    n = vehicle_group.size
    out: list[DriverTerms | None] = []
    for op in operator_ids:
        mine = [c for c in cfg.drivers if c.operator == op]
        if not mine:
            out.append(None)
            continue
        covered, share, comp = np.zeros(n, bool), np.ones(n), np.zeros(n)
        model, guarantee, hours = np.zeros(n, bool), np.zeros(n), np.zeros(n)
        for c in mine:
            m = _covered(c.groups, vehicle_group)
            covered |= m
            share[m] = c.v2g_revenue_share
            if c.wear_compensation_cny_per_kwh == FROM_WEAR_MODEL:
                model[m] = True
            else:
                comp[m] = float(c.wear_compensation_cny_per_kwh)
            guarantee[m] = c.min_guarantee_cny_per_month
            hours[m] = c.min_guarantee_plugged_h_per_month
        out.append(DriverTerms(covered, share, comp, model, guarantee, hours))
    return out


def month_settlement_rows(times: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """The recorded rows at which monthly clauses settle and the share of its month each covers.

    Args:
        times: step start times of the recorded run (local), length n_steps.

    Returns:
        (rows, fraction): the last recorded row of each calendar month the run touches, shape
        (m,), and the recorded days of that month over its length in days, shape (m,).
    """
    if len(times) == 0:
        return np.empty(0, np.int64), np.empty(0)
    key = (times.year * 12 + times.month).to_numpy()
    last = np.flatnonzero(np.r_[key[1:] != key[:-1], True])
    dt_days = (times[1] - times[0]) / pd.Timedelta(days=1) if len(times) > 1 else 1.0 / 24.0
    counts = np.diff(np.r_[-1, last])
    frac = counts * dt_days / times[last].days_in_month.to_numpy()
    return last.astype(np.int64), np.minimum(frac, 1.0)


# ---------------------------------------------------------------------------------- the actor

class ContractBook(Actor):
    """Settles the contracts: per step the V2G clauses of the vehicles that fed back (called by
    the engine's fleet settlement, :meth:`settle_fleet`), per month the guarantees and leases
    (its own settle phase).

    Args:
        cfg: the scenario's ``contracts``.
        operator_ids: the business models' ids, in scenario order.
        vehicle_group: each vehicle's population group (block index), shape (N,).
        swappable: each vehicle carries a swappable pack, shape (N,).
        bidirectional: each vehicle can discharge, shape (N,).
        recorded_times: step start times of the recorded run (local), length n_steps.
        enrolled: per business model, a callable returning its enrolled drivers (bool (N,)) or
            None for every driver at its sites.
        plugged: the fleet's plugged flags, shape (N,) (read-only view).
        owner: the business model whose site each vehicle is plugged at (-1 none), shape (N,).
        wear_price: the wear model's price of a kWh fed back by vehicles ``idx``, a callable
            ``idx -> (k,)`` (:func:`v2g_wear_cny_per_kwh` over the fleet).
    """

    def __init__(self, cfg: ContractsConfig, operator_ids: list[str], vehicle_group: np.ndarray, swappable: np.ndarray,
                 bidirectional: np.ndarray, recorded_times: pd.DatetimeIndex, enrolled, plugged: np.ndarray, owner: np.ndarray,
                 wear_price):
        n = vehicle_group.size
        self.operator_ids = list(operator_ids)
        self.terms = driver_terms(cfg, self.operator_ids, vehicle_group)
        self._enrolled = enrolled
        self._plugged, self._owner, self._wear = plugged, owner, wear_price
        self._bidir = bidirectional
        self.month_rows, self.month_frac = month_settlement_rows(recorded_times)
        self._month = 0
        # the guarantee's state: V2G income and hours plugged in at the operator's sites this month
        self._guaranteed = [k for k, t in enumerate(self.terms) if t is not None and (t.guarantee_cny_per_month > 0).any()]
        self.month_income_cny = np.zeros(n)
        self._dt_h = float((recorded_times[1] - recorded_times[0]) / pd.Timedelta(hours=1)) if len(recorded_times) > 1 else 1.0
        self._plugged_h = {k: np.zeros(n) for k in self._guaranteed}
        # leases: per lease, its operator, subscribed vehicles and fee
        self.leases = [(self.operator_ids.index(c.operator), np.flatnonzero(_covered(c.groups, vehicle_group) & swappable), c.monthly_fee_cny)
                       for c in cfg.leases]
        self.totals = {c: np.zeros(n) for c in VEHICLE_COLUMNS}

    def terms_for(self, k: int) -> DriverTerms | None:
        """Business model ``k``'s contract terms (None: no contract)."""
        return self.terms[k]

    # ------------------------------------------------------------------ per step (from the fleet settlement)

    def settle_fleet(self, row: int, idx: np.ndarray, owner_k: np.ndarray, e_out_kwh: np.ndarray, revenue_cny: np.ndarray,
                     ledger) -> None:
        """The V2G clauses of one recorded step.

        Args:
            row: recorded step (negative in the warm-up: nothing is booked).
            idx: vehicles that moved energy this step, shape (k,).
            owner_k: business model of the site each is plugged at (-1 none), shape (k,).
            e_out_kwh: energy each fed back (grid side), shape (k,).
            revenue_cny: the V2G payment each was paid at the business model's price, shape (k,).
            ledger: the run's :class:`v2gsim.market.settlement.Ledger`.
        """
        if row < 0 or idx.size == 0:
            return
        fed = e_out_kwh > 0.0
        if not fed.any():
            return
        v, own, e, rev = idx[fed], owner_k[fed], e_out_kwh[fed], revenue_cny[fed]
        for k in np.unique(own[own >= 0]):
            t = self.terms[k]
            if t is None:
                continue
            m = (own == k) & t.covered[v]
            if not m.any():
                continue
            vv, ee, rr = v[m], e[m], rev[m]
            withheld = (1.0 - t.share[vv]) * rr
            comp = t.compensation(vv, self._wear) * ee
            self.totals["contract_share_cny"][vv] += withheld
            self.totals["wear_compensation_cny"][vv] += comp
            self.month_income_cny[vv] += rr - withheld + comp
            op = self.operator_ids[k]
            ledger.post(row, DRIVERS, op, "contract_share", 0.0, float(withheld.sum()))
            # contract entries carry no energy: the energy was booked once, with the V2G payment
            ledger.post(row, op, DRIVERS, "wear_compensation", 0.0, float(comp.sum()))

    # ------------------------------------------------------------------ monthly (own settle phase)

    def settle(self, sig: Signals, ledger) -> None:
        row = sig.row
        if row < 0:
            return
        for k in self._guaranteed:
            np.add(self._plugged_h[k], self._dt_h, out=self._plugged_h[k], where=self._plugged & (self._owner == k))
        if self._month >= self.month_rows.size or row != self.month_rows[self._month]:
            return
        frac = float(self.month_frac[self._month])
        self._month += 1
        for k in self._guaranteed:
            t = self.terms[k]
            enrolled = self._enrolled[k]()
            h = self._plugged_h[k]
            # plugged in at least one step, and the contract's hours (pro-rated; a tolerance for float sums of steps)
            ok = t.covered & self._bidir & (h > 0) & (h >= t.guarantee_plugged_h_per_month * frac - 1e-9) \
                & (t.guarantee_cny_per_month > 0)
            if enrolled is not None:
                ok &= enrolled
            v = np.flatnonzero(ok)
            top = np.maximum(0.0, t.guarantee_cny_per_month[v] * frac - self.month_income_cny[v])
            self.totals["min_guarantee_cny"][v] += top
            ledger.post(row, self.operator_ids[k], DRIVERS, "min_guarantee", 0.0, float(top.sum()))
            h[:] = 0.0
        self.month_income_cny[:] = 0.0
        for k, v, fee in self.leases:
            self.totals["battery_lease_cny"][v] += fee * frac
            ledger.post(row, DRIVERS, self.operator_ids[k], "battery_lease", 0.0, fee * frac * v.size)

    # ------------------------------------------------------------------ results

    def vehicle_columns(self) -> dict[str, np.ndarray]:
        """Per-vehicle totals over the recorded run (CNY), shape (N,) each."""
        return {c: a.copy() for c, a in self.totals.items()}

    def kpis(self) -> dict[str, float]:
        t = self.totals
        return {
            "contract_share_cny": float(t["contract_share_cny"].sum()),
            "contract_wear_compensation_cny": float(t["wear_compensation_cny"].sum()),
            "contract_min_guarantee_cny": float(t["min_guarantee_cny"].sum()),
            "battery_lease_cny": float(t["battery_lease_cny"].sum()),
        }
