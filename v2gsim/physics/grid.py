"""Per-step feeder power flow.

`PowerFlow` converts a pandapower net once into a lightsim2grid ``LSGrid`` and solves an AC
Newton-Raphson power flow per step, warm-started from the previous solution. Results follow
pandapower's definitions, so they agree with ``pandapower.runpp`` on the same net and loads
(tests/test_grid_agreement.py; every listed network in ``bench/bench_feeder.py --agreement``):

- bus voltages in p.u. and angles in degrees, over ``net.bus.index`` order (NaN for buses no
  ext_grid supplies, as in pandapower),
- line loading = max(|I_from|, |I_to|) / (max_i_ka · df · parallel) · 100,
- trafo loading = max(|I_hv|·vn_hv, |I_lv|·vn_lv)·√3 / sn_mva / parallel / df · 100 (pandapower's
  default ``trafo_loading="current"``).

Every in-service ext_grid is a slack bus held at its own ``vm_pu`` and ``va_degree``, as in
pandapower (not a shared, distributed slack), so a network fed at several points, or made of
several islands each with its own ext_grid, is solved as runpp solves it; islands without one
are left unsolved and counted. The conversion also does what lightsim2grid's own converter does
not: bus-bus switches (closed ones fuse buses), open line/trafo switches and lines at
out-of-service buses (that end is open, the branch keeps its charging from the other),
``parallel`` > 1 lines and trafos, gen/storage scaling, shunt steps, pandapower 3's tap rules.
What it cannot model (trafo3w, wards, impedances, DC lines, voltage-dependent loads, ...) is
rejected with the reason (`unsupported_reason`) rather than solved differently.

`CapacityOnly` has the same ``solve`` signature for city-scale studies: it only sums power onto
the transformer(s) and reports NaN voltages.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["CapacityOnly", "PowerFlow", "PowerFlowResult", "energised_buses", "headroom_kw",
           "unsupported_reason"]

_SQRT3 = np.sqrt(3.0)
# lightsim2grid offers trafo parameter formulas for "pandapower_v2" and "pandapower_v3"; measured
# against pandapower 3.5's runpp, the "v2" one matches to 1e-11 pu on the Kerber feeders while
# "v3" is 2e-5 pu off (tests/test_grid_agreement.py guards this).
_PP_ORIG_FILE = "pandapower_v2"
# a bus angle change between two steps beyond which a warm-started solution is not trusted
_MAX_WARM_STEP_RAD = np.deg2rad(30.0)


@dataclass(frozen=True)
class PowerFlowResult:
    """One step's feeder state. Arrays are in the net's table order (bus, line, trafo).

    Attributes:
        converged: the power flow converged (False: every value below is NaN).
        vm_pu: bus voltage magnitude [n_bus], NaN for buses without a solution.
        va_degree: bus voltage angle [n_bus], degrees (each slack at its ext_grid's angle).
        vm_min_pu, vm_max_pu: over the solved buses.
        n_bus_unsolved: in-service buses without a solution: in areas no ext_grid feeds
            (pandapower leaves them NaN too), or all of them if the step did not converge.
        trafo_loading_pct: per transformer [n_trafo].
        trafo_loading_max_pct: max over transformers (NaN if none).
        line_loading_pct: per line [n_line]; as in pandapower 0 if the line is out of service
            and NaN if an end sits at a bus without a solution (an open end does not count).
            Same for ``trafo_loading_pct``.
        line_loading_max_pct: max over lines (NaN if none).
        line_max: pandapower index label of the most loaded line (-1 if none / not converged).
        losses_kw: active losses in lines and transformers.
        p_trafo_kw: active power into each transformer's HV side [n_trafo] (> 0: grid supplies
            the feeder).
        q_trafo_kvar: reactive power into each transformer's HV side [n_trafo].
    """

    converged: bool
    vm_pu: np.ndarray
    va_degree: np.ndarray
    vm_min_pu: float
    vm_max_pu: float
    n_bus_unsolved: int
    trafo_loading_pct: np.ndarray
    trafo_loading_max_pct: float
    line_loading_pct: np.ndarray
    line_loading_max_pct: float
    line_max: int
    losses_kw: float
    p_trafo_kw: np.ndarray
    q_trafo_kvar: np.ndarray


def _nanmax(a: np.ndarray) -> float:
    if a.size == 0 or np.all(np.isnan(a)):
        return float("nan")
    return float(np.nanmax(a))


def _nanmin(a: np.ndarray) -> float:
    if a.size == 0 or np.all(np.isnan(a)):
        return float("nan")
    return float(np.nanmin(a))


def _failed(n_bus: int, n_line: int, n_trafo: int, n_bus_on: int) -> PowerFlowResult:
    nan = float("nan")
    return PowerFlowResult(False, np.full(n_bus, nan), np.full(n_bus, nan), nan, nan, n_bus_on,
                           np.full(n_trafo, nan), nan, np.full(n_line, nan), nan, -1, nan,
                           np.full(n_trafo, nan), np.full(n_trafo, nan))


# element tables the lightsim2grid model does not hold (pandapower 3 names; absent ones are skipped)
_UNSUPPORTED_TABLES = ("trafo3w", "ward", "xward", "impedance", "motor", "asymmetric_load",
                       "asymmetric_sgen", "dcline", "svc", "tcsc", "ssc", "vsc", "vsc_stacked",
                       "vsc_bipolar", "bus_dc", "line_dc", "source_dc", "load_dc")


def _on(table: pd.DataFrame) -> np.ndarray:
    """In-service mask of an element table (all True if it has no ``in_service`` column)."""
    if "in_service" not in table:
        return np.ones(len(table), bool)
    return table["in_service"].fillna(True).to_numpy(bool)


def _tap_applied(trafo: pd.DataFrame) -> np.ndarray:
    """Trafos whose tap changer pandapower >= 3 applies (by type, side and step)."""
    kind = trafo["tap_changer_type"] if "tap_changer_type" in trafo else pd.Series("Ratio", trafo.index)
    return (kind.isin(["Ratio", "Symmetrical"]).to_numpy() & trafo["tap_side"].isin(["hv", "lv"]).to_numpy()
            & np.isfinite(trafo["tap_step_percent"].to_numpy(float)))


def unsupported_reason(net) -> str | None:
    """Why `PowerFlow` cannot reproduce ``pandapower.runpp`` on ``net``, or None if it can.

    Checked before any conversion, so a network is rejected with its reason (at scenario
    validation and when a `PowerFlow` is built) instead of being solved differently.
    """
    for table in _UNSUPPORTED_TABLES:
        t = net.get(table) if hasattr(net, "get") else None
        if isinstance(t, pd.DataFrame) and _on(t).any():
            return (f"it has {int(_on(t).sum())} in-service {table} element(s), which the "
                    f"lightsim2grid power flow does not model")
    ld = net.load[_on(net.load)]
    zip_cols = [c for c in ld.columns if c.startswith(("const_z", "const_i"))]
    if zip_cols and np.any(ld[zip_cols].fillna(0).to_numpy(float) != 0):
        return ("it has voltage-dependent (const_z / const_i) loads, which the power flow would "
                "solve as constant power")
    tr = net.trafo[_on(net.trafo)]
    if "tap_changer_type" in tr and tr["tap_changer_type"].isin(["Ideal", "Tabular"]).any():
        return "it has transformers with ideal or tabular tap changers, which the power flow does not model"
    if "tap_dependency_table" in tr and tr["tap_dependency_table"].fillna(False).astype(bool).any():
        return "it has transformers with tap-dependent impedance tables, which the power flow does not model"
    if "tap_changer_type" in tr and (_tap_applied(tr) & (tr["tap_changer_type"] == "Symmetrical").to_numpy()
                                     & (tr["tap_pos"] != tr["tap_neutral"]).to_numpy()).any():
        return "it has symmetrical phase-shifting transformers off their neutral tap, which are not checked"
    if "leakage_resistance_ratio_hv" in tr and (tr["leakage_resistance_ratio_hv"].fillna(0.5) != 0.5).any():
        return ("it has transformers with leakage_resistance_ratio_hv other than 0.5, which the "
                "power flow does not model")
    sh = net.shunt[_on(net.shunt)]
    if "step_dependency_table" in sh and sh["step_dependency_table"].fillna(False).astype(bool).any():
        return "it has shunts with step-dependent tables, which the power flow does not model"
    sw = net.switch
    if len(sw) and "z_ohm" in sw:
        bb = sw["closed"].to_numpy(bool) & (sw["et"].to_numpy() == "b")
        if np.any(bb & (sw["z_ohm"].fillna(0).to_numpy(float) > 0)):
            return ("it has closed bus-bus switches with z_ohm > 0 (impedance branches in pandapower), "
                    "which the power flow fuses as ideal")
    eg = net.ext_grid[_on(net.ext_grid)]
    slack_gen = net.gen[_on(net.gen) & net.gen["slack"].fillna(False).to_numpy(bool)] \
        if len(net.gen) else net.gen
    if len(eg) and len(slack_gen):
        # lightsim2grid's converter would then drop the ext_grids as slacks
        return "it has both external grids and generators with slack=True"
    bus_on = net.bus["in_service"].reindex(pd.concat([eg["bus"], slack_gen["bus"]])).fillna(False)
    if not bus_on.any():
        return "it has no in-service external grid (ext_grid) or slack generator, so no bus is energised"
    return None


def _fuse_switches(net) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed bus-bus switches fuse buses; open line/trafo switches open that branch end.

    Returns:
        (root [n_bus] pandapower row of the fused bus each row belongs to, line_open
        [n_line, 2] bool (from, to), trafo_open [n_trafo, 2] bool (hv, lv)).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(net.bus)
    pos = net.bus.index
    line_open = np.zeros((len(net.line), 2), bool)
    trafo_open = np.zeros((len(net.trafo), 2), bool)
    a = b = np.zeros(0, np.int64)
    sw = net.switch
    if len(sw):
        closed = sw["closed"].to_numpy(bool)
        if "in_service" in sw:  # an out-of-service switch is open
            closed &= _on(sw)
        et = sw["et"].to_numpy()
        bb = (et == "b") & closed
        a, b = pos.get_indexer(sw["bus"][bb]), pos.get_indexer(sw["element"][bb])
        for kind, table, first, opened in (("l", net.line, "from_bus", line_open),
                                           ("t", net.trafo, "hv_bus", trafo_open)):
            m = (et == kind) & ~closed
            if m.any():
                rows = table.index.get_indexer(sw["element"][m])
                side = (table[first].to_numpy()[rows] != sw["bus"].to_numpy()[m]).astype(int)
                opened[rows, side] = True
    # components of the bus-switch graph; the lowest row of each is its representative
    g = coo_matrix((np.ones(a.size), (a, b)), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    first = np.full(comp.max() + 1 if n else 0, n, np.int64)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp], line_open, trafo_open


def _energised(n: int, slack: np.ndarray, branches: np.ndarray) -> np.ndarray:
    """Buses [n] connected to a slack bus through ``branches`` [k, 2] (closed at both ends)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(branches)), (branches[:, 0], branches[:, 1])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    return np.isin(comp, comp[slack])


class _Topology(NamedTuple):
    """What ``pandapower.runpp`` solves of a net, in the solver's bus numbering.

    Attributes:
        bus_map: [n_bus] solver bus of each pandapower bus row (closed bus-bus switches fuse).
        keep: [n_solver_bus] the pandapower row each solver bus stands for.
        live: [n_solver_bus] energised: connected to a slack (pandapower: the others are NaN).
        line_on, trafo_on: [n_line] / [n_trafo] branches the solver holds.
        line_open, trafo_open: [n, 2] ends left open (from/hv, to/lv); the branch hangs on
            its other end, with its charging / magnetising current (pandapower: an auxiliary
            bus at the open end).
        line_unsolved, trafo_unsolved: branches pandapower reports as NaN: an end at a bus
            without a solution (an auxiliary bus counts as solved when the branch is held).
    """

    bus_map: np.ndarray
    keep: np.ndarray
    live: np.ndarray
    line_on: np.ndarray
    trafo_on: np.ndarray
    line_open: np.ndarray
    trafo_open: np.ndarray
    line_unsolved: np.ndarray
    trafo_unsolved: np.ndarray

    def solved_rows(self, net) -> np.ndarray:
        """[n_bus] pandapower bus rows with a solution (a fused out-of-service bus has none)."""
        return self.live[self.bus_map] & _on(net.bus)


def _topology(net) -> _Topology:
    """Switches, out-of-service buses and islands as ``pandapower.runpp`` treats them.

    - closed bus-bus switches fuse buses; an open line/trafo switch opens that branch end;
    - a line at an out-of-service bus is open at that end; a trafo at one is out of service;
    - buses not connected to a slack (in-service ext_grid, or gen with slack=True) through
      branches closed at both ends have no solution, nor do branches hanging only on them.
    """
    root, line_open, trafo_open = _fuse_switches(net)
    keep = np.unique(root)
    new_of_row = np.full(len(net.bus), -1, np.int64)
    new_of_row[keep] = np.arange(keep.size)
    bus_map = new_of_row[root]
    n = keep.size
    # a fused bus is in service if any of its members is (pandapower does the same)
    bus_on = np.zeros(n, bool)
    np.logical_or.at(bus_on, bus_map, _on(net.bus))
    pos = net.bus.index

    def ends(table, cols):
        return np.stack([bus_map[pos.get_indexer(table[c])] for c in cols], 1) \
            if len(table) else np.zeros((0, len(cols)), np.int64)

    line_ends = ends(net.line, ("from_bus", "to_bus"))
    trafo_ends = ends(net.trafo, ("hv_bus", "lv_bus"))
    line_open |= ~bus_on[line_ends]
    line_aux, trafo_aux = line_open.copy(), trafo_open.copy()  # pandapower's auxiliary buses
    line_on = _on(net.line) & ~line_open.all(1)
    trafo_on = _on(net.trafo) & bus_on[trafo_ends].all(1) & ~trafo_open.all(1)

    slack = [ends(net.ext_grid[_on(net.ext_grid)], ("bus",))[:, 0]]
    if len(net.gen):
        slack.append(ends(net.gen[_on(net.gen) & net.gen["slack"].fillna(False).to_numpy(bool)],
                          ("bus",))[:, 0])
    slack = np.concatenate(slack)
    slack = slack[bus_on[slack]]
    closed = np.concatenate([line_ends[line_on & ~line_open.any(1)],
                             trafo_ends[trafo_on & ~trafo_open.any(1)]])
    live = _energised(n, slack, closed) & bus_on
    # a half-open branch hangs on its connected end
    line_on &= (live[line_ends] & ~line_open).any(1)
    trafo_on &= (live[trafo_ends] & ~trafo_open).any(1)
    line_open |= ~live[line_ends]
    trafo_open |= ~live[trafo_ends]
    line_unsolved = np.where(line_aux, ~line_on[:, None], ~live[line_ends]).any(1)
    trafo_unsolved = np.where(trafo_aux, ~trafo_on[:, None], ~live[trafo_ends]).any(1)
    return _Topology(bus_map, keep, live, line_on, trafo_on, line_open, trafo_open,
                     line_unsolved, trafo_unsolved)


def energised_buses(net) -> np.ndarray:
    """Buses [n_bus] (``net.bus`` order) that an in-service ext_grid or slack gen supplies:
    the ones ``pandapower.runpp`` gives a voltage."""
    return _topology(net).solved_rows(net)


def _solver_net(net, topo: _Topology):
    """A copy of ``net`` that lightsim2grid's converter reads the way ``pandapower.runpp`` does.

    Buses renumbered 0..n-1 after fusing (``topo``), switches removed, unsolved buses and
    everything on them out of service; parallel lines and trafos become one equivalent branch;
    gen / storage scaling and shunt steps and rated voltages are folded into their p and q
    (the converter ignores them).
    """
    import copy

    s = copy.copy(net)  # shallow: the tables used below are replaced, not modified in place
    for key in list(s.keys()):
        # result tables and profiles are not needed and can be large
        if isinstance(key, str) and (key.startswith("res_") or key == "profiles"):
            del s[key]
    for table in ("line", "trafo", "load", "sgen", "gen", "ext_grid", "shunt", "storage"):
        s[table] = net[table].copy()
    for table in _UNSUPPORTED_TABLES:  # out-of-service rows only (checked by unsupported_reason)
        if isinstance(s.get(table), pd.DataFrame):
            s[table] = s[table].iloc[0:0]
    s.switch = net.switch.iloc[0:0].copy()
    s.bus = net.bus.iloc[topo.keep].copy()
    s.bus["in_service"] = topo.live
    s.bus.index = np.arange(topo.keep.size)
    s.line["in_service"] = topo.line_on
    s.trafo["in_service"] = topo.trafo_on
    pos = net.bus.index
    for table, cols in (("line", ("from_bus", "to_bus")), ("trafo", ("hv_bus", "lv_bus")),
                        ("load", ("bus",)), ("sgen", ("bus",)), ("gen", ("bus",)),
                        ("ext_grid", ("bus",)), ("shunt", ("bus",)), ("storage", ("bus",))):
        t = s[table]
        if len(t):
            for c in cols:
                t[c] = topo.bus_map[pos.get_indexer(t[c])]
            if len(cols) == 1:  # injections on buses without a solution are not solved
                t["in_service"] = _on(t) & topo.live[t["bus"].to_numpy()]

    # parallel branches -> one equivalent branch
    if len(s.line) and np.any(s.line["parallel"].to_numpy() != 1):
        par = s.line["parallel"].to_numpy(float)
        s.line["r_ohm_per_km"] /= par
        s.line["x_ohm_per_km"] /= par
        s.line["c_nf_per_km"] *= par
        if "g_us_per_km" in s.line:
            s.line["g_us_per_km"] *= par
        s.line["parallel"] = 1
    if len(s.trafo):
        # pandapower >= 3 applies a tap only for tap_changer_type "Ratio"/"Symmetrical" with a
        # tap side, position and step (type None: tap_pos ignored — SimBench nets have tap_pos
        # set but type None); lightsim2grid's converter applies any tap_pos, reads NaN as 0 and
        # needs tap_neutral 0: pass it the offset from neutral of the taps pandapower applies.
        t = s.trafo
        tap, neutral = t["tap_pos"].to_numpy(float), t["tap_neutral"].fillna(0.0).to_numpy(float)
        applied = _tap_applied(t) & np.isfinite(tap)
        t["tap_pos"] = np.where(applied, tap - neutral, 0.0)
        t["tap_neutral"] = 0.0
        t["tap_side"] = np.where(applied, t["tap_side"].to_numpy(object), "hv")
        for c in ("tap_step_percent", "tap_step_degree", "shift_degree"):
            t[c] = t[c].fillna(0.0)
    if len(s.trafo) and np.any(s.trafo["parallel"].to_numpy() != 1):
        par = s.trafo["parallel"].to_numpy(float)
        s.trafo["sn_mva"] *= par
        s.trafo["pfe_kw"] *= par
        s.trafo["parallel"] = 1
    # the converter ignores these tables' scaling (and the shunts' step and rated voltage)
    for table, cols in (("gen", ("p_mw",)), ("storage", ("p_mw", "q_mvar"))):
        if len(s[table]) and "scaling" in s[table]:
            for c in cols:
                s[table][c] = s[table][c] * s[table]["scaling"].fillna(1.0)
            s[table]["scaling"] = 1.0
    if len(s.shunt):
        sh = s.shunt
        vn_bus = net.bus["vn_kv"].reindex(net.shunt["bus"]).to_numpy(float)
        vn = sh["vn_kv"].to_numpy(float) if "vn_kv" in sh else vn_bus
        k = sh["step"].fillna(1).to_numpy(float) * (vn_bus / np.where(np.isfinite(vn), vn, vn_bus)) ** 2
        sh["p_mw"] = sh["p_mw"] * k
        sh["q_mvar"] = sh["q_mvar"] * k
        sh["step"] = 1
    for table in ("gen", "ext_grid"):
        if len(s[table]) and "slack_weight" in s[table]:
            # every slack is a fixed reference here: weights play no part (the converter warns at 0)
            s[table]["slack_weight"] = 1.0
    # sgen limits play no part in a power flow (the converter would warn about their NaNs)
    s.sgen = s.sgen.drop(columns=["min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"], errors="ignore")
    for table in ("load", "sgen", "gen", "storage", "shunt"):
        if len(s[table]):
            if "parallel" in s[table]:
                s[table]["parallel"] = 1
            # SimBench stores these limits as object columns; the converter needs floats
            for c in ("min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"):
                if c in s[table]:
                    s[table][c] = pd.to_numeric(s[table][c], errors="coerce").astype(float)
    return s


def _single_slack_algorithm():
    """lightsim2grid's Newton-Raphson that holds every slack bus at its voltage and angle."""
    from lightsim2grid.algorithm import AlgorithmType
    from lightsim2grid.lightsim2grid_cpp import klu_solver_available

    return AlgorithmType.NRSing_KLU if klu_solver_available else AlgorithmType.NRSing_SparseLU


class PowerFlow:
    """AC power flow of one feeder with lightsim2grid, built once, solved every step.

    Args:
        net: pandapowerNet (not modified). Loads and sgens keep their table order: ``solve``
            takes arrays over ``net.load`` and ``net.sgen`` rows.
        max_iter: Newton-Raphson iteration limit.
        tol: mismatch tolerance in MVA (per-unit on net.sn_mva in lightsim2grid).
    """

    def __init__(self, net, max_iter: int = 20, tol: float = 1e-8):
        from lightsim2grid.network import init_from_pandapower

        self.net = net
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        reason = unsupported_reason(net)
        if reason:
            raise ValueError(f"network {net.name!r} cannot be solved by the AC power flow: {reason}")
        topo = _topology(net)
        s = _solver_net(net, topo)
        self._bus_map, self._live = topo.bus_map, topo.live
        line_open = topo.line_open & topo.line_on[:, None]  # of the branches the solver holds
        trafo_open = topo.trafo_open & topo.trafo_on[:, None]
        with warnings.catch_warnings():
            # pandapower nets name their slacks as ext_grids, not slack generators: expected
            warnings.filterwarnings("ignore", message=".*generators tagged as")
            self.model = init_from_pandapower(s, pp_orig_file=_PP_ORIG_FILE)
        # Every slack (ext_grid) a reference bus with fixed magnitude and angle, as in
        # pandapower; the default distributed-slack algorithm would let all but one float.
        self.model.change_algorithm(_single_slack_algorithm())
        if line_open.any() or trafo_open.any():
            self.model.set_synch_status_both_side(False)
            for i, (a, b) in enumerate(line_open):
                if a and not b:
                    self.model.deactivate_powerline_side1(i)
                elif b and not a:
                    self.model.deactivate_powerline_side2(i)
            for i, (a, b) in enumerate(trafo_open):
                if a and not b:
                    self.model.deactivate_trafo_side1(i)
                elif b and not a:
                    self.model.deactivate_trafo_side2(i)
        self.n_bus, self.n_line, self.n_trafo = len(net.bus), len(net.line), len(net.trafo)
        self.n_load, self.n_sgen = len(net.load), len(net.sgen)

        self._load_on = net.load["in_service"].to_numpy(bool)
        self._sgen_on = net.sgen["in_service"].to_numpy(bool) if self.n_sgen else np.zeros(0, bool)
        sc = net.sgen["scaling"].to_numpy(float) if self.n_sgen else np.zeros(0)
        self.p_sgen_default_mw = net.sgen["p_mw"].to_numpy(float) * sc if self.n_sgen else np.zeros(0)
        self.q_sgen_mvar = net.sgen["q_mvar"].to_numpy(float) * sc if self.n_sgen else np.zeros(0)

        line = net.line
        self._line_imax_ka = (line["max_i_ka"] * line["df"] * line["parallel"]).to_numpy(float)
        tr = net.trafo
        self._trafo_vn = np.stack([tr["vn_hv_kv"].to_numpy(float), tr["vn_lv_kv"].to_numpy(float)], 1)
        self._trafo_sn_mva = (tr["sn_mva"] * tr["parallel"] * tr["df"]).to_numpy(float)
        self._line_labels = line.index.to_numpy()
        # in-service branches and buses left out of the solution (pandapower: NaN)
        self._line_unsolved, self._trafo_unsolved = topo.line_unsolved, topo.trafo_unsolved
        self._n_bus_on = int(_on(net.bus).sum())
        self._bus_solved = topo.solved_rows(net)
        self.n_bus_unsolved = self._n_bus_on - int(self._bus_solved.sum())
        self._flat = self._flat_start(s)
        self.reset()
        self.last_converged = False

    def _flat_start(self, s) -> np.ndarray:
        """Flat start: slack magnitude everywhere, angles stepped by the trafo phase shifts.

        A Dyn5 transformer (shift 150°, e.g. the Kerber feeders) does not converge from a start
        with all angles at 0; pandapower's own init also applies the shifts. The LV side of a
        trafo lags its HV side by ``shift_degree``.
        """
        n = self.model.total_bus()
        ang = np.full(n, np.nan)
        vm0 = 1.0
        eg = s.ext_grid[s.ext_grid["in_service"].to_numpy(bool)]
        if len(s.gen):  # slack generators: pandapower's reference angle is 0 there
            sg = s.gen[s.gen["in_service"].to_numpy(bool) & s.gen["slack"].to_numpy(bool)]
            eg = pd.concat([eg, pd.DataFrame({"bus": sg["bus"], "vm_pu": sg["vm_pu"], "va_degree": 0.0})])
        adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for a, b, on in zip(s.line["from_bus"], s.line["to_bus"], s.line["in_service"]):
            if on:
                adj[a].append((b, 0.0))
                adj[b].append((a, 0.0))
        for a, b, sh, on in zip(s.trafo["hv_bus"], s.trafo["lv_bus"], s.trafo["shift_degree"],
                                s.trafo["in_service"]):
            if on:
                sh = 0.0 if not np.isfinite(sh) else float(sh)
                adj[a].append((b, -sh))
                adj[b].append((a, sh))
        queue = []
        for b, vm, va in zip(eg["bus"], eg["vm_pu"], eg["va_degree"]):
            ang[b] = float(va)
            vm0 = float(vm)
            queue.append(int(b))
        while queue:
            nxt = []
            for a in queue:
                for b, d in adj[a]:
                    if np.isnan(ang[b]):
                        ang[b] = ang[a] + d
                        nxt.append(b)
            queue = nxt
        ang = np.nan_to_num(ang)
        return vm0 * np.exp(1j * np.deg2rad(ang))

    def reset(self) -> None:
        """Forget the warm start: the next solve starts flat."""
        self._v, self._warm = self._flat.copy(), False

    def solve(self, p_load_mw: np.ndarray, q_load_mvar: np.ndarray,
              p_sgen_mw: np.ndarray | None = None) -> PowerFlowResult:
        """Solve one step.

        Args:
            p_load_mw: active load per ``net.load`` row [n_load], MW, > 0 drawn from the grid.
                Taken as the actual value (the net's ``scaling`` column is not applied).
            q_load_mvar: reactive load [n_load], Mvar.
            p_sgen_mw: static-generator output [n_sgen], MW, > 0 injected; None: the net's
                ``p_mw * scaling``. The sgen reactive power stays at the net's value.

        Returns:
            PowerFlowResult; never raises on divergence (converged=False, NaNs), and the next
            solve then starts flat.
        """
        m = self.model
        p = np.asarray(p_load_mw, dtype=float)
        q = np.asarray(q_load_mvar, dtype=float)
        if p.shape != (self.n_load,) or q.shape != (self.n_load,):
            raise ValueError(f"p_load_mw and q_load_mvar must have shape ({self.n_load},); "
                             f"got {p.shape} and {q.shape}")
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
            self.reset()
            return _failed(self.n_bus, self.n_line, self.n_trafo, self._n_bus_on)
        m.update_loads_p(self._load_on, p.astype(np.float32))
        m.update_loads_q(self._load_on, q.astype(np.float32))
        if self.n_sgen:
            ps = self.p_sgen_default_mw if p_sgen_mw is None else np.asarray(p_sgen_mw, float)
            if ps.shape != (self.n_sgen,):
                raise ValueError(f"p_sgen_mw must have shape ({self.n_sgen},); got {ps.shape}")
            m.update_sgens_p(self._sgen_on, ps.astype(np.float32))
        v = self._ac_pf(self._v)
        if v is not None and self._warm and \
                np.abs(np.angle(v[self._live] * self._v[self._live].conj())).max() > _MAX_WARM_STEP_RAD:
            # No bus angle moves that far in one step: the warm start has settled on another
            # solution of the power-flow equations (seen on the heavily loaded EHV SimBench grids
            # after large jumps in load). The flat start finds the one runpp finds.
            v = self._ac_pf(self._flat)
        if v is None:
            self.reset()
            self.last_converged = False
            return _failed(self.n_bus, self.n_line, self.n_trafo, self._n_bus_on)
        self._v, self._warm = v, True
        self.last_converged = True
        return self._results(v)

    def _ac_pf(self, v0: np.ndarray) -> np.ndarray | None:
        """Newton-Raphson from ``v0`` (not modified); None if it does not converge."""
        try:
            v = self.model.ac_pf(v0.copy(), self.max_iter, self.tol)
        except Exception:  # lightsim raises on singular Jacobians in some versions
            return None
        return v if v.size and np.all(np.isfinite(v[self._live])) else None

    def _results(self, v: np.ndarray) -> PowerFlowResult:
        m = self.model
        v = np.where(self._bus_solved, v[self._bus_map], np.nan)
        vm = np.abs(v)
        pl1, ql1, _, il1 = m.get_line_res1()
        pl2, ql2, _, il2 = m.get_line_res2()
        pt1, qt1, _, it1 = m.get_trafo_res1()
        pt2, qt2, _, it2 = m.get_trafo_res2()
        with np.errstate(invalid="ignore", divide="ignore"):
            i_line = np.maximum(np.nan_to_num(il1), np.nan_to_num(il2))
            line_pct = np.where(self._line_imax_ka > 0, i_line / self._line_imax_ka, np.inf) * 100.0
            if self.n_trafo:
                i_tr = np.stack([np.nan_to_num(it1), np.nan_to_num(it2)], 1)
                trafo_pct = (i_tr * self._trafo_vn).max(1) * _SQRT3 / self._trafo_sn_mva * 100.0
            else:
                trafo_pct = np.zeros(0)
        line_pct[self._line_unsolved] = np.nan
        trafo_pct[self._trafo_unsolved] = np.nan
        losses_mw = (np.nansum(pl1) + np.nansum(pl2) + np.nansum(pt1) + np.nansum(pt2))
        if self.n_line and not np.all(np.isnan(line_pct)):
            k = int(np.nanargmax(line_pct))
            line_max, line_max_pct = int(self._line_labels[k]), float(line_pct[k])
        else:
            line_max, line_max_pct = -1, float("nan")
        return PowerFlowResult(
            converged=True, vm_pu=vm, va_degree=np.rad2deg(np.angle(v)), vm_min_pu=_nanmin(vm),
            vm_max_pu=_nanmax(vm), n_bus_unsolved=self.n_bus_unsolved,
            trafo_loading_pct=trafo_pct, trafo_loading_max_pct=_nanmax(trafo_pct),
            line_loading_pct=line_pct, line_loading_max_pct=line_max_pct, line_max=line_max,
            losses_kw=float(losses_mw) * 1e3,
            p_trafo_kw=np.nan_to_num(np.asarray(pt1, float)) * 1e3,
            q_trafo_kvar=np.nan_to_num(np.asarray(qt1, float)) * 1e3)


class CapacityOnly:
    """Transformer-capacity check without a power flow, for city-scale studies.

    Sums all load minus sgen power onto the transformer(s), shared in proportion to their rated
    power: loading = |S| / (sn_mva · parallel · df) · 100. Voltages and line loadings are NaN,
    losses are 0. Same ``solve`` signature as `PowerFlow`.
    """

    def __init__(self, net):
        self.net = net
        self.n_bus, self.n_line = len(net.bus), len(net.line)
        self._n_bus_on = int(_on(net.bus).sum())
        self.n_load, self.n_sgen = len(net.load), len(net.sgen)
        tr = net.trafo
        self.n_trafo = len(tr)
        on = tr["in_service"].to_numpy(bool) if self.n_trafo else np.zeros(0, bool)
        self._sn_mva = (tr["sn_mva"] * tr["parallel"] * tr["df"]).to_numpy(float) if self.n_trafo \
            else np.zeros(0)
        rated = np.where(on, self._sn_mva, 0.0)
        self._share = rated / rated.sum() if rated.sum() > 0 else rated
        self._load_on = net.load["in_service"].to_numpy(bool)
        self._sgen_on = net.sgen["in_service"].to_numpy(bool) if self.n_sgen else np.zeros(0, bool)
        sc = net.sgen["scaling"].to_numpy(float) if self.n_sgen else np.zeros(0)
        self.p_sgen_default_mw = net.sgen["p_mw"].to_numpy(float) * sc if self.n_sgen else np.zeros(0)
        self.q_sgen_mvar = net.sgen["q_mvar"].to_numpy(float) * sc if self.n_sgen else np.zeros(0)

    def solve(self, p_load_mw: np.ndarray, q_load_mvar: np.ndarray,
              p_sgen_mw: np.ndarray | None = None) -> PowerFlowResult:
        """Sum loads (minus sgens) onto the transformers; see class docstring."""
        p = np.asarray(p_load_mw, float)
        q = np.asarray(q_load_mvar, float)
        ps = self.p_sgen_default_mw if p_sgen_mw is None else np.asarray(p_sgen_mw, float)
        p_tot = p[self._load_on].sum() - ps[self._sgen_on].sum()
        q_tot = q[self._load_on].sum() - self.q_sgen_mvar[self._sgen_on].sum()
        if not (np.isfinite(p_tot) and np.isfinite(q_tot)):
            return _failed(self.n_bus, self.n_line, self.n_trafo, self._n_bus_on)
        p_tr = p_tot * self._share
        q_tr = q_tot * self._share
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.hypot(p_tr, q_tr) / self._sn_mva * 100.0
        nan = float("nan")
        return PowerFlowResult(
            converged=True, vm_pu=np.full(self.n_bus, nan), va_degree=np.full(self.n_bus, nan),
            vm_min_pu=nan, vm_max_pu=nan, n_bus_unsolved=self._n_bus_on,
            trafo_loading_pct=pct, trafo_loading_max_pct=_nanmax(pct),
            line_loading_pct=np.full(self.n_line, nan), line_loading_max_pct=nan, line_max=-1,
            losses_kw=0.0, p_trafo_kw=p_tr * 1e3, q_trafo_kvar=q_tr * 1e3)


def headroom_kw(result: PowerFlowResult, solver: PowerFlow | CapacityOnly | None = None,
                limit_pct: float = 100.0) -> float:
    """Estimate how much more active power the feeder could take at its worst-placed load bus.

    Linear estimate, no extra power flow: each element's loading is taken as proportional to the
    apparent power it carries, and the extra power is assumed at unity power factor and to flow
    through the transformer and through the most loaded line (the worst-placed bus sits behind
    both). For an element carrying S at loading L%, an extra ΔP reaches ``limit_pct`` when
    ``|S + ΔP| = S·limit/L``; with S split into P and Q: ``ΔP = sqrt((S·limit/L)² − Q²) − P``.

    - Transformers: per trafo from its P, Q (``result.p_trafo_kw`` / ``q_trafo_kvar``) and
      rating; the minimum over trafos (the worst-placed bus is behind the tightest one).
    - Most loaded line (``result.line_max``): ``S_rated − S_now`` where ``S_rated`` = √3 · V_from ·
      max_i_ka · df · parallel at the limit and ``S_now`` follows from its loading — i.e. the
      extra power is assumed in phase with the line's present flow (optimistic by the Q part).
      Only used when ``solver`` is a `PowerFlow` (line ratings and voltages).

    The result is the minimum of the two. It ignores voltage limits; check ``vm_min_pu``.

    Args:
        result: a converged result.
        solver: the solver that produced it (needed for line ratings); None: transformer only.
        limit_pct: loading limit, % (e.g. 80 for GB 51348 design rule).

    Returns:
        Headroom in kW (>= 0 means spare capacity; negative means already over the limit);
        NaN if the result did not converge.
    """
    if not result.converged or result.p_trafo_kw.size == 0:
        return float("nan")
    p = np.asarray(result.p_trafo_kw, float)
    q = np.asarray(result.q_trafo_kvar, float)
    loading = np.asarray(result.trafo_loading_pct, float)
    if solver is not None and hasattr(solver, "_trafo_sn_mva"):
        s_max = solver._trafo_sn_mva * 1e3 * limit_pct / 100.0
    elif solver is not None and hasattr(solver, "_sn_mva"):
        s_max = solver._sn_mva * 1e3 * limit_pct / 100.0
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            s_max = np.hypot(p, q) * limit_pct / loading
    # per transformer; the worst-placed bus sits behind the tightest one
    per_trafo = np.where(s_max >= np.abs(q), np.sqrt(np.maximum(s_max**2 - q**2, 0.0)) - p, -p)
    per_trafo = per_trafo[np.isfinite(per_trafo)]
    head_tr = float(per_trafo.min()) if per_trafo.size else float("inf")
    head = head_tr
    if isinstance(solver, PowerFlow) and np.isfinite(result.line_loading_max_pct) \
            and result.line_loading_max_pct > 0:
        k = solver.net.line.index.get_loc(result.line_max)
        fb = solver.net.line["from_bus"].iloc[k]
        v_kv = float(solver.net.bus.at[fb, "vn_kv"]) * float(
            result.vm_pu[solver.net.bus.index.get_loc(fb)])
        s_line_max_kw = _SQRT3 * v_kv * solver._line_imax_ka[k] * 1e3 * limit_pct / 100.0
        s_line_kw = s_line_max_kw * result.line_loading_max_pct / limit_pct
        head = min(head, s_line_max_kw - s_line_kw)
    return float(head)
