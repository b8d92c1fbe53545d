"""The grid operator: the actor that owns a run's grid requests (:mod:`v2gsim.market.events`)."""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd

from v2gsim.engine.actor import Actor, Signals
from v2gsim.market.events import SETTLEMENT_COLUMNS, GridOperatorConfig, IssuedRequest, settle_window, window_times

__all__ = ["GridOperator"]


class GridOperator(Actor, mesa.Agent):
    """The grid company's dispatch: owns the run's requests, publishes in the signals phase those
    whose notice has passed (in :attr:`Signals.requests`, in order of visibility), meters the load
    of every operator it addresses each step and, at the end of each window of a request settled
    on a ``baseline``, pays the delivery and charges under-delivery in the settle phase
    (:func:`settle_window`).

    Args:
        model: the Mesa model (registration only).
        issued: the requests on the clock (:func:`issue`).
        config: the scenario's ``grid_operator`` section (settlement rules).
        operators: every operator id, in scenario order.
        clock: step start times, warm-up included (n_clock,).
        dt_h: step length, h.
        n_warmup: steps before the recording.
        meter: ``meter(sites)`` -> (net kW per operator (n_operators,), net kW at each of ``sites``
            (site indices)) this step, > 0 drawn.
        site_index: site id -> index, for requests to one site.
        bidders: operator id -> its aggregator (``bid(request, sig)`` -> a
            :class:`~v2gsim.market.clearing.Bid` or None), asked when a request is put to clearing.
        reg_meter: ``reg_meter(sites, sustain_h)`` -> (regulation capacity available both ways per
            operator (n_operators,), and at ``sites`` (k,)), kW, this step
            (:func:`v2gsim.market.regulation.headroom_kw` summed); needed to settle regulation.
        signals: request number -> its regulation signal (a 1-D array of the samples over one window).
    """

    def __init__(self, model, issued: tuple[IssuedRequest, ...], config: GridOperatorConfig | None = None, *,
                 operators: tuple[str, ...] = (), clock: pd.DatetimeIndex | None = None, dt_h: float = 0.25, n_warmup: int = 0,
                 meter=None, site_index: dict | None = None, bidders: dict | None = None, reg_meter=None,
                 signals: dict | None = None):
        super().__init__(model)
        self.issued = tuple(sorted(issued, key=lambda q: (q.visible_step, q.number)))
        self._visible_at = np.array([q.visible_step for q in self.issued], dtype=np.int64)
        self._published: tuple[IssuedRequest, ...] = ()
        self._n_seen = 0  # requests of `issued` visible so far
        self.bidders = bidders or {}  # operator id -> an object with bid(request, sig) -> Bid | None
        self.clearings: dict[int, object] = {}  # request number -> its Clearing
        self._dispatched: dict[int, dict[str, IssuedRequest]] = {}  # request number -> operator -> its dispatch
        self.config = config or GridOperatorConfig()
        self.operators = tuple(operators)
        self.clock, self.dt_h, self.n_warmup, self._meter = clock, dt_h, n_warmup, meter
        self.settled: list[tuple] = []  # one row per window and operator (SETTLEMENT_COLUMNS)
        self.curves: list[tuple[int, str, int, np.ndarray, np.ndarray]] = []  # (request, operator, first step, baseline kW, actual kW)
        self._reg_meter = reg_meter
        self._signals = signals or {}
        # regulation windows being metered: (request number, operator, first step) -> available kW per step
        self._reg_avail: dict[tuple[int, str, int], np.ndarray] = {}
        self._reg_active: dict[int, list[tuple[IssuedRequest, int, int]]] = {}
        to_settle = [q for q in self.issued if q.request.settlement == "baseline"]
        self._settling = bool(to_settle) and meter is not None and clock is not None
        if not self._settling:
            return
        n = len(clock)
        self._spd = int(round(24 / dt_h))
        self._op_pos = {op: k for k, op in enumerate(self.operators)}
        sites = sorted({site_index[q.request.site] for q in to_settle if q.request.site is not None})
        self._sites = np.array(sites, dtype=np.int64)
        self._site_pos = {s_: k for k, s_ in enumerate(sites)}
        self._site_index = site_index or {}
        self._load_op = np.zeros((n, len(self.operators)))  # metered net kW per clock step (warm-up included)
        self._load_site = np.zeros((n, len(sites)))
        # steps inside an event of each operator (their days are not similar days for its baselines)
        self._event = np.zeros((n, len(self.operators)), bool)
        for q in self.issued:
            for op in q.ranks:
                for a, b in q.windows:
                    self._event[a:b, self._op_pos[op]] = True
        # what to settle at each step: the end of each window
        self._due: dict[int, list[tuple[IssuedRequest, int, int]]] = {}
        for q in to_settle:
            for a, b in q.windows:
                self._due.setdefault(b - 1, []).append((q, a, b))
                if q.kind == "regulation":
                    for t in range(a, b):
                        self._reg_active.setdefault(t, []).append((q, a, b))

    def visible(self, step: int, sig: Signals | None = None) -> tuple[IssuedRequest, ...]:
        """The requests the operators can see at clock step ``step`` (a cleared request as each
        operator's dispatch; clearing asks the bidders, so it needs the step's ``sig``)."""
        k = int(np.searchsorted(self._visible_at, step, side="right"))
        if k != self._n_seen:
            new = []
            for q in self.issued[self._n_seen:k]:
                if q.request.clearing:
                    if sig is None:
                        raise ValueError("clearing a request needs the step's signals (the bidders see them)")
                    new += self._clear(q, sig)
                else:
                    new.append(q)
            self._n_seen = k
            self._published = self._published + tuple(new)
        return self._published

    def signals(self, sig: Signals) -> None:
        sig.requests = self.visible(sig.step, sig)

    def _clear(self, q: IssuedRequest, sig: Signals) -> list[IssuedRequest]:
        """Ask every addressed operator for a bid, clear them and return each accepted operator's
        dispatch: the request for its accepted power at the uniform price, addressed to it alone."""
        from v2gsim.market.clearing import Bid, clear

        bids = []
        for op in q.ranks:
            bidder = self.bidders.get(op)
            bid = bidder.bid(q, sig) if bidder is not None else None
            bids.append(bid if bid is not None else Bid(op, 0.0, float("inf")))
        r = q.request
        # regulation clears on the mileage price (CNY/MW), capped by the request's (Guangdong's FM
        # market clears mileage offers at one uniform price); energy requests on the price per kWh
        cap = (r.mileage_price_cny_per_mw if r.mileage_price_cny_per_mw > 0 else None) if r.kind == "regulation" \
            else r.price_cap_cny_per_kwh
        c = clear(bids, r.p_kw, cap)
        self.clearings[q.number] = c
        out = {}
        for b, kw in zip(c.bids, c.accepted_kw):
            if kw > 0:
                hours = (q.windows[0][1] - q.windows[0][0]) * self.dt_h
                if r.kind == "regulation":  # its accepted capacity, mileage paid at the uniform price
                    upd = {"mileage_price_cny_per_mw": c.price_cny_per_kwh}
                elif r.kind == "valley_fill":  # its accepted kW above its baseline over the window
                    upd = {"e_kwh": float(kw) * hours, "price_cny_per_kwh": c.price_cny_per_kwh}
                else:
                    # the accepted power is a reduction below the operator's baseline over the window
                    # (what its bid offered); its planner aims at feeding that much back
                    upd = {"e_kwh": float(kw) * hours, "price_cny_per_kwh": c.price_cny_per_kwh}
                d = r.model_copy(update=upd | {"p_kw": float(kw), "to": [b.operator_id], "clearing": False,
                                               "id": f"{q.name}.{b.operator_id}"})
                out[b.operator_id] = IssuedRequest(q.number, d.id, d, q.windows, q.visible_step, {b.operator_id: q.ranks[b.operator_id]})
        self._dispatched[q.number] = out
        return list(out.values())

    def settle(self, sig: Signals, ledger) -> None:
        if not self._settling:
            return
        s = sig.step
        ops_kw, sites_kw = self._meter(self._sites)
        self._load_op[s] = ops_kw
        self._load_site[s] = sites_kw
        for q, a, b in self._reg_active.get(s, ()):
            self._meter_regulation(q, a, b, s)
        for q, a, b in self._due.get(s, ()):
            if q.request.clearing:  # each accepted operator on its dispatch
                for op, d in self._dispatched.get(q.number, {}).items():
                    self._settle_window(d, a, b, op, sig.row, ledger)
                continue
            for op in q.ranks:
                self._settle_window(q, a, b, op, sig.row, ledger)

    def _meter_regulation(self, q: IssuedRequest, a: int, b: int, s: int) -> None:
        """Step ``s`` of a regulation window: the capacity each addressed operator holds both ways."""
        if self._reg_meter is None:
            return
        r = q.request
        site = None if r.site is None else np.array([self._site_index[r.site]], dtype=np.int64)
        ops_kw, site_kw = self._reg_meter(site if site is not None else np.empty(0, np.int64), r.sustain_min / 60.0)
        for op in q.ranks:
            got = self._reg_avail.setdefault((q.number, op, a), np.zeros(b - a))
            got[s - a] = float(site_kw[0]) if site is not None else float(ops_kw[self._op_pos[op]])

    def _settle_window(self, q: IssuedRequest, a: int, b: int, op: str, row: int, ledger) -> None:
        from v2gsim.market.baseline import similar_day_baseline
        from v2gsim.market.settlement import GRID_COMPANY

        r, cfg, k = q.request, self.config, self._op_pos[op]
        load = self._load_op[:, k] if r.site is None else self._load_site[:, self._site_pos[self._site_index[r.site]]]
        base = similar_day_baseline(load, self.clock, a, b, n_days=cfg.baseline_days, event=self._event[:, k], steps_per_day=self._spd)
        out = settle_window(r, base.p_kw, load[a:b], self.dt_h, cfg)
        reg = {"availability": np.nan, "mileage_mw": np.nan, "mileage_cny": 0.0}
        if r.kind == "regulation":
            from v2gsim.market.regulation import settle_regulation

            avail = self._reg_avail.pop((q.number, op, a), None)
            if avail is None:  # no meter (a grid operator built by hand): held as asked
                avail = np.full(b - a, float(r.p_kw or 0.0))
            sig = self._signals.get(q.number)
            reg = settle_regulation(r, avail, self.dt_h, None if sig is None else sig.reshape(b - a, -1))
            out = out | {"capacity_cny": reg["capacity_cny"], "penalty_cny": out["penalty_cny"] + reg["regulation_penalty_cny"]}
            ledger.post(row, GRID_COMPANY, op, "mileage_payment", 0.0, reg["mileage_cny"])
        if row >= 0:  # windows in the warm-up are metered (for later baselines), not paid
            ledger.post(row, GRID_COMPANY, op, "request_payment", out["paid_kwh"], out["paid_cny"])
            ledger.post(row, op, GRID_COMPANY, "request_penalty", out["short_kwh"], out["penalty_cny"])
            ledger.post(row, GRID_COMPANY, op, "capacity_payment", 0.0, out["capacity_cny"])
            t0, t1 = window_times(self.clock, self.dt_h, a, b)
            self.settled.append((q.number, q.name, r.kind, op, r.site, t0, t1, base.method, ",".join(map(str, base.days_back)),
                                 out["baseline_kwh"], out["actual_kwh"], out["asked_kwh"], out["delivered_kwh"],
                                 out["delivered_kwh"] / out["asked_kwh"] if out["asked_kwh"] > 0 else np.nan,
                                 out["paid_cny"], out["penalty_cny"], out["capacity_cny"], reg["availability"],
                                 reg["mileage_mw"], reg["mileage_cny"]))
            self.curves.append((q.number, op, a, base.p_kw.copy(), load[a:b].copy()))

    def clearing_table(self) -> pd.DataFrame:
        """One row per bid of each cleared request: ``request``, ``operator_id``, ``bid_kw``,
        ``bid_price_cny_per_kwh``, ``accepted_kw``, ``clearing_price_cny_per_kwh``, ``marginal``."""
        rows = [(n, b.operator_id, b.p_kw, b.price_cny_per_kwh, float(kw), c.price_cny_per_kwh, i == c.marginal)
                for n, c in self.clearings.items() for i, (b, kw) in enumerate(zip(c.bids, c.accepted_kw))]
        return pd.DataFrame(rows, columns=["request", "operator_id", "bid_kw", "bid_price_cny_per_kwh", "accepted_kw",
                                           "clearing_price_cny_per_kwh", "marginal"])

    def tables(self, times: pd.DatetimeIndex, clock: pd.DatetimeIndex) -> dict[str, pd.DataFrame]:
        """``grid_settlement``: one row per settled window and operator (:data:`SETTLEMENT_COLUMNS`);
        ``grid_baseline``: per step of those windows, ``baseline_kw`` and ``actual_kw`` (both only
        when a request was settled on a baseline in the recorded run); ``grid_clearing``
        (:meth:`clearing_table`) when a request was cleared."""
        out = {"grid_clearing": self.clearing_table()} if self.clearings else {}
        if not self.settled:
            return out
        rows = []
        for number, op, a, base, actual in self.curves:
            rows.append(pd.DataFrame({"request": number, "operator_id": op, "time": clock[a:a + base.size],
                                      "baseline_kw": base, "actual_kw": actual}))
        return out | {"grid_settlement": pd.DataFrame(self.settled, columns=list(SETTLEMENT_COLUMNS)),
                      "grid_baseline": pd.concat(rows, ignore_index=True)}

    def kpis(self) -> dict[str, float]:
        if not self.settled:
            return {}
        t = pd.DataFrame(self.settled, columns=list(SETTLEMENT_COLUMNS))
        return {"grid_requests_settled": float(len(t)), "grid_delivered_kwh": float(t["delivered_kwh"].sum()),
                "grid_asked_kwh": float(t["asked_kwh"].sum()), "grid_paid_cny": float(t["paid_cny"].sum()),
                "grid_penalty_cny": float(t["penalty_cny"].sum()), "grid_capacity_cny": float(t["capacity_cny"].sum())} | (
            {"grid_mileage_cny": float(t["mileage_paid_cny"].sum()), "grid_mileage_mw": float(t["mileage_mw"].sum()),
             "grid_availability": float(t.loc[t["kind"] == "regulation", "availability"].mean())}
            if (t["kind"] == "regulation").any() else {})
