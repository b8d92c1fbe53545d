"""Side-by-side comparison of runs: a KPI table and overlaid load curves.

Each item is a saved result folder (``v2gsim run -o DIR``) or a scenario (file or bundled
name), which is then run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from v2gsim.plotting.figure import new_figure
from v2gsim.results import Results


def load_or_run(item: str | Path, *, progress: bool = False) -> tuple[str, Results]:
    """(label, results) for a result folder or a scenario."""
    p = Path(item)
    if p.is_dir() and (p / "metadata.json").is_file():
        r = Results.load(p)
        return p.name, r
    from v2gsim import load_scenario, run

    sc = load_scenario(item)
    return Path(str(item)).stem, run(sc, progress=progress)


def kpi_table(runs: dict[str, Results]) -> pd.DataFrame:
    """KPIs as rows, runs as columns (missing KPIs are NaN)."""
    return pd.DataFrame({label: pd.Series(r.kpis, dtype=float) for label, r in runs.items()})


def plot_compare(runs: dict[str, Results], column: str = "net_load_kw") -> Figure:
    """Overlaid load curves (top) and their mean daily profile (bottom)."""
    fig = new_figure((11, 7))
    ax, ax2 = fig.subplots(2, 1)
    for label, r in runs.items():
        s = r.system[column]
        ax.plot(s.index, s, lw=0.9, label=label)
        tod = s.index.hour + s.index.minute / 60
        ax2.plot(s.groupby(tod).mean(), label=label)
    ax.set_ylabel(f"{column}")
    ax.set_title(f"{column} over time")
    ax.legend(fontsize=8)
    ax2.set_xlabel("hour of day")
    ax2.set_ylabel(f"mean {column}")
    ax2.set_xlim(0, 24)
    ax2.set_xticks(range(0, 25, 3))
    return fig
