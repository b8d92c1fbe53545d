"""Figures of a sweep summary (see `v2gsim.sweeps.summarize`): a KPI against one parameter with
its confidence band, and a heat map of a KPI over two parameters.

Built with the matplotlib object API (`matplotlib.figure.Figure`), never pyplot, so nothing
touches global state and figures are freed when dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from v2gsim.plotting.figure import new_figure

__all__ = ["kpi_heatmap", "kpi_vs_parameter", "save_sweep_plots"]

_MAX_GROUPS = 8


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _varying(summary: pd.DataFrame, parameters: Sequence[str]) -> list[str]:
    return [p for p in parameters if summary[p].nunique(dropna=False) > 1]


def kpi_vs_parameter(summary: pd.DataFrame, kpi: str, x: str, *, group: str | None = None,
                     others: Sequence[str] = ()) -> Figure:
    """Mean of ``kpi`` against parameter ``x``, a line per value of ``group``, with the 95 % band.

    Parameters in ``others`` are averaged over (the title says so).

    Args:
        summary: Long summary table (parameter columns, kpi, mean, ci_low, ci_high, n).
        kpi: KPI name (a value of the ``kpi`` column).
        x: Parameter on the horizontal axis (numeric or categorical).
        group: Optional parameter drawn as separate lines.
        others: Further varying parameters, averaged over.
    """
    df = summary[summary["kpi"] == kpi]
    keys = [x] + ([group] if group else [])
    agg = df.groupby(keys, sort=True, dropna=False).agg(
        mean=("mean", "mean"), ci_low=("ci_low", "mean"), ci_high=("ci_high", "mean")).reset_index()
    fig = new_figure((6.4, 4.2))
    ax = fig.add_subplot()
    numeric = _is_numeric(agg[x])
    cats = list(dict.fromkeys(agg[x])) if not numeric else []
    groups = list(dict.fromkeys(agg[group])) if group else [None]
    for g in groups:
        part = agg if g is None else agg[agg[group] == g]
        xs = part[x].to_numpy(dtype=float) if numeric else np.array([cats.index(v) for v in part[x]], dtype=float)
        order = np.argsort(xs, kind="stable")
        xs = xs[order]
        label = None if g is None else f"{group} = {g}"
        line, = ax.plot(xs, part["mean"].to_numpy()[order], marker="o", label=label)
        lo, hi = part["ci_low"].to_numpy()[order], part["ci_high"].to_numpy()[order]
        if np.isfinite(lo).any():
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if not numeric:
        ax.set_xticks(range(len(cats)), [str(c) for c in cats])
    ax.set_xlabel(x)
    ax.set_ylabel(kpi)
    title = f"{kpi} vs {x} (mean, 95 % CI)"
    if others:
        title += f"\naveraged over {', '.join(others)}"
    ax.set_title(title, fontsize="medium")
    ax.grid(True, alpha=0.3)
    if group:
        ax.legend(fontsize="small")
    return fig


def kpi_heatmap(summary: pd.DataFrame, kpi: str, x: str, y: str, *, others: Sequence[str] = ()) -> Figure:
    """Heat map of the mean of ``kpi`` over parameters ``x`` (columns) and ``y`` (rows)."""
    df = summary[summary["kpi"] == kpi]
    grid = df.pivot_table(index=y, columns=x, values="mean", aggfunc="mean", dropna=False).sort_index().sort_index(axis=1)
    fig = new_figure((6.4, 4.8))
    ax = fig.add_subplot()
    values = grid.to_numpy(dtype=float)
    im = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v) for v in grid.columns],
                  rotation=45 if grid.shape[1] > 6 else 0)
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v) for v in grid.index])
    if values.size <= 150:
        finite = values[np.isfinite(values)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize="x-small",
                        color="black" if v > mid else "white")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    title = f"{kpi} (mean)"
    if others:
        title += f"\naveraged over {', '.join(others)}"
    ax.set_title(title, fontsize="medium")
    fig.colorbar(im, ax=ax, label=kpi)
    return fig


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def save_sweep_plots(summary: pd.DataFrame, parameters: Sequence[str], kpis: Sequence[str],
                     directory: str | Path, *, heatmaps: bool = True) -> list[Path]:
    """Write the standard sweep figures as PNG files and return their paths.

    For each KPI: against the first varying parameter (lines per value of the second when it has
    few values), and, with two or more varying parameters, a heat map over the first two.
    """
    directory = Path(directory)
    written: list[Path] = []
    varying = _varying(summary, parameters) if not summary.empty else []
    if not varying:
        return written
    directory.mkdir(parents=True, exist_ok=True)
    x = varying[0]
    group = varying[1] if len(varying) > 1 and summary[varying[1]].nunique() <= _MAX_GROUPS else None
    present = set(summary["kpi"])
    for kpi in kpis:
        if kpi not in present or summary.loc[summary["kpi"] == kpi, "mean"].isna().all():
            continue
        others = [p for p in varying if p not in (x, group)]
        fig = kpi_vs_parameter(summary, kpi, x, group=group, others=others)
        path = directory / f"{_safe(kpi)}__vs__{_safe(x)}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
        if heatmaps and len(varying) >= 2:
            y = varying[1]
            fig = kpi_heatmap(summary, kpi, x, y, others=varying[2:])
            path = directory / f"{_safe(kpi)}__heatmap__{_safe(x)}__{_safe(y)}.png"
            fig.savefig(path, dpi=110)
            written.append(path)
    return written
