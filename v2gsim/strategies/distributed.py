"""Distributed V2G: an aggregator broadcasts prices and invitations; each driver decides.

The aggregator (a virtual power plant app pooling private and community piles) controls no
vehicle. It broadcasts

* the time-of-use tariff (from the scenario's tariff) and, optionally, its own charging price
  offers for some windows (``price_offers``), which replace the tariff's price for its drivers;
* V2G invitations (``invitations``): a window, a reward per kWh fed back, announced some hours
  ahead.

Each driver decides, vectorised over the population (no Python loop over vehicles):

* **Smart charging** (a share ``drivers.smart_charging_share`` of drivers): charge in the
  cheapest price level left before the *stated* departure, and in as many further (next
  cheapest) slots as the driver's own minimum state of charge at departure needs, plus one slot
  of margin. Per vehicle this is a threshold price level, found from cumulative counts of each
  price level on the clock, so one step costs O(levels × plugged vehicles). A driver whose
  stated departure leaves no room (or has passed) charges at once. Other drivers charge at once.
* **Enrolment** in the V2G programme: once per driver, with probability
  ``drivers.enrol_probability``; only drivers of bidirectional vehicles can enrol.
* **Answering an invitation**: when it is announced, each enrolled driver accepts with a
  logistic probability in the reward, the state of charge above their V2G reserve, their range
  anxiety and their fear of battery wear (see :class:`DriverBehaviour`); with
  ``discharge_only_if_profitable`` a driver also declines when the reward does not beat the
  cost of buying the energy back (cheapest price in the 24 h after the window, through both
  conversion losses) plus the wear cost.
* **Discharging**: during the window an accepting driver plugged at a bidirectional pile feeds
  back at full power down to their V2G reserve (never below it, nor below the minimum state of
  charge they insist on at departure); they do not charge during the window. Energy fed back
  during an invitation is paid the invitation's reward instead of the tariff's V2G price.

Under a contract with the aggregator (scenario section ``contracts``, :mod:`v2gsim.market.contracts`)
drivers weigh their net benefit, not the bare reward:

* **answers**: the reward term of the logit becomes the driver's pay per kWh (their share of the
  reward plus the wear compensation) minus the wear cost they perceive (``wear_cny_per_kwh``),
  relative to the anchor's perceived wear (``drivers.anchor_wear_cny_per_kwh``): a driver
  without a contract at the default wear price answers exactly as calibrated; the
  profitability test compares that pay, not the reward, with buy-back plus wear;
* **enrolment**: the logit of ``enrol_probability`` moves by ``drivers.enrol_slope_per_cny_month``
  times what the contract adds to the expected monthly V2G money at
  ``drivers.expected_v2g_kwh_per_month`` (:func:`contract_gain_cny_per_month`; the guarantee
  counts where it beats the expected pay). Same uniform draw as without a contract.

Per-driver traits are sampled once from the business model's own random stream
(``StrategyContext.seed_seq``: ``SeedSequence(seed, spawn_key=(20, k))`` for entry ``k`` of
``business_models``), child ``(…, 0)`` for the traits and ``(…, 1, j)`` for the answers to
invitation ``j``, so that the answers do not depend on the reward (a higher reward never turns
a yes into a no) nor on the order of anything else.

Calibration: the intercept of the answer model is solved so that the mean acceptance share of
enrolled drivers, at ``anchor_reward_cny_per_kwh`` and states of charge above the reserve
spread as in the anchor event's fleet (mean ``soc_margin_ref``, sd ``soc_margin_sd_ref``),
equals ``anchor_share`` — by default the Shenzhen event of 15 May 2024, where
53 of 1,473 enrolled EVs discharged at a reward of 4 CNY/kWh (3.6 %) [A, DOMAIN.md]. The slopes
are assumptions [C] (see :class:`DriverBehaviour`). We read the Shenzhen share as the share of
enrolled drivers who answer yes *and can*: in a run, drivers who are not plugged at a
bidirectional pile during the window (or are at their reserve) cannot follow their yes, so the
realised participation rate is at most the answer share.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from v2gsim.fields import ConfigModel, LocalDateTime
from v2gsim.strategies.base import Dispatch, Observation, Strategy, StrategyConfig, StrategyContext, register

SHENZHEN_2024_ENROLLED, SHENZHEN_2024_DISCHARGED = 1473, 53  # 15 May 2024, 4 CNY/kWh [A]
_MAX_PRICE_LEVELS = 64


class Invitation(ConfigModel):
    """A V2G invitation broadcast to every enrolled driver."""

    start: LocalDateTime = Field(description="start of the discharge window, local wall-clock time")
    hours: Annotated[float, Field(gt=0, le=24, description="length of the discharge window, h")] = 1.0
    reward_cny_per_kwh: Annotated[
        float, Field(ge=0, le=50, description="paid per kWh fed back during the window (replaces the tariff's V2G price)")
    ] = 4.0
    announced_h_ahead: Annotated[float, Field(ge=0, le=168, description="hours before start when drivers receive it and answer")] = 24.0
    target_kwh: Annotated[float, Field(gt=0, le=1e7, description="energy the grid asks the aggregator to deliver in the window (grid side); "
                                       "with it the aggregator sizes the reward (see max_reward_cny_per_kwh) and reports delivered vs requested")] | None = None
    max_reward_cny_per_kwh: Annotated[float, Field(ge=0, le=50, description="highest reward the aggregator may offer to reach target_kwh "
                                                   "(default: the reward, i.e. no sizing)")] | None = None

    @model_validator(mode="after")
    def _max_reward(self):
        if self.max_reward_cny_per_kwh is not None and self.max_reward_cny_per_kwh < self.reward_cny_per_kwh:
            raise ValueError(f"max_reward_cny_per_kwh ({self.max_reward_cny_per_kwh}) is below reward_cny_per_kwh "
                             f"({self.reward_cny_per_kwh}); raise it or leave it out")
        return self


class PriceOffer(ConfigModel):
    """The aggregator's own charging price for a window (e.g. a valley-filling discount)."""

    start: LocalDateTime = Field(description="start of the offer, local wall-clock time")
    hours: Annotated[float, Field(gt=0, le=24 * 31, description="length of the offer, h")]
    price_cny_per_kwh: Annotated[float, Field(ge=0, le=20, description="charging price during the offer")]


class OrderlyCharging(ConfigModel):
    """How the aggregator spreads its smart drivers' charging over the cheapest price block.

    ``valley_fill`` (default): each step the aggregator fills the valley of its forecast feeder
    load — it finds the water level ``L`` at which the energy its smart drivers still want in
    the block, spread over the block's remaining steps, fills ``L`` above the base-load forecast
    (the valley-filling target of Gan, Topcu & Low 2013, IEEE Trans. Power Syst. 28(2):940-951),
    and grants start slots, least slack first, up to ``L`` minus the base load, within the
    transformer's forecast headroom and the headroom measured last step. A driver keeps a granted
    slot until full or gone (a start time, as household timers and China's "orderly charging"
    pilots give out); a driver whose slack has run out starts at once. ``random_delay``: each
    smart driver delays the start in the block by a uniform random time up to
    ``drivers.start_spread_h`` (the rule before; it herds at the block's first steps).
    """

    mode: Literal["valley_fill", "random_delay"] = Field(default="valley_fill", description="valley_fill: start slots from the aggregator; random_delay: own timers")
    headroom_margin: Annotated[float, Field(ge=0, le=1, description="share of the transformer rating kept free when granting slots")] = 0.05
    # [C] assumption: a 5 % margin against forecast error of the base load
    finish_margin_h: Annotated[float, Field(ge=0, le=12, description="a granted driver is planned to be full this long before the stated departure")] = 2.0
    # [C] assumption: drivers leave earlier than they state; full two hours ahead keeps
    # the unmet energy of distributed_community (2 days) within 2 % of the random-delay rule's (1 h: +11 %)


class DriverBehaviour(ConfigModel):
    """How drivers answer prices and invitations. Tags as in DOMAIN.md (A/B/C).

    Answer to an invitation (probability of "yes" for an enrolled driver):
    ``p = 1 / (1 + exp(-(b0 + reward_slope · r + soc_margin_slope · (m - soc_margin_ref)
    - anxiety_weight · z_anx - wear_fear_weight · z_wear)))`` where ``r`` is the reward
    (CNY/kWh), ``m`` the state of charge above the driver's V2G reserve (fraction; ``p = 0`` at
    ``m <= 0``), ``z_anx``, ``z_wear`` standard-normal per-driver traits and ``b0`` solved from
    the anchor (Shenzhen 2024).
    """

    enrol_probability: Annotated[float, Field(ge=0, le=1, description="share of drivers of bidirectional vehicles who enrol in the V2G programme")] = 0.3
    # [C] assumption. Stated-preference surveys find a majority willing "in principle" under
    # conditions (e.g. Geske & Schumann 2018, Energy Policy), actual enrolment is far lower.
    smart_charging_share: Annotated[float, Field(ge=0, le=1, description="share of drivers who schedule charging into the cheapest slots")] = 0.8
    # [C] assumption; the 2024 pilot notice (No. 718) targets >= 80 % of private-pile charging
    # energy in valley hours [A for the target, C for reading it as a share of drivers].
    start_spread_h: Annotated[float, Field(ge=0, le=12, description="smart drivers delay the start in the cheapest price block by a uniform random time up to this, if their slack allows")] = 2.0
    # [C] assumption: charging timers set to the valley start synchronise many cars (a "valley
    # rebound" peak); drivers' timers are not all the same, so starts are spread.
    reward_slope_per_cny: Annotated[float, Field(ge=0, le=10, description="logit change per CNY/kWh of reward")] = 0.6
    # [C] assumption: doubling the Shenzhen reward (4 -> 8 CNY/kWh) raises the answer share from
    # 3.6 % to about 30 %; published rewards 2-5 CNY/kWh (Hangzhou, Wuhan, Guangzhou) come
    # without participation shares, so only the level is calibrated.
    soc_margin_slope: Annotated[float, Field(ge=0, le=50, description="logit change per unit of SOC above the V2G reserve")] = 4.0
    # [C] assumption; the direction follows surveys where range anxiety / minimum range is the
    # main barrier (Geske & Schumann 2018).
    soc_margin_ref: Annotated[float, Field(ge=0, le=1, description="mean SOC above the reserve of the enrolled drivers of the anchor event")] = 0.5
    soc_margin_sd_ref: Annotated[float, Field(ge=0, le=1, description="sd of that SOC margin over the anchor event's drivers")] = 0.15
    # [derived] the anchor share is a share of a fleet, not of drivers at one state of charge:
    # the enrolled fleet of scenarios/pilots/shenzhen_2024_05_15.yaml (private cars charging at
    # home and work) has margins of mean 0.49, sd 0.15 (p10 0.31, p90 0.68) at the announcement.
    # Anchored at one margin of 0.3 instead (the rule until session 19), that pilot answered 144
    # yes where 53 discharged.
    anxiety_weight: Annotated[float, Field(ge=0, le=10, description="logit change per sd of range anxiety")] = 0.5  # [C]
    wear_fear_weight: Annotated[float, Field(ge=0, le=10, description="logit change per sd of fear of battery wear")] = 0.5  # [C]
    reserve_extra_soc_mean: Annotated[float, Field(ge=0, le=1, description="V2G reserve above the minimum departure SOC, mean")] = 0.2
    reserve_extra_soc_sd: Annotated[float, Field(ge=0, le=0.5, description="sd of that extra reserve (grows with range anxiety)")] = 0.1
    # [C] assumption: V2G apps let owners set a floor; we put it 20 points (sd 10) above the
    # SOC they insist on at departure, higher for more anxious drivers.
    anchor_reward_cny_per_kwh: Annotated[float, Field(ge=0, le=50, description="reward of the calibration event")] = 4.0  # [A] Shenzhen
    anchor_wear_cny_per_kwh: Annotated[float, Field(ge=0, le=10, description="wear cost per kWh discharged the anchor event's drivers "
                                                    "perceived (answers shift with the perceived wear above it)")] = 0.1
    # [C] the default wear_cny_per_kwh (below): the Shenzhen drivers are read as perceiving the
    # aggregator's default wear price, so a run at that price answers exactly as calibrated.
    expected_v2g_kwh_per_month: Annotated[float, Field(ge=0, le=5000, description="energy a driver expects to feed back per month "
                                                       "when deciding to enrol (grid side)")] = 20.0
    # [C] assumption: a few invitations a month, each a couple of hours on a 7 kW home pile at
    # the anchor's answer share; only the enrolment's response to a contract uses it.
    enrol_slope_per_cny_month: Annotated[float, Field(ge=0, le=1, description="logit change of enrolment per CNY a month of "
                                                      "expected net benefit a contract adds")] = 0.02
    # [C] assumption: 50 CNY/month more turns the logit by 1 (enrolment 30 % -> 54 %). The
    # direction follows discrete-choice studies of V2G contracts where remuneration raises and a
    # lower guaranteed battery level lowers acceptance (German DCE, econstor 10419/315027;
    # Huang et al. 2021, Energy Policy 156:112410) and where drivers name compensation for battery
    # wear as a condition (Delft V2G users, Energies 15(13):4907, 2022); none reports a slope for China.
    anchor_share: Annotated[float, Field(gt=0, lt=1, description="answer share at the anchor reward")] = SHENZHEN_2024_DISCHARGED / SHENZHEN_2024_ENROLLED  # [A]


class DistributedConfig(StrategyConfig):
    """Distributed business model: broadcast prices and invitations, drivers decide."""

    kind: Literal["distributed"] = "distributed"
    invitations: list[Invitation] = Field(default_factory=list, description="V2G invitations (windows must not overlap); kept "
                                          "for earlier scenarios: use grid_operator.requests (discharge_call)")
    price_offers: list[PriceOffer] = Field(default_factory=list, description="the aggregator's own charging prices (windows must not overlap)")
    wear_cny_per_kwh: Annotated[float, Field(ge=0, le=10)] | Literal["model"] = Field(
        default=0.1,
        description="wear cost per kWh discharged (battery side): a constant, or 'model' for the wear model's price of a kWh "
        "fed back and recharged at each driver's own V2G cycle (contracts.v2g_wear_cny_per_kwh; zero without a wear model)",
    )
    # 0.1 CNY/kWh [C]: an LFP pack of ~600 CNY/kWh (assumption) over 3,000 cycles (NDRC 2023
    # No. 1721 asks >= 3,000 [A/B]) at 2 kWh throughput per kWh of capacity and cycle.
    discharge_only_if_profitable: bool = Field(
        default=True, description="drivers decline invitations whose reward does not beat energy buy-back plus wear cost"
    )
    drivers: DriverBehaviour = DriverBehaviour()
    orderly: OrderlyCharging = OrderlyCharging()
    valley_top_up_soc: Annotated[float, Field(gt=0, le=1, description="drivers who accept a valley-fill (charging) invitation charge "
                                              "in its window up to this state of charge if it is above their full point")] | None = None

    def grid_requests(self, operator_id: str) -> list:
        """``invitations`` in the one schema (:mod:`v2gsim.market.events`), in order of start: discharge
        calls at the reward (price) up to the highest reward (price cap), announced as they were."""
        from v2gsim.market.events import GridRequest

        return [GridRequest(kind="discharge_call", start=i.start, hours=i.hours, e_kwh=i.target_kwh, notice_h=i.announced_h_ahead,
                            price_cny_per_kwh=i.reward_cny_per_kwh, price_cap_cny_per_kwh=i.max_reward_cny_per_kwh, to=[operator_id],
                            settlement="operator")
                for i in sorted(self.invitations, key=lambda i: i.start)]

    @model_validator(mode="after")
    def _no_overlap(self):
        for name in ("invitations", "price_offers"):
            spans = sorted((w.start.timestamp(), w.start.timestamp() + w.hours * 3600) for w in getattr(self, name))
            for (_a0, a1), (b0, _b1) in zip(spans, spans[1:]):
                if b0 < a1:
                    raise ValueError(f"{name}: windows overlap at {datetime.fromtimestamp(b0)}; give one window per time")
        return self


def solve_intercept(d: DriverBehaviour) -> float:
    """Intercept ``b0`` such that the mean answer share over the traits and the anchor fleet's
    SOC margins (normal, mean ``d.soc_margin_ref``, sd ``d.soc_margin_sd_ref``) equals
    ``d.anchor_share`` at ``d.anchor_reward_cny_per_kwh``."""
    from scipy.optimize import brentq

    x, w = np.polynomial.hermite_e.hermegauss(64)  # expectation over N(0, s^2)
    w = w / w.sum()
    # the traits and the margin enter the logit as independent normal terms: one normal of their joint sd
    s = float(np.sqrt(d.anxiety_weight**2 + d.wear_fear_weight**2 + (d.soc_margin_slope * d.soc_margin_sd_ref) ** 2))
    rest = d.reward_slope_per_cny * d.anchor_reward_cny_per_kwh

    def gap(b0):
        return float(np.sum(w / (1.0 + np.exp(-(b0 + rest + s * x))))) - d.anchor_share

    return float(brentq(gap, -60.0, 60.0, xtol=1e-12))


def contract_gain_cny_per_month(share: np.ndarray, compensation_cny_per_kwh: np.ndarray, guarantee_cny_per_month: np.ndarray,
                                reward_cny_per_kwh: float, e_kwh_per_month: float) -> np.ndarray:
    """What a contract adds to a driver's expected monthly V2G money, CNY/month, shape as the inputs.

    Without a contract a driver expecting to feed back ``e_kwh_per_month`` at ``reward`` earns
    ``e · r``; under one ``max(guarantee, e · (share · r + compensation))``. The perceived wear
    cost ``e · w`` is the same on both sides, so the net benefit changes by the difference."""
    with_contract = np.maximum(guarantee_cny_per_month, e_kwh_per_month * (share * reward_cny_per_kwh + compensation_cny_per_kwh))
    return with_contract - e_kwh_per_month * reward_cny_per_kwh


def enrol_probability(p0: float, gain_cny_per_month: np.ndarray, slope_per_cny_month: float) -> np.ndarray:
    """Enrolment probability under a contract: the logit of ``p0`` moved by ``slope ×`` the
    contract's expected monthly gain (a binary logit in the net benefit); ``p0`` itself where the
    gain is 0 (and at ``p0`` of 0 or 1). Shape as ``gain_cny_per_month``."""
    g = np.asarray(gain_cny_per_month, dtype=float)
    if p0 <= 0.0 or p0 >= 1.0:
        return np.full(g.shape, p0)
    logit = np.log(p0 / (1.0 - p0)) + slope_per_cny_month * g
    return np.where(g == 0.0, p0, 1.0 / (1.0 + np.exp(-logit)))


def water_level(base_kw: np.ndarray, e_kwh: float, dt_h: float) -> float:
    """Level ``L`` (kW) with ``dt_h * sum(max(0, L - base_kw)) == e_kwh``: the flat total load
    that adds ``e_kwh`` to the base in the valley (valley filling). ``base_kw`` shape (m,), m >= 1."""
    b = np.sort(np.asarray(base_kw, dtype=float))
    if e_kwh <= 0 or b.size == 0:
        return float(b[0]) if b.size else 0.0
    cs = np.cumsum(b)
    k = np.arange(1, b.size + 1)
    need = dt_h * (k * b - cs)  # energy to raise the k lowest steps to the k-th lowest base
    j = int(np.searchsorted(need, e_kwh, side="right"))  # breakpoints reached, >= 1
    return float((e_kwh / dt_h + cs[j - 1]) / j)


def sized_reward(ev: dict, expected_kwh) -> float:
    """An invitation's reward sized to its target: the lowest reward from ``ev["reward"]`` up to
    ``ev["max_reward"]`` (the price cap) in 0.25 CNY/kWh steps whose ``expected_kwh(reward)`` reaches
    ``ev["target_kwh"]``; the cap when none does; ``ev["reward"]`` without a target or headroom."""
    if ev["target_kwh"] is None or ev["max_reward"] <= ev["reward"]:
        return ev["reward"]
    grid = np.unique(np.r_[np.arange(ev["reward"], ev["max_reward"], 0.25), ev["max_reward"]])
    exp = np.array([expected_kwh(r) for r in grid])
    ok = np.flatnonzero(exp >= ev["target_kwh"])
    return float(grid[ok[0]] if ok.size else grid[-1])


def _window_steps(times, start, hours: float, dt_h: float) -> tuple[int, int]:
    """[first, end) clock steps of a window (steps whose start lies in it)."""
    t = np.asarray(times.values)
    a = int(np.searchsorted(t, np.datetime64(start), side="left"))
    b = int(np.searchsorted(t, np.datetime64(start) + np.timedelta64(int(round(hours * 3600)), "s"), side="left"))
    return a, b


@register("distributed")
class Distributed(Strategy):
    """Drivers respond to broadcast prices and invitations; see the module docstring."""

    config_cls = DistributedConfig

    def __init__(self, config: DistributedConfig, context: StrategyContext):
        super().__init__(config, context)
        n_clock = len(context.times)
        dt_h = context.dt_h
        d = config.drivers
        self.b0 = solve_intercept(d)
        # effective charging price: the tariff, replaced by the aggregator's offers
        price = np.array(context.price_cny_per_kwh, dtype=np.float64, copy=True)
        self.offer_at = np.full(n_clock, np.nan)
        for o in config.price_offers:
            a, b = _window_steps(context.times, o.start, o.hours, dt_h)
            price[a:b] = o.price_cny_per_kwh
            self.offer_at[a:b] = o.price_cny_per_kwh
        self.price_eff = price
        # price levels and their cumulative counts on the clock: count of level <= l in [s, d)
        # is cum[l, d] - cum[l, s]. Past the end of the clock, drivers expect the last day's
        # prices to repeat (a stated departure after the horizon still sees a night valley).
        day = int(round(24 / dt_h))
        tail = price[-day:] if n_clock >= day else price
        ext = np.concatenate([price, np.tile(tail, 1 + (2 * day) // max(1, tail.size))[: 2 * day]])
        key = np.round(ext, 6)
        levels = np.unique(key)
        if levels.size > _MAX_PRICE_LEVELS:  # many distinct prices: quantile bins
            levels = np.unique(np.quantile(key, np.linspace(0, 1, _MAX_PRICE_LEVELS)))
        self.level = np.minimum(np.searchsorted(levels, key, side="left"), levels.size - 1).astype(np.int16)
        le = self.level[None, :] <= np.arange(levels.size)[:, None]
        self.cum = np.zeros((levels.size, key.size + 1), dtype=np.int32)
        np.cumsum(le, axis=1, out=self.cum[:, 1:])
        # first step of the run of equal price level each step belongs to
        change = np.r_[True, self.level[1:] != self.level[:-1]]
        self.run_start = np.maximum.accumulate(np.where(change, np.arange(key.size), 0))
        # ... and the end (exclusive) of that run
        ends = np.r_[self.level[1:] != self.level[:-1], True]
        self.run_end = np.minimum.accumulate(np.where(ends, np.arange(key.size) + 1, key.size)[::-1])[::-1]
        # the feeder's forecast base load and room under the transformer, extended like the prices
        room = context.headroom_forecast_kw()
        base = (np.zeros(n_clock) if context.base_load_forecast_kw is None
                else np.asarray(context.base_load_forecast_kw, dtype=float)[:n_clock])
        ext_of = lambda a: np.concatenate([a, np.tile(a[-day:] if n_clock >= day else a, 1 + (2 * day) // max(1, min(day, n_clock)))[: 2 * day]])  # noqa: E731
        self.base_fc_kw = ext_of(base)
        margin_kw = config.orderly.headroom_margin * context.feeder_rating_kw if np.isfinite(context.feeder_rating_kw) else 0.0
        self.room_fc_kw = ext_of(room) - margin_kw
        self._prev_draw_kw = 0.0  # this aggregator's request last step (the measured headroom already holds it)
        # invitations on the clock: the grid operator's discharge calls addressed here, each taken
        # in when it becomes visible (its notice) and announced to the drivers then
        self.events = []
        self.event_at = np.full(n_clock, -1, dtype=np.int64)
        # valley fills addressed here: charging invitations (v2gsim.strategies.distributed_valley)
        self.vf_events: list[dict] = []
        self.vf_at = np.full(n_clock, -1, dtype=np.int64)
        self._day_steps = day
        self._req_seen: tuple = ()
        self._req_taken: set[int] = set()
        self._n = None
        self._answered = 0  # events answered so far (they are sorted by start)

    def _take_requests(self, requests: tuple) -> None:
        """Newly visible discharge calls (:class:`v2gsim.market.events.IssuedRequest`) become
        invitations: one event per window, keyed for the answers' random stream by the request's
        position among those addressed to this aggregator."""
        self._req_seen = requests
        n_clock, day, price = self.event_at.size, self._day_steps, self.price_eff
        for q in requests:
            if q.number in self._req_taken or q.kind not in ("discharge_call", "valley_fill"):
                continue
            self._req_taken.add(q.number)
            r, j = q.request, q.ranks[self.context.operator_id] if self.context.operator_id in q.ranks else q.number
            if q.kind == "valley_fill":
                self._take_valley_fill(q, r, j)
                continue
            for k, (a, b) in enumerate(q.windows):
                buyback = float(price[b:b + day].min()) if b < n_clock else float(price[max(0, a - day):b].min())
                self.event_at[a:b] = len(self.events)
                self.events.append({"j": j if k == 0 else (j, k), "start": a, "end": b, "announce": q.visible_step,
                                    "reward": r.price_cny_per_kwh, "target_kwh": r.e_kwh,
                                    "max_reward": r.price_cap_cny_per_kwh or r.price_cny_per_kwh,
                                    "hours": (b - a) * self.context.dt_h, "expected_kwh": float("nan"),
                                    "buyback_price": buyback, "invited": 0, "accepted": 0, "energy_kwh": 0.0, "responders": None})

    def _take_valley_fill(self, q, r, j) -> None:
        """A visible valley fill: one charging invitation per window, at the request's price
        (:mod:`v2gsim.strategies.distributed_valley`)."""
        for k, (a, b) in enumerate(q.windows):
            self.vf_at[a:b] = len(self.vf_events)
            self.vf_events.append({"j": j if k == 0 else (j, k), "start": a, "end": b, "announce": q.visible_step,
                                   "reward": float(r.price_cny_per_kwh), "target_kwh": r.e_kwh,
                                   "max_reward": float(r.price_cap_cny_per_kwh or r.price_cny_per_kwh),
                                   "hours": (b - a) * self.context.dt_h, "invited": 0,
                                   "accepted": 0, "expected_kwh": float("nan"), "energy_kwh": 0.0, "paid_cny": 0.0, "yes": None})

    def _announce_valley(self, ev: dict, f, n: int) -> None:
        """Enrolled drivers answer a charging invitation (one draw each, spawn key ``(2, j)``)."""
        from v2gsim.strategies.distributed_valley import VALLEY_STREAM, valley_answer_probability, valley_room_kwh, valley_target_kwh

        invited = np.flatnonzero(self.enrol_draw & f.bidirectional & self.seen)
        top = self.config.valley_top_up_soc
        room_soc = np.maximum(0.0, valley_target_kwh(f, invited, top) - f.e_kwh[invited]) / f.capacity_kwh[invited]
        room_kwh = valley_room_kwh(f, invited, top, ev["hours"])
        # sized as a discharge call's, on the answer probability x room
        ev["reward"] = sized_reward(ev, lambda r: float((valley_answer_probability(self.b0, self.config.drivers, r, room_soc)
                                                         * room_kwh).sum()))
        p = valley_answer_probability(self.b0, self.config.drivers, ev["reward"], room_soc)
        u = self._answer_rng(ev["j"], VALLEY_STREAM).random(n)[invited]
        yes = u < p
        ev["yes"] = np.zeros(n, bool)
        ev["yes"][invited[yes]] = True
        ev["invited"], ev["accepted"] = int(invited.size), int(yes.sum())
        ev["expected_kwh"] = float((p * room_kwh).sum())

    def _valley_step(self, s: int, f, n: int) -> tuple[np.ndarray | None, int]:
        """Announce the valley fills due; the drivers who hold their charging for a window to come
        (accepted, staying past its end by their stated departure, and at most a day before its
        start: a daily request's later windows are answered at its notice too, and nobody waits
        days for them), bool (N,) or None; and the valley fill whose window holds step ``s`` (-1: none)."""
        hold = None
        for ev in self.vf_events:  # a handful of windows: a loop over events, not vehicles
            if ev["end"] <= s:
                continue
            if ev["yes"] is None and ev["announce"] <= s:
                self._announce_valley(ev, f, n)
            if ev["yes"] is not None and ev["start"] - self._day_steps <= s < ev["start"]:
                h = ev["yes"] & (f.t_depart_est_step >= ev["end"])
                hold = h if hold is None else hold | h
        k = int(self.vf_at[s]) if s < self.vf_at.size else -1
        return hold, (k if k >= 0 and self.vf_events[k]["yes"] is not None else -1)

    def actors(self, engine) -> list:
        """Its valley-fill reward payments to drivers (:class:`~v2gsim.strategies.distributed_valley.ValleyRewards`)."""
        from v2gsim.strategies.distributed_valley import ValleyRewards

        return [ValleyRewards(self, engine)]

    # ------------------------------------------------------------------ traits

    def _traits(self, n: int) -> None:
        d = self.config.drivers
        ss = self.context.seed_seq or np.random.SeedSequence(0)
        rng = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (0,)))
        u_enrol, u_smart = rng.random(n), rng.random(n)
        self.z_anx, self.z_wear = rng.standard_normal(n), rng.standard_normal(n)
        self._u_enrol = u_enrol
        self.enrol_draw = u_enrol < d.enrol_probability  # redrawn under a contract (_enrol_under_contract)
        self.smart = u_smart < d.smart_charging_share
        # more anxious drivers keep a larger reserve
        self.delay_steps = np.floor(rng.random(n) * d.start_spread_h / self.context.dt_h).astype(np.int64)
        self.reserve_extra_soc = np.clip(d.reserve_extra_soc_mean + d.reserve_extra_soc_sd * self.z_anx, 0.0, 1.0)
        self.seen = np.zeros(n, bool)  # drivers who have plugged in at this aggregator's sites
        self.accepted = np.zeros(n, bool)  # answer to the current invitation
        self._prev_idx = np.empty(0, np.int64)
        self._prev_e_dis = np.empty(0)
        self._prev_event = -1
        self.granted = np.zeros(n, bool)  # a start slot in the current cheapest block (valley_fill)
        self._granted_block = -1
        self._n = n
        self._fleet = None

    def _answer_rng(self, j: int, branch: int = 1) -> np.random.Generator:
        ss = self.context.seed_seq or np.random.SeedSequence(0)
        key = (branch, *j) if isinstance(j, tuple) else (branch, j)  # a daily request's later windows: (request, day)
        return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + key))

    def reserve_kwh(self, fleet) -> np.ndarray:
        """Each driver's V2G floor, shape (N,), kWh: min departure energy plus their extra reserve."""
        return np.minimum(fleet.e_min_departure_kwh + self.reserve_extra_soc * fleet.capacity_kwh, 0.95 * fleet.capacity_kwh)

    def answer_probability(self, reward: float, soc_margin: np.ndarray, idx: np.ndarray, shift_cny_per_kwh=0.0) -> np.ndarray:
        """Probability that drivers ``idx`` accept an invitation, shape (k,). ``shift_cny_per_kwh``
        (scalar or (k,)) is what each driver's net benefit per kWh differs from the bare reward
        at the anchor's perceived wear (:meth:`benefit_shift`)."""
        d = self.config.drivers
        u = (self.b0 + d.reward_slope_per_cny * (reward + shift_cny_per_kwh) + d.soc_margin_slope * (soc_margin - d.soc_margin_ref)
             - d.anxiety_weight * self.z_anx[idx] - d.wear_fear_weight * self.z_wear[idx])
        return np.where(soc_margin > 0, 1.0 / (1.0 + np.exp(-u)), 0.0)

    def _wear_cost(self, fleet, idx, hours: float | None = None) -> np.ndarray:
        """Wear cost per kWh discharged each driver ``idx`` (k,) perceives: the constant, or with
        ``model`` the wear model's price of a kWh fed back and recharged, for the V2G cycle each
        would run now (:func:`v2gsim.market.contracts.v2g_wear_cny_per_kwh`, the one reader): down
        to the driver's reserve (:meth:`reserve_kwh`), at most an invitation's ``hours`` at the
        pile's power where the driver is plugged. Per battery kWh discharged, as the constant: that
        price (per grid kWh fed back) x eta_d."""
        w = self.config.wear_cny_per_kwh
        if w == "model":
            from v2gsim.market.contracts import v2g_wear_cny_per_kwh

            floor = self.reserve_kwh(fleet)[idx]
            if hours is not None:
                p = fleet.p_plug_max_kw[idx]
                floor = np.where(p > 0, np.maximum(floor, fleet.e_kwh[idx] - p * hours / fleet.eta_discharge[idx]), floor)
            return v2g_wear_cny_per_kwh(fleet, idx, floor) * fleet.eta_discharge[idx]
        return np.full(idx.size, float(w))

    @staticmethod
    def _model_wear(f):
        """The wear model's price of a kWh fed back, a callable ``idx -> (k,)`` over fleet ``f``
        (what a contract's ``from_wear_model`` compensation pays, :meth:`DriverTerms.compensation`)."""
        from v2gsim.market.contracts import v2g_wear_cny_per_kwh

        return lambda idx: v2g_wear_cny_per_kwh(f, idx)

    def paid_per_kwh(self, reward: float, f, idx: np.ndarray) -> np.ndarray:
        """What drivers ``idx`` (k,) are paid per kWh fed back at ``reward``: the reward, or under
        their contract with this aggregator (``context.contract``) their share of it plus the
        wear compensation. Shape (k,), CNY/kWh."""
        t = self.context.contract
        if t is None:
            return np.full(idx.size, float(reward))
        paid = t.share[idx] * reward + t.compensation(idx, self._model_wear(f))
        return np.where(t.covered[idx], paid, float(reward))

    def benefit_shift(self, reward: float, f, idx: np.ndarray, hours: float | None = None) -> np.ndarray:
        """The net benefit per kWh of drivers ``idx`` (k,), paid minus perceived wear, less the
        anchor's (``reward − anchor_wear_cny_per_kwh``): 0 for a driver without a contract who
        perceives the anchor's wear, so the calibration holds. Shape (k,), CNY/kWh."""
        d = self.config.drivers
        return (self.paid_per_kwh(reward, f, idx) - self._wear_cost(f, idx, hours)) - (reward - d.anchor_wear_cny_per_kwh)

    def _profitable(self, reward: float, f, idx: np.ndarray, buyback: float, hours: float | None = None) -> np.ndarray:
        """Drivers ``idx`` whose pay per kWh beats buying it back plus wear, shape (k,)."""
        eta_c, eta_d = f.eta_charge[idx], f.eta_discharge[idx]
        return self.paid_per_kwh(reward, f, idx) > buyback / (eta_c * eta_d) + self._wear_cost(f, idx, hours) / eta_d

    def _yes(self, reward: float, f, invited: np.ndarray, margin: np.ndarray, u: np.ndarray, buyback: float,
             hours: float | None = None) -> np.ndarray:
        """Answers of drivers ``invited`` (k,) to ``reward`` for ``hours``, from their draws ``u`` (k,)."""
        yes = u < self.answer_probability(reward, margin, invited, self.benefit_shift(reward, f, invited, hours))
        if self.config.discharge_only_if_profitable:
            yes &= self._profitable(reward, f, invited, buyback, hours)
        return yes

    def _enrol_under_contract(self, f) -> None:
        """Enrolment of drivers under this aggregator's contract: the base share's logit moved by
        what the contract adds to their expected monthly V2G money (:func:`contract_gain_cny_per_month`
        at the mean invitation reward, or the anchor's without invitations). The same uniform
        draw per driver as without a contract, so a better contract never unenrols anyone."""
        t = self.context.contract
        if t is None or not t.covered.any():
            return
        d = self.config.drivers
        rewards = [inv.reward_cny_per_kwh for inv in self.config.invitations]
        r = float(np.mean(rewards)) if rewards else d.anchor_reward_cny_per_kwh
        idx = np.arange(self._n)
        comp = t.compensation(idx, self._model_wear(f))
        gain = np.where(t.covered, contract_gain_cny_per_month(t.share, comp, t.guarantee_cny_per_month, r, d.expected_v2g_kwh_per_month), 0.0)
        self.enrol_p = enrol_probability(d.enrol_probability, gain, d.enrol_slope_per_cny_month)
        self.enrol_draw = self._u_enrol < self.enrol_p

    def enrolled(self) -> np.ndarray | None:
        """Drivers enrolled (and so invited): they drew enrolment, drive a bidirectional vehicle and
        have plugged in at this aggregator's sites. Bool (N,)."""
        if self._fleet is None:
            return None
        return self.enrol_draw & self._fleet.bidirectional & self.seen

    def _expected_kwh(self, reward: float, f, invited, margin, ev) -> float:
        """Energy the aggregator expects an invitation at ``reward`` to deliver (grid side): each
        driver's answer probability times what they could feed back in the window, counting only
        drivers plugged at a bidirectional pile when it is announced (the aggregator's guess of
        who will be plugged then)."""
        p = self.answer_probability(reward, margin, invited, self.benefit_shift(reward, f, invited, ev["hours"]))
        if self.config.discharge_only_if_profitable:
            p = np.where(self._profitable(reward, f, invited, ev["buyback_price"], ev["hours"]), p, 0.0)
        room = np.maximum(0.0, margin) * f.capacity_kwh[invited] * f.eta_discharge[invited]
        can = np.minimum(room, f.p_plug_max_kw[invited] * ev["hours"]) * f.can_discharge[invited]
        return float((p * can).sum())

    def _announce_event(self, ev: dict, fleet, n: int) -> None:
        f = fleet
        invited = np.flatnonzero(self.enrol_draw & f.bidirectional & self.seen)
        margin = (f.e_kwh[invited] - self.reserve_kwh(f)[invited]) / f.capacity_kwh[invited]
        u = self._answer_rng(ev["j"]).random(n)[invited]  # one draw per driver, whatever the reward
        ev["reward"] = sized_reward(ev, lambda r: self._expected_kwh(r, f, invited, margin, ev))
        ev["expected_kwh"] = self._expected_kwh(ev["reward"], f, invited, margin, ev)
        yes = self._yes(ev["reward"], f, invited, margin, u, ev["buyback_price"], ev["hours"])
        self.accepted[:] = False
        self.accepted[invited[yes]] = True
        ev["invited"], ev["accepted"] = int(invited.size), int(yes.sum())
        ev["responders"] = np.zeros(n, bool)

    def _book_discharge(self, fleet, step: int) -> None:
        """Energy the previous step's discharge requests delivered, booked to their event."""
        if self._prev_event >= 0 and self._prev_idx.size and not (step == self.context.n_warmup and step > 0):
            delta = fleet.e_discharged_kwh[self._prev_idx] - self._prev_e_dis
            ev = self.events[self._prev_event]
            ev["energy_kwh"] += float(delta.sum())
            ev["responders"][self._prev_idx[delta > 1e-9]] = True
        self._prev_event = -1
        self._prev_idx = np.empty(0, np.int64)

    # ------------------------------------------------------------------ the step

    def decide(self, obs: Observation) -> Dispatch:
        f = obs.fleet
        n = f.e_kwh.size
        if self._n != n:
            self._traits(n)
            self._enrol_under_contract(f)
        self._fleet = f
        s = obs.step
        self._book_discharge(f, s)
        np.logical_or(self.seen, obs.plugged, out=self.seen)
        if obs.requests is not self._req_seen:
            self._take_requests(obs.requests)
        while self._answered < len(self.events) and self.events[self._answered]["announce"] <= s:
            self._announce_event(self.events[self._answered], f, n)
            self._answered += 1
        e_now = self.event_at[s] if s < self.event_at.size else -1
        hold, vf_now = self._valley_step(s, f, n) if self.vf_events else (None, -1)
        # outside invitations only vehicles below their full point can want anything (a valley
        # fill's top-up may go past it)
        idx = obs.plugged_idx if e_now >= 0 or vf_now >= 0 else obs.wanting_idx
        p_kw = np.zeros(idx.size)
        busy = np.zeros(idx.size, bool)
        v2g_price = None
        if e_now >= 0:
            ev = self.events[e_now]
            v2g_price = ev["reward"]
            acc = self.accepted[idx]
            busy = acc  # accepting drivers do not charge during the window
            can = acc & f.can_discharge[idx]
            if can.any():
                v = idx[can]
                room_kwh = np.maximum(0.0, f.e_kwh[v] - np.maximum(self.reserve_kwh(f)[v], f.e_min_departure_kwh[v]))
                p_dis = np.minimum(f.p_plug_max_kw[v], room_kwh * f.eta_discharge[v] / obs.dt_h)
                p_kw[can] = -p_dis
                go = p_dis > 1e-9
                self._prev_idx, self._prev_e_dis, self._prev_event = v[go], f.e_discharged_kwh[v[go]].copy(), e_now
        # charging
        want = obs.below_stop[idx] & ~busy
        vf_yes = None
        if vf_now >= 0:  # accepting drivers charge at full power in the valley fill's window
            vf_yes = self.vf_events[vf_now]["yes"][idx] & ~busy
            want &= ~vf_yes
        if hold is not None:  # ... and wait for it until then
            want &= ~hold[idx]
        if want.any():
            w = idx[want]
            p_full = np.minimum(f.p_plug_max_kw[w], (f.e_stop_kwh[w] - f.e_kwh[w]) / (f.eta_charge[w] * obs.dt_h))
            go = ~self.smart[w] | self._cheap_enough(w, f, s, obs.dt_h, p_full, obs)
            p_kw[want] = np.where(go, p_full, 0.0)
        if vf_yes is not None and vf_yes.any():
            from v2gsim.strategies.distributed_valley import valley_target_kwh

            v = idx[vf_yes]
            e_to = valley_target_kwh(f, v, self.config.valley_top_up_soc)
            p_kw[vf_yes] = np.minimum(f.p_plug_max_kw[v], np.maximum(0.0, e_to - f.e_kwh[v]) / (f.eta_charge[v] * obs.dt_h))
        offer = self.offer_at[s] if s < self.offer_at.size else np.nan
        keep = p_kw != 0.0  # vehicles left out draw nothing; the engine need not step them
        self._prev_draw_kw = float(p_kw.sum())
        return Dispatch(idx[keep], p_kw[keep], price_cny_per_kwh=None if np.isnan(offer) else float(offer), v2g_price_cny_per_kwh=v2g_price)

    def _cheap_enough(self, w: np.ndarray, f, s: int, dt_h: float, p_full: np.ndarray, obs: Observation) -> np.ndarray:
        """Smart drivers ``w``: do they charge this step? Shape (k,). ``p_full`` (k,) is what each
        would draw."""
        d = np.clip(f.t_depart_est_step[w], s, self.level.size)
        need_kwh = np.maximum(0.0, f.e_min_departure_kwh[w] - f.e_kwh[w])
        per_slot = np.maximum(f.p_plug_max_kw[w] * f.eta_charge[w] * dt_h, 1e-12)
        k_req = np.ceil(need_kwh / per_slot - 1e-9).astype(np.int64)
        k_req = np.where(k_req > 0, k_req + 1, 1)  # one slot of margin for taper and site limits
        cnt = self.cum[:, d] - self.cum[:, s][:, None]  # (levels, k)
        thr = np.argmax(cnt >= k_req[None, :], axis=0)
        feasible = cnt[-1] >= k_req  # else no room to wait: charge now
        go = self.level[s] <= thr
        # in the cheapest block, a driver with slack starts when given a slot
        cheapest = np.argmax(cnt >= 1, axis=0)
        opportunistic = feasible & go & (thr == cheapest) & (self.level[s] == cheapest)
        if opportunistic.any():
            o = np.flatnonzero(opportunistic)
            k_full = np.ceil((f.e_stop_kwh[w[o]] - f.e_kwh[w[o]]) / per_slot[o] - 1e-9) + 1
            slack = np.maximum(0, cnt[cheapest[o], o] - k_full)
            if self.config.orderly.mode == "random_delay":
                go[o] = (s - self.run_start[s]) >= np.minimum(self.delay_steps[w[o]], slack)
            else:
                others_kw = float(p_full[go & ~opportunistic].sum()) + float(p_full[~feasible].sum()) + self._other_draw_kw(obs, w)
                # planned to be full finish_margin_h before the stated departure: the cheapest
                # steps left before then, less the steps to full
                d_m = np.maximum(s, d[o] - int(round(self.config.orderly.finish_margin_h / dt_h)))
                slack = np.maximum(0, self.cum[cheapest[o], d_m] - self.cum[cheapest[o], s] - k_full)
                # the share of each driver's energy due in this run of cheapest steps: spread
                # evenly over the cheapest steps left before the departure (a workday stay
                # may span two such runs)
                run_left = np.minimum(int(self.run_end[s]), d[o]) - s
                due = np.clip(run_left / np.maximum(cnt[cheapest[o], o], 1), 0.0, 1.0)
                go[o] = self._grant_slots(w[o], slack, p_full[o], f, s, dt_h, others_kw, obs, due, np.minimum(d_m, int(self.run_end[s])))
        return ~feasible | go

    def _other_draw_kw(self, obs: Observation, w: np.ndarray) -> float:
        """Load of this aggregator's non-smart drivers this step (they charge at once)."""
        idx = obs.wanting_idx
        dumb = idx[~self.smart[idx]]
        f = obs.fleet
        return float(np.minimum(f.p_plug_max_kw[dumb], (f.e_stop_kwh[dumb] - f.e_kwh[dumb]) / (f.eta_charge[dumb] * obs.dt_h)).sum())

    def _grant_slots(self, v: np.ndarray, slack: np.ndarray, p_kw: np.ndarray, f, s: int, dt_h: float,
                     others_kw: float, obs: Observation, due: np.ndarray, deadline: np.ndarray) -> np.ndarray:
        """Valley filling: which of the drivers ``v`` (k,) with ``slack`` steps to spare in the
        cheapest block charge now; ``due`` (k,) is the share of each one's energy due in this
        run of the block, ``deadline`` (k,) the step by which it is due. Shape (k,)."""
        block = int(self.run_start[s])
        if block != self._granted_block:  # a new cheapest block: every slot is given anew
            self.granted[:] = False
            self._granted_block = block
        self.granted &= obs.plugged & obs.below_stop  # a slot ends when the driver is full or gone
        e = int(self.run_end[s])
        # energy the block must deliver to these drivers (grid side) and the level that fills it
        e_kwh = due * (f.e_stop_kwh[v] - f.e_kwh[v]) / f.eta_charge[v]
        t_due = np.minimum(deadline, e)
        # no driver can take more in the run than its power over the steps it has left there
        e_kwh = np.minimum(e_kwh, p_kw * dt_h * np.maximum(1, t_due - s))
        # the lowest level that meets every deadline: for each deadline t, the energy due by t
        # fills the valley of [s, t) (earliest-deadline feasibility; at most one block of steps)
        level_kw = water_level(self.base_fc_kw[s:e], float(e_kwh.sum()), dt_h)
        for t in np.unique(t_due[(t_due > s) & (t_due < e)]):
            level_kw = max(level_kw, water_level(self.base_fc_kw[s:t], float(e_kwh[t_due <= t].sum()), dt_h))
        room_kw = max(0.0, level_kw - self.base_fc_kw[s])
        # never beyond the transformer's forecast room nor the room measured after the last step
        # (which holds what the other operators drew then: assumed to go on drawing it)
        cap_kw = self.room_fc_kw[s]
        if np.isfinite(obs.feeder_headroom_kw):
            cap_kw = min(cap_kw, obs.feeder_headroom_kw + self._prev_draw_kw)
        room_kw = min(room_kw, cap_kw) - others_kw
        go = self.granted[v] | (slack <= 0)
        room_kw -= float(p_kw[go].sum())
        rest = np.flatnonzero(~go)
        if rest.size and room_kw > 0:
            order = rest[np.lexsort((v[rest], slack[rest]))]  # least slack first, ties by vehicle
            fits = np.cumsum(p_kw[order]) <= room_kw + 1e-9
            go[order[fits]] = True
        self.granted[v[go]] = True
        return go

    #: it bids for discharge calls (its drivers feed back) and valley fills (they charge sooner)
    bid_kinds = ("discharge_call", "valley_fill")

    def bid(self, request, obs: Observation):
        """Its offer to a discharge call put to clearing: the power its enrolled drivers plugged at
        a bidirectional pile now are expected to give over the window (each one's answer
        probability at the reward times what it could feed), at the reward it would pay them --
        the request's price cap (or its price): the aggregator passes the price on. A valley fill:
        :meth:`_valley_bid`."""
        from v2gsim.market.clearing import Bid

        f = obs.fleet
        n = f.e_kwh.size
        if self._n != n:
            self._traits(n)
        a, b = request.windows[0]
        r = request.request
        reward = r.price_cap_cny_per_kwh if r.price_cap_cny_per_kwh is not None else r.price_cny_per_kwh
        if request.kind == "valley_fill":
            return self._valley_bid(obs, a, b, float(reward))
        invited = np.flatnonzero(self.enrol_draw & f.bidirectional & obs.plugged & f.can_discharge)  # plugged now: seen
        margin = (f.e_kwh[invited] - self.reserve_kwh(f)[invited]) / f.capacity_kwh[invited]
        prices = self.price_eff
        day = self._day_steps
        ev = {"hours": (b - a) * obs.dt_h, "buyback_price": float(prices[b:b + day].min()) if b < prices.size else float(prices[a:b].min())}
        e_kwh = self._expected_kwh(reward, f, invited, margin, ev) if invited.size else 0.0
        return Bid(self.context.operator_id, e_kwh / ev["hours"], float(reward))

    def _valley_bid(self, obs: Observation, a: int, b: int, reward: float):
        """Its offer to a valley fill put to clearing: the power its enrolled drivers plugged now
        and staying past the window (by their stated departure) are expected to add in it -- each
        one's answer probability to a charging invitation at the reward times the energy it could
        take there (room below its target through the charging losses, at most its plug power over
        the window) -- at the reward it would pay them (the price cap, or the price)."""
        from v2gsim.market.clearing import Bid
        from v2gsim.strategies.distributed_valley import valley_answer_probability, valley_room_kwh, valley_target_kwh

        f = obs.fleet
        hours = (b - a) * obs.dt_h
        v = np.flatnonzero(self.enrol_draw & f.bidirectional & obs.plugged & (f.t_depart_est_step >= b))
        if v.size == 0 or hours <= 0:
            return Bid(self.context.operator_id, 0.0, reward)
        top = self.config.valley_top_up_soc
        room_soc = np.maximum(0.0, valley_target_kwh(f, v, top) - f.e_kwh[v]) / f.capacity_kwh[v]
        p = valley_answer_probability(self.b0, self.config.drivers, reward, room_soc)
        e_kwh = float((p * valley_room_kwh(f, v, top, hours)).sum())
        return Bid(self.context.operator_id, e_kwh / hours, reward)

    # ------------------------------------------------------------------ counters

    def kpis(self) -> dict[str, float]:
        if self._fleet is not None and self._prev_idx.size:
            self._book_discharge(self._fleet, -1)
        rec = sorted((ev for ev in self.events if ev["start"] >= self.context.n_warmup and ev["responders"] is not None),
                     key=lambda ev: ev["start"])  # stable: requests in order of position
        sent = sum(ev["invited"] for ev in rec)
        responding = sum(int(ev["responders"].sum()) for ev in rec)
        energy = sum(ev["energy_kwh"] for ev in rec)
        out = {
            "invitations": float(len(rec)),
            "invitations_sent": float(sent),
            "drivers_accepting": float(sum(ev["accepted"] for ev in rec)),
            "drivers_responding": float(responding),
            "participation_rate": responding / sent if sent else float("nan"),
            "event_energy_kwh": float(energy),
            "energy_per_event_kwh": energy / len(rec) if rec else float("nan"),
            "enrolled_drivers": float((self.enrol_draw & self._fleet.bidirectional & self.seen).sum()) if self._n else 0.0,
        }
        vf = [ev for ev in self.vf_events if ev["start"] >= self.context.n_warmup and ev["yes"] is not None]
        if vf:  # valley fills (charging invitations): only when there were any, so other runs keep their KPIs
            out["valley_invitations"] = float(len(vf))
            out["valley_invitations_sent"] = float(sum(ev["invited"] for ev in vf))
            out["valley_drivers_accepting"] = float(sum(ev["accepted"] for ev in vf))
            out["valley_expected_kwh"] = float(sum(ev["expected_kwh"] for ev in vf))
            out["valley_energy_kwh"] = float(sum(ev["energy_kwh"] for ev in vf))
            out["valley_reward_cny"] = float(sum(ev["paid_cny"] for ev in vf))
        for k, ev in enumerate(rec):
            out[f"event{k}_energy_kwh"] = float(ev["energy_kwh"])
            out[f"event{k}_drivers_responding"] = float(ev["responders"].sum())
            # delivered vs requested, per invitation (requested: the target; NaN without one)
            out[f"event{k}_requested_kwh"] = float(ev["target_kwh"]) if ev["target_kwh"] is not None else float("nan")
            out[f"event{k}_expected_kwh"] = float(ev["expected_kwh"])
            out[f"event{k}_reward_cny_per_kwh"] = float(ev["reward"])
            out[f"event{k}_delivered_share"] = (float(ev["energy_kwh"]) / ev["target_kwh"]) if ev["target_kwh"] else float("nan")
        return out
