"""The feeder: one transformer with a rating that sums every load on it (`Feeder`), or a real
pandapower network with a power flow every step (`NetworkFeeder`)."""

from __future__ import annotations

import mesa
import numpy as np

from v2gsim.engine.actor import Actor, GridInjections, Signals

_SQRT3 = float(np.sqrt(3.0))


class Feeder(Actor, mesa.Agent):
    """Transformer loading from the net active power at a power factor.

    loading_pct = |P| / (pf * S_rated) * 100; headroom_kw = pf * S_rated - P. As an actor it is
    the last of the grid phase: it solves the net power every other actor injected.
    """

    def __init__(self, model, transformer_kva: float, power_factor: float):
        super().__init__(model)
        self.transformer_kva = transformer_kva
        self.power_factor = power_factor
        self.loading_pct = 0.0
        self.headroom_kw = float("inf")

    @property
    def rating_kw(self) -> float:
        return self.transformer_kva * self.power_factor

    def solve(self, net_load_kw: float) -> None:
        self.loading_pct = abs(net_load_kw) / self.rating_kw * 100.0
        self.headroom_kw = self.rating_kw - net_load_kw

    def grid(self, sig: Signals, injections: GridInjections) -> None:
        self.solve(injections.net_kw)


class NetworkFeeder(Actor, mesa.Agent):
    """A real distribution network (pandapower) solved every step.

    Built once: the network is loaded, per-load base profiles and per-sgen PV profiles are
    precomputed for the whole clock, sites are placed on buses and one EV load element is added
    per bus that hosts chargers. Each step, EV power is summed onto those loads
    (``np.bincount``) and the power flow (`PowerFlow`, or `CapacityOnly`) is solved. A step that
    does not converge is flagged (``converged`` False, results NaN); its headroom then comes from
    a transformer-sum estimate so strategies still see a limit.

    Args:
        model: the V2GModel (needs ``clock``, ``config``, ``fleet``).
        base_total_kw: total base load per clock step [n_clock] for ``base_load.from: standard``
            (or csv), split over the network's loads in proportion to their rating; None with
            ``from: network_profiles``.
        rng: placement stream.
        actors: the model's other actors; those with ``connections`` of their own (swap
            stations) are placed on buses in this order.

    Attributes (after each ``solve``):
        loading_pct: most loaded transformer, %.
        headroom_kw: extra active power the worst-placed bus could take (transformer and most
            loaded line; see `v2gsim.physics.grid.headroom_kw`).
        result: the step's `PowerFlowResult`.
        converged: bool.
        last_p_mw, last_q_mvar, last_p_sgen_mw: the injections of the last solve, per net.load /
            net.sgen row (for checks against ``pandapower.runpp``).
    """

    def __init__(self, model, base_total_kw: np.ndarray | None, rng: np.random.Generator, actors=()):
        super().__init__(model)
        import pandapower as pp

        from v2gsim.errors import Problem, ScenarioError
        from v2gsim.physics.grid import CapacityOnly, PowerFlow, energised_buses, unsupported_reason
        from v2gsim.physics.networks import assign_buses, check_bus, load_buses, load_network, network_profiles

        fc = model.config.feeder
        self.spec = fc.network
        self.solver_kind = fc.solver
        self.limit_pct = fc.loading_limit_pct
        self.power_factor = fc.power_factor
        net = load_network(fc.network)
        net.name = net.name or fc.network
        reason = unsupported_reason(net) if fc.solver == "ac" else None
        if reason:  # validation decides SimBench codes by their code; this is the net itself
            from v2gsim.scenario.network_checks import unsupported_problem

            raise ScenarioError([unsupported_problem(fc.network, reason)])
        n_clock = len(model.clock)
        prof_p, prof_pv = network_profiles(net, model.clock[0], model.config.time.step_min, n_clock)
        on = net.load["in_service"].to_numpy(bool)
        sc = net.load["scaling"].to_numpy(float)
        p_rated = net.load["p_mw"].to_numpy(float) * sc
        q_rated = net.load["q_mvar"].to_numpy(float) * sc
        tan_phi = np.tan(np.arccos(fc.power_factor))
        with np.errstate(divide="ignore", invalid="ignore"):
            qp = np.where(p_rated != 0, q_rated / p_rated, tan_phi)
        if base_total_kw is None:
            base = prof_p * on
        else:
            w = np.abs(p_rated) * on
            w = w / w.sum() if w.sum() > 0 else on / max(on.sum(), 1)
            base = np.asarray(base_total_kw, float)[:, None] * w[None, :]
        # float32: the solver takes float32 injections anyway; halves memory for long runs
        self.base_p_kw = np.ascontiguousarray(base, dtype=np.float32)
        self.base_q_kvar = np.ascontiguousarray(base * qp[None, :], dtype=np.float32)
        self.pv_kw = np.ascontiguousarray(prof_pv, dtype=np.float32)
        self.base_total_kw = self.base_p_kw.sum(1, dtype=np.float64)
        self.pv_total_kw = self.pv_kw.sum(1, dtype=np.float64) if self.pv_kw.shape[1] else np.zeros(n_clock)
        self.n_base = len(net.load)

        # placement: explicit buses, one drawn bus per shared site, home piles spread per vehicle
        sites = model.config.sites
        n_sites = len(sites)
        site_bus = np.full(n_sites, -1, np.int64)
        spread = np.zeros(n_sites, bool)
        auto_shared = []
        for i, s in enumerate(sites):
            if isinstance(s.bus, int):
                site_bus[i] = s.bus
            elif s.kind == "home" or s.bus == "spread":  # spread: a vehicle there draws at its own bus
                spread[i] = True
            else:
                auto_shared.append(i)
        if auto_shared:
            site_bus[auto_shared] = assign_buses(len(auto_shared), net, rng)
        n_veh = model.fleet.n
        veh_bus = assign_buses(n_veh, net, rng) if spread.any() else np.zeros(n_veh, np.int64)
        # shared sites spread over the district (bus: spread): a vehicle charging away from home
        # draws at a second bus of its own, drawn independently (its work or public charging is
        # not where it lives); drawn only when such a site exists, so other runs keep their stream
        away = spread & np.array([s.kind != "home" for s in sites], bool)
        veh_bus_away = assign_buses(n_veh, net, rng) if away.any() else None
        # the actors' own connections (swap stations): explicit bus, or drawn like a shared site
        hook_bus = np.array([b if isinstance(b, int) else -1 for a in actors for b in a.connections], np.int64)
        self._conn_first, first_conn = {}, 0
        for a in actors:
            if a.connections:
                self._conn_first[id(a)] = (first_conn, len(a.connections))
                first_conn += len(a.connections)
        if (hook_bus < 0).any():
            hook_bus[hook_bus < 0] = assign_buses(int((hook_bus < 0).sum()), net, rng)
        bad = hook_bus[~np.isin(hook_bus, net.bus.index[energised_buses(net)])]
        if bad.size:
            raise ScenarioError([Problem("business_models[].stations[].bus", check_bus(net, int(b)),
                                         "give a supplied bus index of the network or bus: auto") for b in bad])
        used = np.unique(np.concatenate([site_bus[site_bus >= 0], load_buses(net)[0] if spread.any() else [], hook_bus]).astype(np.int64))
        self.ev_buses = used
        first = len(net.load)
        if used.size:
            pp.create_loads(net, used, p_mw=0.0, q_mvar=0.0, name=[f"ev@{b}" for b in used])
        self.n_ev = used.size
        pos = {int(b): k for k, b in enumerate(used)}
        self._site_slot = np.array([pos[int(b)] if b >= 0 else -1 for b in site_bus], np.int64)
        self._veh_slot = np.array([pos[int(b)] for b in veh_bus], np.int64) if spread.any() else np.zeros(n_veh, np.int64)
        self._site_away = away
        self._veh_slot_away = np.array([pos[int(b)] for b in veh_bus_away], np.int64) if away.any() else None
        self._hook_slot = np.array([pos[int(b)] for b in hook_bus], np.int64)
        self.hook_bus = hook_bus
        self.site_bus = site_bus
        self.vehicle_bus = np.where(spread.any(), veh_bus, -1)
        self._any_spread = bool(spread.any())
        self._ev_first = first
        self.net = net

        self.solver = PowerFlow(net) if fc.solver == "ac" else CapacityOnly(net)
        self._fallback = CapacityOnly(net)
        self.n_bus, self.n_line, self.n_trafo = len(net.bus), len(net.line), len(net.trafo)
        tr_on = net.trafo["in_service"].to_numpy(bool) if self.n_trafo else np.zeros(0, bool)
        self.transformer_kva = float((net.trafo["sn_mva"] * net.trafo["parallel"]).to_numpy(float)[tr_on].sum() * 1e3) \
            if self.n_trafo else float("nan")
        # arrays for the headroom estimate (same formulas as physics.grid.headroom_kw, no pandas)
        self._tr_smax_kw = (net.trafo["sn_mva"] * net.trafo["parallel"] * net.trafo["df"]).to_numpy(float) * 1e3 * self.limit_pct / 100.0
        line = net.line
        bpos = net.bus.index
        self._line_from = bpos.get_indexer(line["from_bus"]) if self.n_line else np.zeros(0, np.int64)
        self._line_vn_kv = net.bus["vn_kv"].to_numpy(float)[self._line_from] if self.n_line else np.zeros(0)
        self._line_imax_ka = (line["max_i_ka"] * line["df"] * line["parallel"]).to_numpy(float)
        self._is_ac = fc.solver == "ac"

        n_load = len(net.load)
        self.last_p_mw = np.zeros(n_load)
        self.last_q_mvar = np.zeros(n_load)
        self.last_p_sgen_mw = np.zeros(len(net.sgen))
        self.loading_pct = 0.0
        self.headroom_kw = float("inf")
        self.converged = True
        self.result = None

    def connection_bus_kw(self, actor: Actor, p_kw: np.ndarray) -> np.ndarray:
        """Power ``p_kw`` at each of ``actor``'s own connections (its ``connections``), per EV load element [n_ev]."""
        first, k = self._conn_first[id(actor)]
        return np.bincount(self._hook_slot[first : first + k], weights=p_kw, minlength=self.n_ev)

    def grid(self, sig: Signals, injections: GridInjections) -> None:
        injections.net_kw -= self.pv_total_kw[sig.step]
        self.solve(sig.step, injections.per_load_kw)

    def site_bus_kw(self, site: int | None, p_kw: float) -> np.ndarray:
        """A connection drawing ``p_kw`` at site index ``site``, per EV load element [n_ev]: at the
        site's bus; a home site without one (piles spread over buses), or no site, shares it
        equally over the EV load elements."""
        out = np.zeros(self.n_ev)
        slot = int(self._site_slot[site]) if site is not None else -1
        if slot >= 0:
            out[slot] = p_kw
        elif self.n_ev:
            out[:] = p_kw / self.n_ev
        return out

    def ev_bus_kw(self, idx: np.ndarray, p_kw: np.ndarray, site_of_idx: np.ndarray) -> np.ndarray:
        """EV power per EV load element [n_ev] from vehicle powers ``p_kw`` [len(idx)] at sites."""
        slot = self._site_slot[site_of_idx]
        if self._any_spread:
            own = self._veh_slot[idx]
            if self._veh_slot_away is not None:
                own = np.where(self._site_away[site_of_idx], self._veh_slot_away[idx], own)
            slot = np.where(slot < 0, own, slot)
        return np.bincount(slot, weights=p_kw, minlength=self.n_ev)

    def solve(self, s: int, ev_kw_per_load: np.ndarray) -> None:
        """Solve clock step ``s`` with EV power per EV load element (kW, > 0 charging)."""
        p = self.last_p_mw
        q = self.last_q_mvar
        nb = self.n_base
        p[:nb] = self.base_p_kw[s]
        p[:nb] *= 1e-3
        p[nb:] = ev_kw_per_load * 1e-3
        q[:nb] = self.base_q_kvar[s]
        q[:nb] *= 1e-3  # EV chargers at unity power factor: q stays 0
        ps = self.last_p_sgen_mw
        if ps.size:
            ps[:] = self.pv_kw[s]
            ps *= 1e-3
        r = self.solver.solve(p, q, ps if ps.size else None)
        self.result = r
        self.converged = bool(r.converged)
        if r.converged:
            self.loading_pct = r.trafo_loading_max_pct
            self.headroom_kw = self._headroom(r, self._is_ac)
        else:
            self.loading_pct = float("nan")
            self.headroom_kw = self._headroom(self._fallback.solve(p, q, ps if ps.size else None), False)

    def _headroom(self, r, with_lines: bool) -> float:
        p, q = r.p_trafo_kw, r.q_trafo_kvar
        s_max = self._tr_smax_kw
        per = np.where(s_max >= np.abs(q), np.sqrt(np.maximum(s_max**2 - q**2, 0.0)) - p, -p)
        per = per[np.isfinite(per)]
        head = float(per.min()) if per.size else float("inf")
        lmax = r.line_loading_max_pct
        if with_lines and lmax == lmax and lmax > 0:  # not NaN
            k = int(np.nanargmax(r.line_loading_pct))
            v_kv = self._line_vn_kv[k] * r.vm_pu[self._line_from[k]]
            s_lim = _SQRT3 * v_kv * self._line_imax_ka[k] * 1e3 * self.limit_pct / 100.0
            head = min(head, s_lim - s_lim * lmax / self.limit_pct)
        return head
