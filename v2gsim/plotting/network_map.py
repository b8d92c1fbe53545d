"""The feeder drawn as a map: every bus coloured by its voltage at one step of a run.

Coordinates come from the network's bus geodata (SimBench, CIGRE and the IEEE 33-bus case carry
it); a network without it is laid out generically: pandapower's `create_generic_coordinates`
where its graph library (igraph) is installed, else a layered drawing of the network's spanning
tree from its external grids (networkx, already a pandapower dependency).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from v2gsim.metrics import bus_voltages_at, worst_voltage_step
from v2gsim.plotting.figure import new_figure

__all__ = ["bus_coordinates", "plot_voltage_map"]


def _point(geo) -> tuple[float, float] | None:
    if geo is None or (isinstance(geo, float) and np.isnan(geo)):
        return None
    g = json.loads(geo) if isinstance(geo, str) else geo
    if isinstance(g, dict) and g.get("type") == "Point":
        x, y = g["coordinates"][:2]
        return float(x), float(y)
    return None


def bus_coordinates(net) -> tuple[pd.DataFrame, str]:
    """x, y of every bus of a pandapower net (indexed by bus label) and where they came from.

    Returns:
        (DataFrame with columns x, y, source) where source is ``"geodata"`` when every bus has
        a GeoJSON point in ``net.bus.geo``, else ``"generic"`` (a layout of the topology; the
        net is not changed).
    """
    geo = net.bus["geo"] if "geo" in net.bus else pd.Series(None, index=net.bus.index, dtype=object)
    points = [_point(g) for g in geo]
    if all(p is not None for p in points):
        xy = np.array(points, dtype=float)
        return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=net.bus.index), "geodata"
    return _generic_coordinates(net), "generic"


def _generic_coordinates(net) -> pd.DataFrame:
    import copy

    try:
        import igraph  # noqa: F401  (pandapower's generic layout needs it)
        from pandapower.plotting import create_generic_coordinates

        work = copy.deepcopy(net)
        create_generic_coordinates(work, library="igraph", overwrite=True)
        return pd.DataFrame(np.array([_point(g) for g in work.bus["geo"]], dtype=float), index=net.bus.index, columns=["x", "y"])
    except ImportError:
        return _tree_coordinates(net)


def _tree_coordinates(net) -> pd.DataFrame:
    """A layered drawing of the network's breadth-first spanning tree from its external grids:
    depth downwards, leaves side by side, each bus centred over its children. Distribution
    feeders are radial, so this is their single-line diagram; a meshed net loses only the
    drawing of its loop-closing branches' positions (they are still drawn, as chords)."""
    import networkx as nx
    from pandapower.topology import create_nxgraph

    g = nx.Graph()
    g.add_nodes_from(net.bus.index)
    g.add_edges_from((a, b) for a, b, *_ in create_nxgraph(net, respect_switches=False, include_out_of_service=True).edges)
    roots = list(dict.fromkeys(net.ext_grid["bus"])) if "ext_grid" in net and len(net.ext_grid) else []
    children: dict = {}
    depth: dict = {}
    order = []
    for start in [*roots, *net.bus.index]:  # the external grids first, then any bus no grid reaches
        if start in depth:
            continue
        depth[start] = 0
        order.append(start)
        for parent, child in nx.bfs_edges(g, start):
            depth[child] = depth[parent] + 1
            children.setdefault(parent, []).append(child)
        order.extend(c for c in nx.bfs_tree(g, start) if c != start)
    x: dict = {}
    next_leaf = [0.0]

    def place(b):  # iterative post-order: leaves left to right, parents over their children
        stack = [(b, False)]
        while stack:
            node, done = stack.pop()
            kids = children.get(node, [])
            if done or not kids:
                if kids:
                    x[node] = float(np.mean([x[k] for k in kids]))
                else:
                    x[node] = next_leaf[0]
                    next_leaf[0] += 1.0
                continue
            stack.append((node, True))
            stack.extend((k, False) for k in reversed(kids))

    for b in order:
        if depth[b] == 0:
            place(b)
            next_leaf[0] += 1.0  # a gap between trees
    return pd.DataFrame({"x": [x[b] for b in net.bus.index], "y": [-float(depth[b]) for b in net.bus.index]}, index=net.bus.index)


def plot_voltage_map(results, time=None, *, net=None, ax=None, v_range_pu: tuple[float, float] | None = None) -> Figure:
    """The feeder's buses coloured by voltage at one step, lines and transformers between them.

    Args:
        results: a run on a ``feeder.network`` with ``outputs.bus_voltages: true``.
        time: the step to draw (a timestamp of ``results.system``); default the worst step,
            the one with the lowest bus voltage (`v2gsim.metrics.worst_voltage_step`).
        net: the pandapower net; default the scenario's ``feeder.network`` loaded again.
        ax: draw into this Axes instead of a new figure.
        v_range_pu: the colour scale (min, max); default the scenario's voltage band, so
            maps of different runs compare.

    Buses without a solution (unsupplied areas) are drawn hollow; the lowest-voltage bus is
    labelled, the external grid's bus drawn as a square.
    """
    if time is None:
        time = worst_voltage_step(results)
    vm = bus_voltages_at(results, time)
    feeder = results.metadata["scenario"]["feeder"]
    if net is None:
        from v2gsim.physics.networks import load_network

        net = load_network(feeder["network"])
    xy, source = bus_coordinates(net)
    vm = vm.reindex(xy.index)
    lo, hi = v_range_pu or (feeder.get("v_min_pu", 0.93), feeder.get("v_max_pu", 1.07))
    if ax is None:
        fig = new_figure((7.5, 6))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    segs, styles = [], []
    for table, a, b, style in (("line", "from_bus", "to_bus", "-"), ("trafo", "hv_bus", "lv_bus", "--")):
        t = net[table] if table in net else pd.DataFrame()
        if len(t):
            t = t[t["in_service"]]
            segs += [[xy.loc[f, ["x", "y"]].to_numpy(), xy.loc[s, ["x", "y"]].to_numpy()] for f, s in zip(t[a], t[b], strict=True)]
            styles += [style] * len(t)
    if segs:
        solid = [s for s, st in zip(segs, styles, strict=True) if st == "-"]
        dashed = [s for s, st in zip(segs, styles, strict=True) if st == "--"]
        ax.add_collection(LineCollection(solid, colors="#999999", linewidths=1.0, zorder=1))
        if dashed:
            ax.add_collection(LineCollection(dashed, colors="#555555", linewidths=1.5, linestyles="dashed", zorder=1,
                                             label="transformer"))
    solved = vm.notna().to_numpy()
    sc = ax.scatter(xy["x"][solved], xy["y"][solved], c=vm[solved], cmap="RdYlBu", vmin=lo, vmax=hi, s=40,
                    edgecolors="k", linewidths=0.4, zorder=2)
    if (~solved).any():
        ax.scatter(xy["x"][~solved], xy["y"][~solved], facecolors="none", edgecolors="grey", s=40, zorder=2,
                   label=f"no solution ({int((~solved).sum())})")
    if "ext_grid" in net and len(net.ext_grid):
        eg = net.ext_grid[net.ext_grid["in_service"]]["bus"]
        ax.scatter(xy.loc[eg, "x"], xy.loc[eg, "y"], marker="s", s=90, facecolors="none", edgecolors="k", zorder=3,
                   label="external grid")
    if solved.any():
        worst = vm.idxmin()
        ax.annotate(f"bus {worst}: {vm[worst]:.3f} p.u.", (xy.loc[worst, "x"], xy.loc[worst, "y"]), xytext=(8, -12),
                    textcoords="offset points", fontsize=8)
    fig.colorbar(sc, ax=ax, label="voltage (p.u.)", extend="both")
    ax.set_aspect("equal" if source == "geodata" else "auto", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    # the scenario's name may describe its file's fleet, not this run's (sweeps and overrides change it)
    sc = results.metadata["scenario"]
    n_vehicles = int(results.kpis.get("n_vehicles", len(results.vehicles)))
    control = " + ".join(dict.fromkeys(bm["kind"] for bm in sc.get("business_models", [])))
    ax.set_title(f"{sc['name']}\nthis run: {n_vehicles} vehicles, {control or 'uncontrolled'}; "
                 f"bus voltages at {pd.Timestamp(time):%Y-%m-%d %H:%M}\n"
                 f"(min {np.nanmin(vm.to_numpy(float)):.3f} p.u.; {'' if source == 'geodata' else 'generic layout, '}"
                 f"colour scale {lo:g}-{hi:g})", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    return fig
