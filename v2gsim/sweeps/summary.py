"""Summary statistics of a sweep's run table: each KPI's mean, spread and t-interval per
parameter combination."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from v2gsim.sweeps.spec import Sweep

__all__ = ["summarize"]


def summarize(table: pd.DataFrame, parameters: Sequence[str], kpis: Sequence[str] | None = None,
              confidence: float = 0.95) -> pd.DataFrame:
    """Mean, standard deviation and t-interval of each KPI per parameter combination.

    Only runs with status ``"ok"`` count. Args: the run table, its parameter column names and
    the KPI columns (default: every float column that is not bookkeeping).

    Returns:
        Long table: the parameter columns, ``kpi``, ``n`` (ok runs), ``n_failed``, ``mean``,
        ``std`` (ddof 1), ``ci_low``, ``ci_high`` (NaN when n < 2), ``confidence``.
    """
    from scipy import stats

    parameters = list(parameters)
    if kpis is None:
        skip = {"run_id", "replication", "seed", "wall_time_s", *parameters}
        kpis = [c for c in table.columns if c not in skip and pd.api.types.is_float_dtype(table[c])]
    out_cols = [*parameters, "kpi", "n", "n_failed", "mean", "std", "ci_low", "ci_high", "confidence"]
    if table.empty or not kpis:
        return pd.DataFrame(columns=out_cols)
    rows = []
    for combo, group in table.groupby(parameters, sort=False, dropna=False):
        combo = combo if isinstance(combo, tuple) else (combo,)
        ok = group[group["status"] == "ok"]
        n_failed = int((group["status"] != "ok").sum())
        for k in kpis:
            x = ok[k].dropna().to_numpy(dtype=float)
            n = x.size
            mean = float(x.mean()) if n else float("nan")
            std = float(x.std(ddof=1)) if n > 1 else float("nan")
            if n > 1:
                half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
                lo, hi = mean - half, mean + half
            else:
                lo = hi = float("nan")
            rows.append([*combo, k, n, n_failed, mean, std, lo, hi, confidence])
    summary = pd.DataFrame(rows, columns=out_cols)
    return summary.astype({"n": "int64", "n_failed": "int64"})


def _kpi_columns(table: pd.DataFrame, sweep_obj: Sweep) -> list[str]:
    fixed = {"run_id", "replication", "seed", "status", "error", "wall_time_s", "scenario_hash", "result_dir"}
    params = set(sweep_obj.parameter_names)
    return [c for c in table.columns if c not in fixed and c not in params]
