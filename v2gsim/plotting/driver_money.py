"""The drivers' money figure: who gains and who loses from V2G, and what their money is made of."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from v2gsim.plotting.figure import new_figure

_PARTS = (("v2g_income_cny", "V2G income kept", "#66c2a5", 1.0), ("wear_compensation_cny", "wear compensation", "#8da0cb", 1.0),
          ("min_guarantee_cny", "guarantee top-up", "#e78ac3", 1.0), ("wear_cost_cny", "V2G wear cost (−)", "#fc8d62", -1.0))


def plot_driver_money(results) -> Figure:
    """Left: histogram of each participating driver's V2G net (income kept + compensation +
    guarantee − V2G wear cost), gains green, losses red, with the counts. Right: deciles of the
    parts of that net over the same drivers (bars per decile, wear cost below zero). From
    :func:`v2gsim.market.driver_money.driver_money`."""
    from v2gsim.market.driver_money import driver_money, driver_money_deciles

    table = results.extra.get("drivers_money")
    table = table.set_index("vehicle") if table is not None else driver_money(results)
    part = table[table["outcome"].astype(str) != "not taking part"]
    fig = new_figure((11, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    net = part["v2g_net_cny"].to_numpy(float)
    gains, losses = int((part["outcome"].astype(str) == "gains").sum()), int((part["outcome"].astype(str) == "loses").sum())
    if net.size:
        bins = np.histogram_bin_edges(net, bins=min(30, max(5, net.size // 3)))
        ax.hist(net[net > 0], bins=bins, color="#1a9850", alpha=0.85, label=f"gain: {gains}")
        ax.hist(net[net <= 0], bins=bins, color="#d73027", alpha=0.85, label=f"lose or even: {net.size - gains}")
        ax.axvline(0.0, color="k", lw=0.8)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no driver took part in V2G", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("V2G net per driver (CNY)")
    ax.set_ylabel("drivers")
    ax.set_title(f"who gains ({gains}) and who loses ({losses}), of {len(table)} drivers", fontsize=10)
    ax2 = fig.add_subplot(1, 2, 2)
    dec = driver_money_deciles(part) if len(part) else None
    if dec is not None:
        x = np.arange(len(dec))
        w = 0.2
        for i, (col, label, color, sign) in enumerate(_PARTS):
            ax2.bar(x + (i - 1.5) * w, sign * dec[col].fillna(0.0).to_numpy(), w, label=label, color=color)
        ax2.plot(x, dec["v2g_net_cny"].to_numpy(), "k.-", lw=1.0, label="V2G net")
        ax2.set_xticks(x, list(dec.index), fontsize=8)
        ax2.axhline(0.0, color="0.5", lw=0.5)
        ax2.legend(fontsize=7, ncols=2)
    ax2.set_ylabel("CNY per driver")
    ax2.set_title("deciles over participating drivers", fontsize=10)
    fig.suptitle(f"{results.metadata['scenario']['name']}: drivers' V2G money", fontsize=11)
    return fig
