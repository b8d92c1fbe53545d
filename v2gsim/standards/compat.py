"""Which car fits which charger: compatibility masks over vehicle types x charger types.

Every vehicle belongs to one *vehicle class* (its inlets and protocols), every charger of a site
to one of the site's *charger types* (connectors, protocols, share of the site's chargers). Names
become bits, so the masks are two array operations::

    charge_ok[c, t]    = inlets(c) & connectors(t) != 0          a common connector
    discharge_ok[c, t] = charge_ok[c, t] and v2g(c) & v2g(t) != 0  ... and a common protocol

A site or group without ``standards`` fits everything (all bits set); such a site has two types,
bidirectional with ``bidirectional_share`` and charge-only with the rest, and a charger drawn
with the same uniform number as before standards existed (``u < share``: the first type), so
scenarios without standards run exactly as they did.

When a car plugs in at a shared site it takes a free charger of a type its inlet fits; which type
is drawn in proportion to the types' shares among those that fit (one uniform number per car,
:func:`draw_type`). Occupancy is counted per site, not per type: a site's free chargers are
assumed to be of its types in proportion (documented in docs/business_models.md "Standards").
A car that no type of the site fits cannot charge there (counted as a charger not found).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v2gsim.standards.catalogue import CONNECTORS

ALL_BITS = np.int64(-1)  # every bit set: fits (or speaks) everything


@dataclass(frozen=True)
class StandardsTable:
    """Charger types and vehicle classes of a scenario as arrays.

    Attributes:
        site_type: (S, T) global charger-type index of each site's types, -1 padding.
        site_share: (S, T) share of the site's chargers of each type (0 padding).
        charge_ok: (C, n_types) bool, vehicle class c can charge at type t.
        discharge_ok: (C, n_types) bool, ... and discharge there.
        type_v2g: (n_types,) the type speaks some bidirectional protocol.
        group_classes: per population group, its classes' indices and shares (legacy: one, 1.0).
        uses_standards: some site or group states standards.
    """

    site_type: np.ndarray
    site_share: np.ndarray
    charge_ok: np.ndarray
    discharge_ok: np.ndarray
    type_v2g: np.ndarray
    group_classes: tuple[tuple[np.ndarray, np.ndarray], ...]
    uses_standards: bool

    def fits(self, cls: np.ndarray, site: np.ndarray) -> np.ndarray:
        """(k,) bool: some charger type of ``site`` (k,) fits vehicle class ``cls`` (k,)."""
        t = self.site_type[site]
        return (self.charge_ok[cls[:, None], np.maximum(t, 0)] & (t >= 0)).any(axis=1)

    def draw_type(self, cls: np.ndarray, site: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The charger type each car takes: vehicle classes ``cls``, sites ``site``, uniform numbers
        ``u`` in [0, 1), all (k,). Types that fit are weighted by their share; -1 where none fits."""
        t = self.site_type[site]
        w = self.site_share[site] * (self.charge_ok[cls[:, None], np.maximum(t, 0)] & (t >= 0))
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1]
        pick = np.argmax(u[:, None] * total[:, None] < cum, axis=1)
        return np.where(total > 0, t[np.arange(t.shape[0]), pick], -1)

    def can_discharge(self, cls: np.ndarray, typ: np.ndarray) -> np.ndarray:
        """(k,) bool: class ``cls`` can discharge at charger type ``typ`` (-1: not plugged)."""
        return np.where(typ >= 0, self.discharge_ok[cls, np.maximum(typ, 0)], False)


def v2g_share(site) -> float:
    """Share of a site's chargers that can discharge: the types speaking a bidirectional protocol
    (with ``standards``), else ``bidirectional_share``. ``site``: a ``Site`` or its dict."""
    get = site.get if isinstance(site, dict) else lambda k, d=None: getattr(site, k, d)
    types = get("standards")
    if types is None:
        return float(get("bidirectional_share", 0.0) or 0.0)
    return float(sum((t["share"] if isinstance(t, dict) else t.share) for t in types
                     if (t.get("v2g") if isinstance(t, dict) else t.v2g)))


class _Bits:
    """Names -> bits, assigned in the order first seen."""

    def __init__(self):
        self.index: dict[str, int] = {}

    def mask(self, names) -> np.int64:
        m = 0
        for n in names:
            m |= 1 << self.index.setdefault(n, len(self.index))
        return np.int64(m)


def build_table(scenario) -> StandardsTable:
    """The charger types of every site and the vehicle classes of every population group (the
    imported sessions' block, if any, is one more legacy class after the groups)."""
    conn, proto = _Bits(), _Bits()
    for c in CONNECTORS:
        conn.mask([c])
    t_conn, t_v2g, site_types, site_shares = [], [], [], []
    for s in scenario.sites:
        if s.standards is None:
            types = [(ALL_BITS, ALL_BITS, s.bidirectional_share), (ALL_BITS, np.int64(0), 1.0 - s.bidirectional_share)]
        else:
            types = [(conn.mask(cs.connectors), proto.mask(cs.v2g), cs.share) for cs in s.standards]
        site_types.append(list(range(len(t_conn), len(t_conn) + len(types))))
        site_shares.append([sh for _, _, sh in types])
        t_conn += [c for c, _, _ in types]
        t_v2g += [p for _, p, _ in types]
    c_inlet, c_v2g, group_classes = [], [], []
    for g in scenario.population:
        from v2gsim.population.fleet import vehicle_spec

        bidir = vehicle_spec(g.vehicle).bidirectional
        entries = ([(ALL_BITS, ALL_BITS if bidir else np.int64(0), 1.0)] if g.standards is None else
                   [(conn.mask(vs.inlets), proto.mask(vs.v2g) if bidir else np.int64(0), vs.share) for vs in g.standards])
        group_classes.append((np.arange(len(c_inlet), len(c_inlet) + len(entries)), np.array([e[2] for e in entries])))
        c_inlet += [e[0] for e in entries]
        c_v2g += [e[1] for e in entries]
    if scenario.mobility_sessions is not None:
        from v2gsim.population.fleet import vehicle_spec

        bidir = vehicle_spec(scenario.mobility_sessions.vehicle).bidirectional
        group_classes.append((np.array([len(c_inlet)]), np.array([1.0])))
        c_inlet.append(ALL_BITS)
        c_v2g.append(ALL_BITS if bidir else np.int64(0))
    width = max([len(t) for t in site_types] + [1])
    site_type = np.full((len(site_types), width), -1, np.int64)
    site_share = np.zeros((len(site_types), width))
    for i, (t, sh) in enumerate(zip(site_types, site_shares)):
        site_type[i, : len(t)] = t
        site_share[i, : len(sh)] = sh
    t_conn, t_v2g = np.array(t_conn, np.int64), np.array(t_v2g, np.int64)
    c_inlet, c_v2g = np.array(c_inlet, np.int64), np.array(c_v2g, np.int64)
    charge_ok = (c_inlet[:, None] & t_conn[None, :]) != 0
    discharge_ok = charge_ok & ((c_v2g[:, None] & t_v2g[None, :]) != 0)
    uses = any(s.standards is not None for s in scenario.sites) or any(g.standards is not None for g in scenario.population)
    return StandardsTable(site_type, site_share, charge_ok, discharge_ok, t_v2g != 0, tuple(group_classes), uses)


def assign_classes(counts: np.ndarray, shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Class position (0..len(shares)-1) of each of ``counts`` vehicles: exact counts by largest
    remainder of ``shares`` x ``counts``, in random order (so a group's mix is its stated mix)."""
    n = int(counts)
    raw = shares / shares.sum() * n
    k = np.floor(raw).astype(np.int64)
    k[np.argsort(-(raw - k), kind="stable")[: n - int(k.sum())]] += 1
    return rng.permutation(np.repeat(np.arange(shares.size), k))
