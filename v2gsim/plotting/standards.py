"""The standards pair over time: V2G capacity plugged where cars can discharge, per side (the
Results of `v2gsim.standards.pair.run_standards_pair`)."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

from v2gsim.plotting.figure import new_figure
from v2gsim.results import Results

__all__ = ["plot_standards_pair"]

_COLOURS = {"fragmented": "#d95f02", "unified": "#1b9e77"}


def plot_standards_pair(runs: Mapping[str, Results], ax=None) -> Figure:
    """``v2g_plugged_kw`` of each side (a line) and, dashed, the bidirectional capacity the
    protocols block (``v2g_blocked_kw``); kW against time."""
    if ax is None:
        fig = new_figure((10, 4))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for side, res in runs.items():
        s = res.system
        c = _COLOURS.get(side)
        ax.plot(s.index, s["v2g_plugged_kw"], color=c, lw=1.2, label=f"{side}: V2G capacity plugged")
        if s["v2g_blocked_kw"].any():
            ax.plot(s.index, s["v2g_blocked_kw"], color=c, lw=0.9, ls="--", label=f"{side}: blocked by the protocol")
    ax.set_ylabel("kW")
    ax.set_title("Standards pair: V2G capacity within the operator's reach")
    ax.legend(loc="upper right", fontsize=8)
    fig.autofmt_xdate()
    return fig
