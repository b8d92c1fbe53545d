"""Published against simulated: one row per pilot figure (the table of `v2gsim.pilots.pilot_table`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from v2gsim.plotting.figure import new_figure

__all__ = ["plot_pilots"]


def plot_pilots(table: pd.DataFrame, ax=None) -> Figure:
    """Each figure's simulated value as a share of the published one (a dot), with the band the
    test allows (a bar; a tick where the band is one value); green inside the band, red outside."""
    if ax is None:
        fig = new_figure((9, 0.55 * len(table) + 1.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    y = np.arange(len(table))[::-1]
    pub = table["published"].to_numpy(float)
    lo, hi = table["band_low"].to_numpy(float) / pub, table["band_high"].to_numpy(float) / pub
    ax.barh(y, np.maximum(hi - lo, 0.004), left=np.where(hi - lo < 0.004, lo - 0.002, lo), height=0.5, color="#dddddd", label="band")
    ok = table["within"].to_numpy(bool)
    ax.scatter(table["ratio"][ok], y[ok], color="#1b9e77", zorder=3, label="simulated, within its band")
    if (~ok).any():
        ax.scatter(table["ratio"][~ok], y[~ok], color="#d95f02", zorder=3, label="simulated, outside its band")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(y, [f"{p}: {f}" for p, f in zip(table["pilot"], table["figure"])], fontsize=8)
    ax.set_xlabel("simulated / published")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("China's pilots: simulated against published")
    return fig
