"""Grid requests: one schema for every business model, and the grid operator that issues them.

A :class:`GridRequest` is what a grid company (or its dispatch centre) asks of the operators on
its feeder for a time window: cut the peak, fill the valley, feed back (a discharge call) or hold
regulation capacity, at a price, announced some hours ahead. The scenario lists them under
``grid_operator: {requests: [...]}``; the business models' own keys of earlier versions
(centralized ``requests``, distributed ``invitations``, battery_swap ``discharge_requests``) are
translated into this schema when the scenario is validated (:func:`scenario_requests`), so
they keep working and give the numbers they always gave.

The :class:`~v2gsim.agents.grid_operator.GridOperator` actor owns the run's requests. In the
signals phase it publishes in :attr:`v2gsim.engine.actor.Signals.requests` the requests whose
notice has passed; an operator's aggregator shows its strategy those addressed to it
(``Observation.requests``). A request is invisible before its notice: the strategies cannot plan
for it earlier.

Timing on the clock: a window covers the steps whose start lies in ``[start, start + hours)``;
it becomes visible at the step ``round(notice_h / dt_h)`` steps before its first step (step 0
at the latest); ``notice_h: null`` means known before the run starts (a standing or contracted
request), visible from step 0. A ``daily`` request repeats its window every day of the run and is
visible, with all its windows, ``notice_h`` before the first of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from v2gsim.errors import Problem
from v2gsim.fields import ID_PATTERN, ConfigModel, LocalDateTime

__all__ = ["GridRequest", "GridOperatorConfig", "IssuedRequest", "KINDS", "event_table", "issue", "operator_ids", "own_requests",
           "request_windows",
           "request_problems", "requests_of_dump", "scenario_requests", "settle_window"]

KINDS = ("peak_cut", "valley_fill", "discharge_call", "regulation")


class GridRequest(ConfigModel):
    """One grid request (frozen). ``p_kw`` means, by ``kind``:

    * ``peak_cut``: the addressed sites' net import must stay at or below ``p_kw`` in the window
      (a cap; what is delivered is the baseline less the actual load);
    * ``valley_fill``: their net import should be at least ``p_kw`` (delivered: actual less baseline);
    * ``discharge_call``: they should feed back at least ``p_kw`` (omitted: as much as they can);
    * ``regulation``: capacity held for frequency regulation, kW, paid ``capacity_price_cny_per_kw``.
    """

    id: Annotated[str, Field(pattern=ID_PATTERN, max_length=64, description="name in tables (default: kind and position)")] | None = None
    kind: Literal["peak_cut", "valley_fill", "discharge_call", "regulation"]
    start: LocalDateTime = Field(description="window start, local wall-clock time of the scenario")
    hours: Annotated[float, Field(gt=0, le=24 * 366, description="window length, h (or give end)")] | None = None
    end: LocalDateTime | None = Field(default=None, description="window end, local time (or give hours)")
    p_kw: Annotated[float, Field(ge=0, le=1e7, description="target power, kW; its meaning by kind is in the class doc")] | None = None
    e_kwh: Annotated[float, Field(gt=0, le=1e8, description="energy asked over the window, kWh (grid side); the delivery "
                                  "target the settlement and the reports measure against")] | None = None
    notice_h: Annotated[float, Field(ge=0, le=24 * 31, description="hours before the start when the operators see it; "
                                     "null: known before the run starts")] | None = 24.0
    price_cny_per_kwh: Annotated[float, Field(ge=0, le=100, description="paid per kWh delivered in the window")] = 0.0
    price_cap_cny_per_kwh: Annotated[float, Field(ge=0, le=100, description="highest energy price the grid accepts for this "
                                                  "request: bids above it are refused in clearing; a distributed aggregator may "
                                                  "raise its drivers' reward up to it to reach e_kwh")] | None = None
    capacity_price_cny_per_kw: Annotated[float, Field(ge=0, le=1000, description="regulation: paid per kW of capacity held "
                                                      "over the window")] = 0.0
    mileage_price_cny_per_mw: Annotated[float, Field(ge=0, le=1000, description="regulation: paid per MW of mileage "
                                                     "(Guangdong's FM market: offers 6 to 15 CNY/MW; v2gsim.market.regulation)")] = 0.0
    mileage_per_mw_h: Annotated[float, Field(ge=0, le=1000, description="regulation without a signal: mileage (MW) per MW "
                                             "held per hour; omitted: 5 (an assumption, v2gsim.market.regulation)")] | None = None
    signal: str | None = Field(default=None, description="regulation: CSV of the normalised signal (column 'signal', values in "
                               "[-1, 1], one per step of the window or evenly more, e.g. per second; +1: the net load falls by "
                               "p_kw); the fleet follows it and its mileage is measured. Omitted: energy-neutral, mileage from "
                               "mileage_per_mw_h")
    sustain_min: Annotated[float, Field(gt=0, le=240, description="regulation: minutes the fleet must be able to sit at "
                                        "+-p_kw (the energy headroom held)")] = 15.0
    availability_threshold: Annotated[float, Field(ge=0, le=1, description="regulation: below this availability share the "
                                                   "capacity is not paid and the share short of it is penalised")] = 0.8
    to: list[Annotated[str, Field(pattern=ID_PATTERN)]] | None = Field(
        default=None, description="operator ids it addresses (business model kinds, or <kind><k> where a kind repeats); "
                                  "omitted: every operator")
    site: str | None = Field(default=None, description="one site id it is for; omitted: all sites of the addressed operators")
    daily: bool = Field(default=False, description="repeat the window every day of the run at the same time of day")
    settlement: Literal["baseline", "operator"] = Field(
        default="baseline", description="baseline: the grid operator pays price x the energy delivered against the addressed "
        "operator's baseline and penalises under-delivery (docs/market.md); operator: it books nothing, the business model "
        "pays as its own keys of earlier versions did (battery_swap: the price on top of the V2G price per kWh its stations "
        "feed back; distributed: the price passed to the drivers as their V2G price)")

    clearing: bool = Field(
        default=False, description="the addressed operators bid (power, price) and the grid operator accepts them by merit "
        "order at a uniform price up to p_kw, dispatching each its accepted power (discharge calls, valley fills: price "
        "per kWh, capped by price_cap_cny_per_kwh; regulation: mileage price per MW, capped by mileage_price_cny_per_mw; "
        "with p_kw, not daily; v2gsim.market.clearing)")

    @model_validator(mode="after")
    def _window(self):
        if (self.hours is None) == (self.end is None):
            raise ValueError("give the window as hours or as end (one of them)")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.kind in ("peak_cut", "valley_fill", "regulation") and self.p_kw is None:
            raise ValueError(f"a {self.kind} request needs p_kw (see the meaning by kind in docs/market.md)")
        if self.price_cap_cny_per_kwh is not None and self.price_cap_cny_per_kwh < self.price_cny_per_kwh:
            raise ValueError(f"price_cap_cny_per_kwh ({self.price_cap_cny_per_kwh}) is below price_cny_per_kwh "
                             f"({self.price_cny_per_kwh}); raise it or leave it out")
        if self.clearing and (self.kind == "peak_cut" or self.p_kw is None or self.daily):
            raise ValueError("clearing needs a discharge_call, valley_fill or regulation request with p_kw (the power to "
                             "clear), once (not daily)")
        if self.signal is not None and self.kind != "regulation":
            raise ValueError("signal is for regulation requests only")
        if self.daily and self.window_h > 24:
            raise ValueError("a daily request's window is at most 24 h")
        return self

    @property
    def window_h(self) -> float:
        """The window's length, h."""
        return float(self.hours) if self.hours is not None else (self.end - self.start).total_seconds() / 3600.0


class GridOperatorConfig(ConfigModel):
    """The scenario's ``grid_operator`` section: its requests, and how delivery is settled."""

    requests: list[GridRequest] = Field(default_factory=list, description="the grid's requests to the operators")
    baseline_days: Annotated[int, Field(ge=1, le=30, description="baseline: mean of this many most recent similar days "
                                        "(v2gsim.market.baseline)")] = 5
    # 5 [C]: the number of most recent workdays provincial DR rules commonly average (v2gsim.market.baseline)
    under_delivery_share: Annotated[float, Field(ge=0, le=1, description="delivery below this share of what was asked is "
                                                 "penalised for the energy short of it")] = 0.8
    # 0.8 [C]: assumption; provincial rules set a floor of effective response, their figures differ
    penalty_cny_per_kwh: Annotated[float, Field(ge=0, le=100, description="penalty per kWh short of under_delivery_share "
                                                "x asked; omitted: the request's price")] | None = None
    pay_cap_share: Annotated[float, Field(ge=1, le=10, description="delivery is paid up to this multiple of what was asked")] = 1.2
    # 1.2 [C]: assumption; DR programmes pay over-delivery only up to a cap


def operator_ids(kinds) -> list[str]:
    """Each business model's id as an actor of the ledger and in KPI names: its kind, or
    ``<kind><k>`` (k its position) where a kind appears more than once."""
    kinds = list(kinds)
    return [kind if kinds.count(kind) == 1 else f"{kind}{k}" for k, kind in enumerate(kinds)]


def scenario_requests(scenario) -> tuple[GridRequest, ...]:
    """Every grid request of a validated scenario in one schema: ``grid_operator.requests``, then
    each business model's own keys of earlier versions translated
    (:meth:`v2gsim.strategies.base.StrategyConfig.grid_requests`), in scenario order."""
    out = list(scenario.grid_operator.requests)
    ids = operator_ids(bm.kind for bm in scenario.business_models)
    for bm, op in zip(scenario.business_models, ids):
        out += bm.grid_requests(op)
    return tuple(out)


def request_problems(scenario) -> list[Problem]:
    """``grid_operator.requests`` that name operators or sites the scenario does not have."""
    from v2gsim.scenario.schema import _suggest

    out: list[Problem] = []
    ids = operator_ids(bm.kind for bm in scenario.business_models)
    site_ids = [s.id for s in scenario.sites]
    claimed = {sid for bm in scenario.business_models if bm.sites for sid in bm.sites}
    sites_of = {op: (bm.sites if bm.sites is not None else [s for s in site_ids if s not in claimed])
                for op, bm in zip(ids, scenario.business_models)}
    for j, r in enumerate(scenario.grid_operator.requests):
        path = f"grid_operator.requests[{j}]"
        for k, op in enumerate(r.to or ()):
            if op not in ids:
                out.append(Problem(f"{path}.to[{k}]", f"names operator {op!r}, which is not a business model of this scenario",
                                   _suggest(op, ids)))
        if r.site is not None:
            if r.site not in site_ids:
                out.append(Problem(f"{path}.site", f"names site {r.site!r}, which is not in sites", _suggest(r.site, site_ids)))
            else:
                owners = [op for op in (r.to or ids) if op in sites_of and r.site in sites_of[op]]
                if not owners:
                    out.append(Problem(f"{path}.site", f"site {r.site!r} is not controlled by the operators it addresses",
                                       "address the operator that controls the site (to: [...]) or leave site out"))
    names = [r.id for r in scenario.grid_operator.requests if r.id is not None]
    for j, r in enumerate(scenario.grid_operator.requests):
        if r.id is not None and names.count(r.id) > 1:
            out.append(Problem(f"grid_operator.requests[{j}].id", f"duplicate request id {r.id!r}", "request ids must be unique"))
    return out


# --------------------------------------------------------------------------- on the clock


@dataclass(frozen=True)
class IssuedRequest:
    """A request placed on the run's clock.

    Attributes:
        number: position in :func:`scenario_requests`.
        name: its id, or ``<kind><number>``.
        request: the request as the scenario states it.
        windows: its windows as clock steps ``(first, end)`` (end exclusive; a daily request has one a day).
        visible_step: the clock step from which the operators see it.
        ranks: per operator it addresses, its position among the requests addressed to that
            operator (an operator's stable key for the request, e.g. of a random stream).
    """

    number: int
    name: str
    request: GridRequest
    windows: tuple[tuple[int, int], ...]
    visible_step: int
    ranks: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.request.kind

    def addresses(self, operator_id: str) -> bool:
        return operator_id in self.ranks


def request_windows(times: pd.DatetimeIndex, r: GridRequest) -> tuple[tuple[int, int], ...]:
    """``r``'s windows on the clock ``times`` (step starts, naive local time): the steps whose start
    lies in each window; windows outside the clock are left out."""
    if len(times) == 0:
        return ()
    start = pd.Timestamp(r.start)
    if start.tzinfo is not None:
        start = start.tz_localize(None)
    starts = [start]
    if r.daily:  # every day the clock touches, and the day before (a window may run past midnight)
        day0 = (times[0].normalize() - start.normalize()).days - 1
        day1 = (times[-1].normalize() - start.normalize()).days + 1
        starts = [start + pd.Timedelta(days=k) for k in range(day0, day1 + 1)]
    t = np.asarray(times.values)
    length = np.timedelta64(int(round(r.window_h * 3600)), "s")
    out = []
    for st in starts:
        a = int(np.searchsorted(t, np.datetime64(st), side="left"))
        b = int(np.searchsorted(t, np.datetime64(st) + length, side="left"))
        if b > a:
            out.append((a, b))
    return tuple(out)


def issue(requests, times: pd.DatetimeIndex, dt_h: float, operators: list[str]) -> tuple[IssuedRequest, ...]:
    """The requests on the clock (those with a window in it), with when each becomes visible."""
    out = []
    count = dict.fromkeys(operators, 0)
    for n, r in enumerate(requests):
        to = [op for op in (r.to if r.to is not None else operators) if op in count]
        ranks = {}
        for op in to:
            ranks[op] = count[op]
            count[op] += 1
        windows = request_windows(times, r)
        if not windows:
            continue
        first = windows[0][0]
        visible = 0 if r.notice_h is None else max(0, first - int(round(r.notice_h / dt_h)))
        out.append(IssuedRequest(n, r.id or f"{r.kind}{n}", r, windows, visible, ranks))
    return tuple(out)


def own_requests(config, context) -> tuple[IssuedRequest, ...]:
    """The requests a business-model entry states with keys of its own, on its context's clock, as
    the grid operator would issue them (to drive a strategy built by hand, without a model: show
    it ``tuple(q for q in issued if q.visible_step <= step)`` as ``Observation.requests``)."""
    op = context.operator_id or config.kind
    return issue(config.grid_requests(op), context.times, context.dt_h, [op])


SETTLEMENT_COLUMNS = ("request", "name", "kind", "operator_id", "site", "start", "end", "baseline_method", "baseline_days",
                      "baseline_kwh", "actual_kwh", "asked_kwh", "delivered_kwh", "delivered_share", "paid_cny", "penalty_cny",
                      "capacity_cny", "availability", "mileage_mw", "mileage_paid_cny")


def settle_window(r: GridRequest, baseline_kw: np.ndarray, actual_kw: np.ndarray, dt_h: float, cfg: GridOperatorConfig) -> dict:
    """Money and energy of one window of request ``r`` for one operator.

    Delivered energy (kWh): the baseline less the actual load (peak cut, discharge call; a
    reduction of the net import, feeding back included), or the actual less the baseline
    (valley fill), summed over the window's steps (so a step above the baseline offsets one
    below). Asked: ``e_kwh`` if given, else from ``p_kw`` against the baseline (peak cut: the load
    above the cap; discharge call: the baseline plus the export asked; valley fill: the load
    below the floor); regulation asks and delivers no energy (NaN: it is paid on capacity and
    mileage). Paid: the price times the delivery (at least 0,
    at most ``pay_cap_share`` x asked). Penalty: below ``under_delivery_share`` x asked, the
    energy short of that share at ``penalty_cny_per_kwh`` (default: the price). Capacity
    (regulation): ``capacity_price_cny_per_kw`` x ``p_kw`` per window, before its availability
    (the grid operator applies it: :func:`v2gsim.market.regulation.settle_regulation`).
    Without a baseline (NaN) nothing is delivered, paid or penalised.
    """
    base, act = np.asarray(baseline_kw, float), np.asarray(actual_kw, float)
    capacity = r.capacity_price_cny_per_kw * (r.p_kw or 0.0) if r.kind == "regulation" else 0.0
    out = {"baseline_kwh": float(base.sum() * dt_h), "actual_kwh": float(act.sum() * dt_h), "capacity_cny": float(capacity)}
    if np.isnan(base).any() or r.kind == "regulation":
        # regulation is paid on capacity and mileage (v2gsim.market.regulation), not on energy
        # against a baseline; its energy is bought and sold at the tariff
        return out | {"asked_kwh": np.nan, "delivered_kwh": np.nan, "paid_kwh": 0.0, "paid_cny": 0.0, "short_kwh": 0.0, "penalty_cny": 0.0}
    sign = -1.0 if r.kind == "valley_fill" else 1.0
    delivered = float(sign * (base - act).sum() * dt_h)
    if r.e_kwh is not None:
        asked = float(r.e_kwh)
    elif r.p_kw is None or r.kind == "regulation":
        asked = np.nan
    elif r.kind == "peak_cut":
        asked = float(np.maximum(base - r.p_kw, 0.0).sum() * dt_h)
    elif r.kind == "discharge_call":
        asked = float(np.maximum(base + r.p_kw, 0.0).sum() * dt_h)
    else:  # valley_fill
        asked = float(np.maximum(r.p_kw - base, 0.0).sum() * dt_h)
    paid_kwh = max(delivered, 0.0) if np.isnan(asked) else min(max(delivered, 0.0), cfg.pay_cap_share * asked)
    short = 0.0 if np.isnan(asked) or asked <= 0 else max(cfg.under_delivery_share * asked - max(delivered, 0.0), 0.0)
    penalty_price = r.price_cny_per_kwh if cfg.penalty_cny_per_kwh is None else cfg.penalty_cny_per_kwh
    return out | {"asked_kwh": asked, "delivered_kwh": delivered, "paid_kwh": paid_kwh, "paid_cny": paid_kwh * r.price_cny_per_kwh,
                  "short_kwh": short, "penalty_cny": short * penalty_price}


def window_times(times: pd.DatetimeIndex, dt_h: float, a: int, b: int) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (local time) of clock steps ``[a, b)``."""
    return times[a].to_pydatetime(), (times[b - 1] + pd.Timedelta(hours=dt_h)).to_pydatetime()


def requests_of_dump(scenario: dict) -> tuple[GridRequest, ...]:
    """:func:`scenario_requests` of a scenario as results store it (``metadata["scenario"]``, a
    dict): each business model's entry is validated again by its registered config class (its
    kind must be registered, e.g. a plugin imported) to translate its own request keys."""
    from v2gsim.strategies.base import STRATEGIES

    out = [GridRequest.model_validate(r) for r in (scenario.get("grid_operator") or {}).get("requests") or ()]
    bms = scenario.get("business_models") or []
    for bm, op in zip(bms, operator_ids(bm.get("kind") for bm in bms)):
        out += STRATEGIES[bm["kind"]].config_cls.model_validate(bm).grid_requests(op)
    return tuple(out)


def asked_text(r: GridRequest) -> str:
    """What a request asks, in words."""
    if r.kind == "peak_cut":
        return f"net import ≤ {r.p_kw:g} kW"
    if r.kind == "valley_fill":
        return f"net import ≥ {r.p_kw:g} kW"
    if r.kind == "regulation":
        return f"hold ±{r.p_kw:g} kW of regulation"
    if r.p_kw is not None:
        return f"export ≥ {r.p_kw:g} kW"
    if r.e_kwh is not None:
        return f"export {r.e_kwh:g} kWh"
    return "export as much as they can"


EVENT_COLUMNS = ("request", "name", "kind", "operator_id", "time", "in_window", "baseline_kw", "actual_kw", "delivered_kw")


def event_table(results, request: int | str | None = None, *, margin_h: float = 2.0) -> pd.DataFrame:
    """A settled demand-response event step by step: what the operator's baseline said, what it
    drew, and what it delivered against it (a pure function of the results).

    Args:
        results: a run's :class:`v2gsim.results.Results` with a request settled on its baseline
            (``extra["grid_settlement"]``).
        request: the request's position (``request`` column) or name; None: every settled one.
        margin_h: hours before and after each window shown too (the actual load only; the
            baseline is defined in the window).

    Returns:
        One row per step (request, operator, step): ``request``, ``name``, ``kind``,
        ``operator_id``, ``time``, ``in_window``, ``baseline_kw`` (NaN outside the window),
        ``actual_kw`` (the operator's metered net load, from the ledger's energy), ``delivered_kw``
        (baseline less actual; actual less baseline for a valley fill; NaN outside).

    Raises:
        ValueError: the results hold no settled request (or not the one named).
    """
    from v2gsim.operators import operator_load_kw

    settled = results.extra.get("grid_settlement")
    curves = results.extra.get("grid_baseline")
    if settled is None or curves is None or not len(settled):
        raise ValueError("these results hold no grid request settled on a baseline (extra['grid_settlement']): give the "
                         "scenario a grid_operator request with settlement: baseline and run it again")
    if request is not None:
        names = settled["name"].astype(str)
        pick = (settled["request"] == request if isinstance(request, (int, np.integer))
                else (names == str(request)) | names.str.startswith(f"{request}."))  # a cleared request's dispatches: <name>.<operator>
        if not pick.any():
            raise ValueError(f"no settled request {request!r}; settled: {', '.join(map(str, settled['name'].unique()))}")
        settled = settled[pick]
    load = operator_load_kw(results)
    times = results.system.index
    margin = pd.Timedelta(hours=margin_h)
    parts = []
    for _, row in settled.iterrows():
        op = row["operator_id"]
        c = curves[(curves["request"] == row["request"]) & (curves["operator_id"] == op)]
        c = c[(c["time"] >= row["start"]) & (c["time"] < row["end"])]
        span = (times >= row["start"] - margin) & (times < row["end"] + margin)
        t = times[span]
        base = pd.Series(c["baseline_kw"].to_numpy(float), index=pd.DatetimeIndex(c["time"])).reindex(t)
        if row["site"] is not None and isinstance(row["site"], str):
            s = results.sites
            actual = s[s["site_id"].astype(str) == row["site"]].set_index("time")["p_kw"].reindex(t).to_numpy(float)
        else:
            actual = load[op].reindex(t).to_numpy(float)
        sign = -1.0 if row["kind"] == "valley_fill" else 1.0
        parts.append(pd.DataFrame({"request": row["request"], "name": row["name"], "kind": row["kind"], "operator_id": op, "time": t,
                                   "in_window": base.notna().to_numpy(), "baseline_kw": base.to_numpy(float), "actual_kw": actual,
                                   "delivered_kw": sign * (base.to_numpy(float) - actual)}))
    return pd.concat(parts, ignore_index=True)
