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


def _shorten(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters (run labels differ at both ends)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def format_kpi_table(table: pd.DataFrame, width: int) -> str:
    """The KPI table as text at most ``width`` characters wide.

    Run labels are cut in the middle to their share of the width (never below 12 characters or
    their numbers); runs that still do not fit side by side continue in further blocks below,
    each repeating the KPI names, so no run is ever hidden.
    """
    gap = 2
    names = [str(i) for i in table.index]
    name_w = min(max(map(len, names), default=0), max(width // 2, 10))
    cells = [[f"{v:,.3f}" for v in table[label]] for label in table.columns]
    share = max((width - name_w) // max(len(cells), 1) - gap, 12)
    col_w = [max(max(map(len, c), default=0), min(len(str(label)), share)) for label, c in zip(table.columns, cells)]
    heads = [_shorten(str(label), w) for label, w in zip(table.columns, col_w)]
    blocks: list[list[int]] = [[]]
    used = name_w
    for j, w in enumerate(col_w):
        if blocks[-1] and used + gap + w > width:
            blocks.append([])
            used = name_w
        blocks[-1].append(j)
        used += gap + w
    lines: list[str] = []
    for b in blocks:
        if lines:
            lines.append("")
        lines.append(" " * name_w + "".join(" " * gap + heads[j].rjust(col_w[j]) for j in b))
        for i, name in enumerate(names):
            lines.append(_shorten(name, name_w).ljust(name_w) + "".join(" " * gap + cells[j][i].rjust(col_w[j]) for j in b))
    return "\n".join(lines)


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
