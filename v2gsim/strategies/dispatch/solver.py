"""HiGHS for the dispatch LPs and MIPs: one reused, silent instance per process, models passed
as CSR arrays straight to highspy, and time-limited solves on a fresh instance."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

__all__ = ["prepare_solver"]


_PRESOLVE_MIN_COLS = 5000  # smaller LPs solve faster without HiGHS's presolve (bench/README.md)
_MIP_REL_GAP = 1e-6  # a plan within this relative gap of the proven bound counts as optimal
_highs = None


def prepare_solver():
    """The process's reused HiGHS instance, created (and highspy imported) on first call.

    A strategy that will solve LPs calls this when it is built, so that the one-off set-up is
    part of building the model rather than of its first step."""
    global _highs
    if _highs is None:
        _highs = _new_highs()
    return _highs


def _new_highs():
    """A silent HiGHS instance."""
    import highspy

    # the core class: highspy.Highs() prints HiGHS's banner on construction
    core = getattr(getattr(highspy, "_core", None), "_Highs", None)
    h = core() if core is not None else highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


def _run_highs(c, A, lo, hi, lb, ub, *, integer=None, x0=None, time_limit_s=np.inf):
    """Pass one model to HiGHS and run it. ``integer`` (bool per column) makes a MIP, ``x0``
    (all columns) is a feasible start for it. Untimed solves reuse the process's instance; a
    solve with a time limit gets a fresh one (cheap), because HiGHS 1.x measures an LP's time
    limit against the instance's run time summed over all its solves (a MIP's against its own)."""
    import highspy

    if np.isfinite(time_limit_s):
        h = _new_highs()
        h.setOptionValue("time_limit", float(max(time_limit_s, 0.0)))
    else:
        h = prepare_solver()
        h.clearModel()
    mip = integer is not None
    h.setOptionValue("presolve", "choose" if mip or A.shape[1] >= _PRESOLVE_MIN_COLS else "off")
    h.setOptionValue("mip_rel_gap", _MIP_REL_GAP)
    Ar = A if A.format == "csr" else sp.csr_array(A)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.col_cost_ = np.asarray(c, float)
    lp.col_lower_ = np.asarray(lb, float)
    lp.col_upper_ = np.asarray(ub, float)
    lp.row_lower_ = np.asarray(lo, float)
    lp.row_upper_ = np.asarray(hi, float)
    m = lp.a_matrix_
    m.format_ = highspy.MatrixFormat.kRowwise
    m.num_col_, m.num_row_ = A.shape[1], A.shape[0]
    m.start_, m.index_, m.value_ = Ar.indptr, Ar.indices, Ar.data
    if mip:
        kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        lp.integrality_ = [kinds[k] for k in np.asarray(integer, bool).astype(int).tolist()]
    h.passModel(lp)
    if x0 is not None:
        start = highspy.HighsSolution()
        start.col_value = np.asarray(x0, float)
        start.value_valid = True
        h.setSolution(start)
    h.run()
    return h


def _solve_lp(c, A, lo, hi, lb, ub, *, time_limit_s=np.inf) -> SimpleNamespace:
    """A plain LP through highspy directly (scipy's ``milp`` wrapper costs more a call in
    option checks and validation than a small aggregate LP's solve). One reused solver per
    process; presolve off for small LPs. ``x`` is None unless solved to optimality."""
    import highspy

    h = _run_highs(c, A, lo, hi, lb, ub, time_limit_s=time_limit_s)
    st = h.getModelStatus()
    if st != highspy.HighsModelStatus.kOptimal:
        return SimpleNamespace(x=None, fun=float("nan"), status=1, message=h.modelStatusToString(st))
    sol = h.getSolution()
    return SimpleNamespace(x=np.array(sol.col_value), row_dual=np.array(sol.row_dual),
                           fun=float(h.getInfo().objective_function_value),
                           status=0, message="Optimization terminated successfully.")


def _solve_mip(c, A, lo, hi, lb, ub, integer, *, x0=None, time_limit_s=np.inf) -> SimpleNamespace:
    """A MIP (``integer``: bool per column) within ``time_limit_s``: its best solution ``x``
    (None if it found none), objective ``fun``, proven lower ``bound`` and whether it is
    ``optimal`` (within the relative gap ``_MIP_REL_GAP``)."""
    import highspy

    h = _run_highs(c, A, lo, hi, lb, ub, integer=integer, x0=x0, time_limit_s=time_limit_s)
    st = h.getModelStatus()
    info = h.getInfo()
    has_x = info.primal_solution_status == 2  # feasible
    return SimpleNamespace(
        x=np.array(h.getSolution().col_value) if has_x else None,
        fun=float(info.objective_function_value) if has_x else float("nan"),
        bound=float(info.mip_dual_bound), optimal=st == highspy.HighsModelStatus.kOptimal,
        message=h.modelStatusToString(st))


def _solve(c, A, lo, hi, lb, ub):
    """An LP without a time limit (the aggregate plans')."""
    return _solve_lp(c, A, lo, hi, lb, ub)
