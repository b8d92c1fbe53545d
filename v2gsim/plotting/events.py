"""A demand-response event settled against its baseline (`v2gsim.market.events.event_table`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from v2gsim.plotting.figure import new_figure

__all__ = ["plot_event"]


def plot_event(results, request: int | str | None = None, ax=None, *, margin_h: float = 2.0) -> Figure:
    """The operator's baseline and actual net load around each settled window of ``request``
    (its position or name; None: the first settled), the window shaded, the delivered energy
    filled between the two and the settlement in the title."""
    from v2gsim.market.events import event_table

    t = event_table(results, request, margin_h=margin_h)
    first = t[["request", "operator_id"]].iloc[0]
    t = t[(t["request"] == first["request"]) & (t["operator_id"] == first["operator_id"])]
    if ax is None:
        fig = new_figure((10, 4))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    w = t[t["in_window"]]
    dt = t["time"].iloc[1] - t["time"].iloc[0]
    # each step's value holds until the next step starts: repeat the last one at the end
    ext = lambda s: np.r_[s.to_numpy(float), s.iloc[-1]] / 1000  # noqa: E731
    end = lambda s: pd.DatetimeIndex(s).append(pd.DatetimeIndex([s.iloc[-1] + dt]))  # noqa: E731
    tt, tw = end(t["time"]), end(w["time"])
    ax.axvspan(tw[0], tw[-1], color="#fee8c8", label="request window")
    ax.step(tt, ext(t["actual_kw"]), where="post", color="#d95f02", label="actual")
    ax.step(tw, ext(w["baseline_kw"]), where="post", color="#7570b3", ls="--", label="baseline")
    ax.fill_between(tw, ext(w["baseline_kw"]), ext(w["actual_kw"]), step="post", color="#1b9e77", alpha=0.25, label="delivered")
    s = results.extra["grid_settlement"]
    row = s[(s["request"] == first["request"]) & (s["operator_id"] == first["operator_id"])].iloc[0]
    ax.set_title(f"{row['name']} ({row['kind']}, {row['operator_id']}): delivered {row['delivered_kwh'] / 1000:,.1f} of "
                 f"{row['asked_kwh'] / 1000:,.1f} MWh asked; paid {row['paid_cny']:,.0f}, penalty {row['penalty_cny']:,.0f} CNY "
                 f"(baseline: {row['baseline_method']})", fontsize=9)
    ax.set_ylabel("net load, MW")
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(loc="best", fontsize=8)
    return fig
