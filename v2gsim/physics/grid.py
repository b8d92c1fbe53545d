"""Per-step feeder power flow.

`PowerFlow` converts a pandapower net once into a lightsim2grid ``LSGrid`` and solves an AC
Newton-Raphson power flow per step, warm-started from the previous solution. Results follow
pandapower's definitions, so they agree with ``pandapower.runpp`` on the same net and loads:

- bus voltages in p.u., over ``net.bus.index`` order (NaN for buses not energised),
- line loading = max(|I_from|, |I_to|) / (max_i_ka · df · parallel) · 100,
- trafo loading = max(|I_hv|·vn_hv, |I_lv|·vn_lv)·√3 / sn_mva / parallel / df · 100 (pandapower's
  default ``trafo_loading="current"``).

What the conversion handles that lightsim2grid's own converter does not: bus-bus switches (closed
ones fuse buses, open ones are dropped), open line/trafo switches (that side of the branch is
disconnected, like pandapower does), ``parallel`` > 1 lines and trafos (merged into one
equivalent branch), and buses not connected to the slack (NaN, like pandapower).
Not handled: voltage-dependent (ZIP) loads, trafo3w, wards, impedances, motors.

`CapacityOnly` has the same ``solve`` signature for city-scale studies: it only sums power onto
the transformer(s) and reports NaN voltages.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CapacityOnly", "PowerFlow", "PowerFlowResult", "headroom_kw"]

_SQRT3 = np.sqrt(3.0)
# lightsim2grid offers trafo parameter formulas for "pandapower_v2" and "pandapower_v3"; measured
# against pandapower 3.5's runpp, the "v2" one matches to 1e-11 pu on the Kerber feeders while
# "v3" is 2e-5 pu off (tests/test_grid.py guards this).
_PP_ORIG_FILE = "pandapower_v2"


@dataclass(frozen=True)
class PowerFlowResult:
    """One step's feeder state. Arrays are in the net's table order (bus, line, trafo).

    Attributes:
        converged: the power flow converged (False: every value below is NaN).
        vm_pu: bus voltage magnitude [n_bus], NaN for de-energised buses.
        vm_min_pu, vm_max_pu: over energised buses.
        trafo_loading_pct: per transformer [n_trafo].
        trafo_loading_max_pct: max over transformers (NaN if none).
        line_loading_pct: per line [n_line] (NaN if both ends are de-energised, 0 if the line
            is out of service, as in pandapower). Same for ``trafo_loading_pct``.
        line_loading_max_pct: max over lines (NaN if none).
        line_max: pandapower index label of the most loaded line (-1 if none / not converged).
        losses_kw: active losses in lines and transformers.
        p_trafo_kw: active power into each transformer's HV side [n_trafo] (> 0: grid supplies
            the feeder).
        q_trafo_kvar: reactive power into each transformer's HV side [n_trafo].
    """

    converged: bool
    vm_pu: np.ndarray
    vm_min_pu: float
    vm_max_pu: float
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


def _failed(n_bus: int, n_line: int, n_trafo: int) -> PowerFlowResult:
    nan = float("nan")
    return PowerFlowResult(False, np.full(n_bus, nan), nan, nan, np.full(n_trafo, nan), nan,
                           np.full(n_line, nan), nan, -1, nan, np.full(n_trafo, nan),
                           np.full(n_trafo, nan))


class _UnionFind:
    def __init__(self, items):
        self.parent = {int(i): int(i) for i in items}

    def find(self, a: int) -> int:
        p = self.parent
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # the smaller label is the root: keeps ext_grid buses (usually low) stable
            self.parent[max(ra, rb)] = min(ra, rb)


def _solver_net(net):
    """A switch-free, parallel-free copy of ``net`` with contiguous bus indices 0..n-1.

    Returns:
        (copy, bus_map [n_bus] pandapower row -> solver bus, line_open [n_line, 2] bool side
        disconnected (from, to), trafo_open [n_trafo, 2] bool (hv, lv)).
    """
    import copy

    s = copy.deepcopy(net)
    # drop result tables and profiles: the converter does not need them and they can be large
    for key in list(s.keys()):
        if isinstance(key, str) and (key.startswith("res_") or key == "profiles"):
            try:
                del s[key]
            except Exception:  # pragma: no cover - defensive
                pass
    uf = _UnionFind(s.bus.index)
    line_open = np.zeros((len(s.line), 2), bool)
    trafo_open = np.zeros((len(s.trafo), 2), bool)
    if "switch" in s and len(s.switch):
        sw = s.switch
        closed = sw["closed"].to_numpy(bool)
        if "in_service" in sw:  # pandapower >= 3 may have it; an out-of-service switch is open
            closed &= sw["in_service"].fillna(True).to_numpy(bool)
        et = sw["et"].to_numpy()
        z = sw["z_ohm"].to_numpy(float) if "z_ohm" in sw else np.zeros(len(sw))
        if np.any(closed & (et == "b") & (z > 0)):
            warnings.warn("closed bus-bus switches with z_ohm > 0 are treated as ideal (fused)")
        line_pos = {lab: i for i, lab in enumerate(s.line.index)}
        trafo_pos = {lab: i for i, lab in enumerate(s.trafo.index)}
        for bus, element, kind, is_closed in zip(sw["bus"].to_numpy(), sw["element"].to_numpy(),
                                                 et, closed):
            if kind == "b":
                if is_closed:
                    uf.union(int(bus), int(element))
            elif kind == "l" and not is_closed:
                i = line_pos[element]
                side = 0 if s.line.at[element, "from_bus"] == bus else 1
                line_open[i, side] = True
            elif kind == "t" and not is_closed:
                i = trafo_pos[element]
                side = 0 if s.trafo.at[element, "hv_bus"] == bus else 1
                trafo_open[i, side] = True
            elif kind == "t3" and not is_closed:
                raise ValueError("three-winding transformers are not supported")
        s.switch = s.switch.iloc[0:0]
    roots = np.array([uf.find(int(b)) for b in s.bus.index])
    keep = np.unique(roots)
    new_of_root = {int(r): i for i, r in enumerate(keep)}
    bus_map = np.array([new_of_root[int(r)] for r in roots], dtype=np.int64)
    label_to_new = dict(zip(s.bus.index.to_numpy().tolist(), bus_map.tolist()))

    # a fused bus is in service if any of its members is (pandapower does the same)
    in_service = np.zeros(len(keep), bool)
    np.logical_or.at(in_service, bus_map, s.bus["in_service"].to_numpy(bool))
    newbus = s.bus.loc[keep].copy()
    newbus["in_service"] = in_service
    newbus.index = np.arange(len(keep))
    s.bus = newbus

    for table, cols in (("line", ("from_bus", "to_bus")), ("trafo", ("hv_bus", "lv_bus")),
                        ("load", ("bus",)), ("sgen", ("bus",)), ("gen", ("bus",)),
                        ("ext_grid", ("bus",)), ("shunt", ("bus",)), ("storage", ("bus",))):
        if table in s and len(s[table]):
            for c in cols:
                s[table][c] = s[table][c].map(label_to_new).astype(np.int64)
    for table in ("trafo3w", "ward", "xward", "impedance", "motor", "asymmetric_load",
                  "asymmetric_sgen", "dcline"):
        if table in s and len(s[table]):
            raise ValueError(f"network {net.name!r} has {table} elements, which the lightsim2grid "
                             f"solver does not support; use solver='capacity_only' or remove them")
    ld = s.load
    zip_cols = [c for c in ld.columns if c.startswith("const_z") or c.startswith("const_i")]
    if zip_cols and np.any(ld[zip_cols].fillna(0).to_numpy(float) != 0):
        warnings.warn("voltage-dependent (ZIP) loads are solved as constant power")
        ld[zip_cols] = 0.0

    # parallel branches -> one equivalent branch
    if len(s.line) and np.any(s.line["parallel"].to_numpy() != 1):
        par = s.line["parallel"].to_numpy(float)
        s.line["r_ohm_per_km"] /= par
        s.line["x_ohm_per_km"] /= par
        s.line["c_nf_per_km"] *= par
        if "g_us_per_km" in s.line:
            s.line["g_us_per_km"] *= par
        s.line["parallel"] = 1
    if len(s.trafo) and "tap_changer_type" in s.trafo:
        # pandapower >= 3 applies tap_pos only for tap_changer_type "Ratio"/"Symmetrical" (None:
        # no tap changer, tap_pos ignored — SimBench nets have tap_pos set but type None);
        # lightsim2grid's converter applies any finite tap_pos, so neutralise the others.
        kind = s.trafo["tap_changer_type"].astype(object).where(
            s.trafo["tap_changer_type"].notna(), None).to_numpy()
        applied = np.isin(kind, ["Ratio", "Symmetrical"])
        if np.any(np.isin(kind, ["Ideal", "Tabular"])) or (
                "tap_dependency_table" in s.trafo
                and s.trafo["tap_dependency_table"].fillna(False).astype(bool).any()):
            warnings.warn("ideal / tabular tap changers are not modelled by the lightsim2grid solver")
        s.trafo.loc[~applied, "tap_pos"] = s.trafo.loc[~applied, "tap_neutral"].fillna(0.0)
    if len(s.trafo) and np.any(s.trafo["parallel"].to_numpy() != 1):
        par = s.trafo["parallel"].to_numpy(float)
        s.trafo["sn_mva"] *= par
        s.trafo["pfe_kw"] *= par
        s.trafo["parallel"] = 1
    for table in ("load", "sgen", "gen", "storage"):
        if table in s and len(s[table]):
            if "parallel" in s[table]:
                s[table]["parallel"] = 1
            # SimBench stores these limits as object columns; the converter needs floats
            for c in ("min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"):
                if c in s[table]:
                    s[table][c] = pd.to_numeric(s[table][c], errors="coerce").astype(float)
    return s, bus_map, line_open, trafo_open


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
        s, self._bus_map, line_open, trafo_open = _solver_net(net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no generator tagged as slack" — expected
            self.model = init_from_pandapower(s, pp_orig_file=_PP_ORIG_FILE)
        if line_open.any() or trafo_open.any():
            self.model.set_synch_status_both_side(False)
            for i, (a, b) in enumerate(line_open):
                if a and b:
                    self.model.deactivate_powerline(i)
                elif a:
                    self.model.deactivate_powerline_side1(i)
                elif b:
                    self.model.deactivate_powerline_side2(i)
            for i, (a, b) in enumerate(trafo_open):
                if a and b:
                    self.model.deactivate_trafo(i)
                elif a:
                    self.model.deactivate_trafo_side1(i)
                elif b:
                    self.model.deactivate_trafo_side2(i)
        # buses unreachable from the slack: pandapower leaves them NaN, lightsim would fail
        self.model.consider_only_main_component()
        self.n_bus, self.n_line, self.n_trafo = len(net.bus), len(net.line), len(net.trafo)
        self.n_load, self.n_sgen = len(net.load), len(net.sgen)
        self._n_solver_bus = len(s.bus)

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
        self._trafo_s_rated_mva = tr["sn_mva"].to_numpy(float)
        self._line_labels = line.index.to_numpy()
        # bus positions of branch ends, to blank branches in de-energised areas (pandapower: NaN)
        pos = net.bus.index
        self._line_ends = np.stack([pos.get_indexer(line["from_bus"]), pos.get_indexer(line["to_bus"])], 1) \
            if self.n_line else np.zeros((0, 2), np.int64)
        self._trafo_ends = np.stack([pos.get_indexer(tr["hv_bus"]), pos.get_indexer(tr["lv_bus"])], 1) \
            if self.n_trafo else np.zeros((0, 2), np.int64)
        self._bus_in_main = np.asarray(self.model.get_bus_status(), bool) if hasattr(
            self.model, "get_bus_status") else np.ones(self._n_solver_bus, bool)
        self._flat = self._flat_start(s)
        self._v = self._flat.copy()
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
        self._v = self._flat.copy()

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
            return _failed(self.n_bus, self.n_line, self.n_trafo)
        m.update_loads_p(self._load_on, p.astype(np.float32))
        m.update_loads_q(self._load_on, q.astype(np.float32))
        if self.n_sgen:
            ps = self.p_sgen_default_mw if p_sgen_mw is None else np.asarray(p_sgen_mw, float)
            if ps.shape != (self.n_sgen,):
                raise ValueError(f"p_sgen_mw must have shape ({self.n_sgen},); got {ps.shape}")
            m.update_sgens_p(self._sgen_on, ps.astype(np.float32))
        try:
            v = m.ac_pf(self._v, self.max_iter, self.tol)
        except Exception:  # lightsim raises on singular Jacobians in some versions
            v = np.zeros(0, complex)
        if v.size == 0 or not np.all(np.isfinite(v[self._bus_in_main])):
            self.reset()
            self.last_converged = False
            return _failed(self.n_bus, self.n_line, self.n_trafo)
        self._v = v
        self.last_converged = True
        return self._results(v)

    def _results(self, v: np.ndarray) -> PowerFlowResult:
        m = self.model
        vm_solver = np.abs(v)
        vm_solver[~self._bus_in_main] = np.nan
        vm = vm_solver[self._bus_map]
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
        dead = np.isnan(vm)
        line_pct[dead[self._line_ends].all(1)] = np.nan
        trafo_pct[dead[self._trafo_ends].all(1)] = np.nan
        losses_mw = (np.nansum(pl1) + np.nansum(pl2) + np.nansum(pt1) + np.nansum(pt2))
        if self.n_line and not np.all(np.isnan(line_pct)):
            k = int(np.nanargmax(line_pct))
            line_max, line_max_pct = int(self._line_labels[k]), float(line_pct[k])
        else:
            line_max, line_max_pct = -1, float("nan")
        return PowerFlowResult(
            converged=True, vm_pu=vm, vm_min_pu=_nanmin(vm), vm_max_pu=_nanmax(vm),
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
            return _failed(self.n_bus, self.n_line, self.n_trafo)
        p_tr = p_tot * self._share
        q_tr = q_tot * self._share
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.hypot(p_tr, q_tr) / self._sn_mva * 100.0
        nan = float("nan")
        return PowerFlowResult(
            converged=True, vm_pu=np.full(self.n_bus, nan), vm_min_pu=nan, vm_max_pu=nan,
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
