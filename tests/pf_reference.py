"""``pandapower.runpp`` as the reference for `v2gsim.physics.grid.PowerFlow` (the tests, and
``bench/bench_feeder.py --agreement``)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp

from v2gsim.physics.grid import PowerFlow

VM_TOL_PU = 1e-6
VA_TOL_DEG = 1e-4
LOADING_TOL_PCT = 1e-3
LOSS_TOL_REL = 1e-5


def runpp_reference(net, p_load_mw, q_load_mvar, p_sgen_mw=None):
    """pandapower's own Newton-Raphson on a copy of ``net`` with these injections (slack angles
    and trafo phase shifts included, as `PowerFlow` has them)."""
    ref = copy.copy(net)
    ref.pop("profiles", None)  # SimBench's year of profiles: not needed, slow to copy
    ref = copy.deepcopy(ref)
    ref.load["p_mw"] = p_load_mw
    ref.load["q_mvar"] = q_load_mvar
    ref.load["scaling"] = 1.0
    if p_sgen_mw is not None:
        ref.sgen["p_mw"] = p_sgen_mw
        ref.sgen["scaling"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pp.runpp(ref, algorithm="nr", calculate_voltage_angles=True, init="dc", numba=False,
                     tolerance_mva=1e-9, max_iteration=50)
        except pp.LoadflowNotConverged:
            # the extra-high-voltage grids (GW of load) stall above 1e-9 MVA in double precision
            pp.runpp(ref, algorithm="nr", calculate_voltage_angles=True, init="dc", numba=False,
                     tolerance_mva=1e-6, max_iteration=50)
    return ref


def disagreement(res, ref) -> dict[str, float]:
    """Largest differences between a `PowerFlowResult` and a solved pandapower net.

    NaN where pandapower has NaN is agreement; NaN on one side only counts as infinite.
    """
    def worst(a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        if a.size == 0:
            return 0.0
        if np.any(np.isnan(a) != np.isnan(b)):
            return float("inf")
        d = np.abs(a - b)
        return float(np.nanmax(d)) if np.any(np.isfinite(d)) else 0.0

    line_pct = ref.res_line["loading_percent"]
    loss_ref_kw = (ref.res_line["pl_mw"].sum() + ref.res_trafo["pl_mw"].sum()) * 1e3
    n_unsolved = int((ref.res_bus["vm_pu"].isna() & ref.bus["in_service"].astype(bool)).sum())
    return {
        "vm_pu": worst(res.vm_pu, ref.res_bus["vm_pu"]),
        "va_degree": worst(res.va_degree, ref.res_bus["va_degree"]),
        "line_pct": worst(res.line_loading_pct, line_pct),
        "trafo_pct": worst(res.trafo_loading_pct, ref.res_trafo["loading_percent"]),
        "losses_rel": abs(res.losses_kw - loss_ref_kw) / max(abs(loss_ref_kw), 1e-6),
        "n_bus_unsolved": abs(res.n_bus_unsolved - n_unsolved),
        # the summaries the model records; ties between lines in series are common, so the
        # reported line has to be a maximal one, not a particular one
        "vm_min_pu": worst(res.vm_min_pu, ref.res_bus["vm_pu"].min()),
        "line_max_pct": 0.0 if res.line_max < 0 else max(
            worst(res.line_loading_max_pct, line_pct.max()), worst(line_pct[res.line_max], line_pct.max())),
    }


def assert_agrees(d: dict[str, float]) -> None:
    assert d["vm_pu"] < VM_TOL_PU and d["vm_min_pu"] < VM_TOL_PU, d
    assert d["va_degree"] < VA_TOL_DEG, d
    assert d["line_pct"] < LOADING_TOL_PCT and d["line_max_pct"] < LOADING_TOL_PCT, d
    assert d["trafo_pct"] < LOADING_TOL_PCT, d
    assert d["losses_rel"] < LOSS_TOL_REL, d
    assert d["n_bus_unsolved"] == 0, d


def random_injections(net, rng, load_range=(0.0, 1.5), sgen_range=(0.0, 1.0)):
    """Loads at U(``load_range``) × their rating, a fifth of them with an EV-like extra of
    −20…+50 kW (V2G to charging), sgens at U(``sgen_range``) × theirs."""
    sc = net.load["scaling"].to_numpy(float)
    f = rng.uniform(*load_range, len(net.load))
    ev = np.where(rng.random(len(net.load)) < 0.2, rng.uniform(-0.02, 0.05, len(net.load)), 0.0)
    p = net.load["p_mw"].to_numpy(float) * sc * f + ev
    q = net.load["q_mvar"].to_numpy(float) * sc * f
    ps = None
    if len(net.sgen):
        ps = net.sgen["p_mw"].to_numpy(float) * net.sgen["scaling"].to_numpy(float) \
            * rng.uniform(*sgen_range, len(net.sgen))
    return p, q, ps


def check_network(net, n_snapshots: int, seed: int, pf: PowerFlow | None = None,
                  load_range=(0.0, 1.5), sgen_range=(0.0, 1.0)) -> dict[str, float]:
    """Solve ``n_snapshots`` random snapshots in a row (warm starts, as in a run) and compare
    each with runpp; the worst of each `disagreement` entry (inf if PowerFlow did not converge)."""
    pf = pf or PowerFlow(net)
    rng = np.random.default_rng(seed)
    worst: dict[str, float] = {}
    for _ in range(n_snapshots):
        p, q, ps = random_injections(net, rng, load_range, sgen_range)
        res = pf.solve(p, q, ps)
        d = disagreement(res, runpp_reference(net, p, q, ps))
        if not res.converged:
            d = dict.fromkeys(d, float("inf"))
        worst = {k: max(v, worst.get(k, 0.0)) for k, v in d.items()}
    return worst
