"""Per-operator accounting: pure functions of finished Results.

One row per business-model entry, by its operator id as the engine names it in the ledger and
in KPI names (``<kind>``, or ``<kind><k>`` where a kind appears twice). Which sites an operator
owns and whom it served is what the engine recorded (``extra["site_service"]`` and
``extra["operator_service"]``, written by :class:`v2gsim.model.V2GModel`), never a second copy
of its ownership rule. Energy and money come from the ledger (:mod:`v2gsim.market.settlement`):
an operator's energy is what it bought from the grid company (``energy_purchase``) and sold back
to it (``energy_sale``) -- grid-side, gross over the vehicles at its sites and its swap
stations -- so the operators' energies add up to the EV and station energy of the system table.

Money is in CNY throughout. Cost is what an actor paid, revenue what it was paid, net the
difference; over all actors the nets add up to zero (:func:`actor_money` checks it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from v2gsim.errors import SimulationError
from v2gsim.market.settlement import DRIVERS, GRID_COMPANY

CURRENCY = "CNY"
NO_OPERATOR = "(no operator)"
"""Row of the energy drawn at sites no business model owns (drivers pay the grid company)."""

LEDGER_COLUMNS = ("step", "payer", "payee", "reason", "energy_kwh", "amount_cny")

# the per-operator columns that become KPIs ``<operator_id>_<column>``
KPI_COLUMNS = (
    "energy_drawn_kwh", "energy_fed_back_kwh", "feeder_peak_load_kw", "feeder_peak_share_pct", "own_peak_kw",
    "v2g_requests", "v2g_requested_kwh", "v2g_delivered_in_requests_kwh", "cost_cny", "revenue_cny", "net_cny",
    "wear_cny", "net_after_wear_cny", "drivers_served", "sessions", "swaps_served", "swap_drivers_left", "unmet_energy_kwh",
)


# ---------------------------------------------------------------------------------- who is who

def operator_list(results) -> pd.DataFrame:
    """The business models of a run, one row per entry in scenario order (index ``operator_id``):
    ``kind``, ``sites`` and ``stations`` (lists of ids) and ``config`` (the entry as resolved).

    Raises:
        ValueError: the results were saved before the engine recorded site ownership.
    """
    svc = results.extra.get("operator_service")
    sites = results.extra.get("site_service")
    if svc is None or sites is None:
        raise ValueError("these results carry no record of who owns which site (extra tables site_service and "
                         "operator_service): run the scenario again with this version of v2gsim")
    bms = results.metadata["scenario"]["business_models"]
    ids = svc["operator_id"].astype(str).tolist()
    if len(ids) != len(bms):
        raise ValueError(f"operator_service lists {len(ids)} operators but the scenario has {len(bms)} business models")
    owner = sites["operator_id"].astype(str)
    out = pd.DataFrame({
        "kind": svc["kind"].astype(str).to_numpy(),
        "sites": [sites.loc[owner == op, "site_id"].astype(str).tolist() for op in ids],
        "stations": [[st["id"] for st in bm.get("stations") or [] if isinstance(st, Mapping) and "id" in st] for bm in bms],
        "config": bms,
    }, index=pd.Index(ids, name="operator_id"))
    return out


# ---------------------------------------------------------------------------------- money

def _check_ledger(ledger: pd.DataFrame) -> None:
    missing = [c for c in LEDGER_COLUMNS if c not in ledger]
    if missing:
        raise ValueError(f"the ledger table lacks the column(s) {', '.join(missing)} (needs {', '.join(LEDGER_COLUMNS)})")


def actor_money(ledger: pd.DataFrame, *, tolerance_cny: float = 1e-6) -> pd.DataFrame:
    """Per actor of the ledger (index ``actor``: the grid company, each operator, drivers, second
    life): ``cost_cny`` (paid), ``revenue_cny`` (was paid), ``net_cny``, and the energy it paid
    for and was paid for (kWh). Sorted by net, highest first.

    Raises:
        SimulationError: the ledger does not balance: an entry names no payer or payee, pays
            itself or moves a non-finite amount, or the actors' nets do not add up to zero within
            ``tolerance_cny`` plus a 1e-9 share of the money moved.
    """
    _check_ledger(ledger)
    payer, payee = ledger["payer"].astype(object), ledger["payee"].astype(object)
    amount = ledger["amount_cny"].to_numpy(float)
    # every entry moves money between two named actors, so the nets cancel; an entry that names
    # one side only, pays itself or moves no finite amount breaks that
    one_sided = payer.isna().to_numpy() | payee.isna().to_numpy()
    bad = one_sided | (payer.astype(str) == payee.astype(str)).to_numpy() | ~np.isfinite(amount)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        e = ledger.iloc[i]
        raise SimulationError(f"the ledger does not balance: entry {i} (step {e['step']}, {e['payer']!r} -> {e['payee']!r}, "
                              f"{e['reason']}, {e['amount_cny']!r} CNY) names no payer or payee, pays itself or moves no finite "
                              f"amount ({int(bad.sum())} such entries); every settlement must post both sides")
    payer, payee = payer.astype(str), payee.astype(str)
    actors = sorted(set(payer) | set(payee))
    scale = tolerance_cny + 1e-9 * float(np.abs(amount).sum())
    g_paid = ledger.groupby(payer)[["amount_cny", "energy_kwh"]].sum()
    g_got = ledger.groupby(payee)[["amount_cny", "energy_kwh"]].sum()
    idx = pd.Index(actors, name="actor")
    paid, got = g_paid.reindex(idx, fill_value=0.0), g_got.reindex(idx, fill_value=0.0)
    out = pd.DataFrame({
        "cost_cny": paid["amount_cny"],
        "revenue_cny": got["amount_cny"],
        "net_cny": got["amount_cny"] - paid["amount_cny"],
        "energy_paid_for_kwh": paid["energy_kwh"],
        "energy_paid_to_it_kwh": got["energy_kwh"],
    }, index=idx)
    total = float(out["net_cny"].sum())
    if abs(total) > scale:
        raise SimulationError(f"the ledger does not balance: the actors' nets add up to {total:.6g} CNY, not 0")
    return out.sort_values("net_cny", ascending=False, kind="stable")


# ---------------------------------------------------------------------------------- energy per step

def operator_energy(results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grid-side energy each operator drew and fed back per recorded step (kWh), from the ledger.

    Returns:
        (drawn, fed): DataFrames of shape (n_steps, operators) indexed like ``results.system``,
        one column per operator id in scenario order, and a last column `NO_OPERATOR` for the
        vehicles at sites no business model owns.
    """
    ledger = results.ledger
    _check_ledger(ledger)
    ops = operator_list(results).index.tolist()
    n = len(results.system)
    payer, payee, reason = ledger["payer"].astype(str), ledger["payee"].astype(str), ledger["reason"].astype(str)
    steps = ledger["step"].to_numpy(np.int64)
    energy = ledger["energy_kwh"].to_numpy(float)

    def per_step(mask) -> np.ndarray:
        m = np.asarray(mask, bool)
        return np.bincount(steps[m], weights=energy[m], minlength=n)[:n]

    drawn = {op: per_step((payer == op) & (reason == "energy_purchase")) for op in ops}
    fed = {op: per_step((payee == op) & (reason == "energy_sale")) for op in ops}
    drawn[NO_OPERATOR] = per_step((payer == DRIVERS) & (payee == GRID_COMPANY) & (reason == "charging"))
    fed[NO_OPERATOR] = per_step((payer == GRID_COMPANY) & (payee == DRIVERS) & (reason == "v2g"))
    index = results.system.index
    return pd.DataFrame(drawn, index=index), pd.DataFrame(fed, index=index)


def operator_load_kw(results) -> pd.DataFrame:
    """Each operator's net grid power per recorded step (kW, > 0 drawn), shape (n_steps, operators + 1)."""
    drawn, fed = operator_energy(results)
    return (drawn - fed) / results.dt_h


def feeder_peak_step(results) -> int:
    """Position of the feeder's net peak (the first step of the largest ``net_load_kw``)."""
    return int(np.argmax(results.system["net_load_kw"].to_numpy(float)))


# ---------------------------------------------------------------------------------- requests

def _windows(times: pd.DatetimeIndex, start, hours: float, daily: bool) -> list[tuple[int, int]]:
    """[first, end) positions in ``times`` of a window (the steps whose start lies in it), once
    or repeated every day of ``times``; windows outside ``times`` are left out."""
    t = np.asarray(times.values)
    if t.size == 0:
        return []
    st = pd.Timestamp(start)
    if st.tzinfo is not None:
        st = st.tz_localize(None)
    starts = [st]
    if daily:
        first = (times[0].normalize() - st.normalize()).days - 1
        last = (times[-1].normalize() - st.normalize()).days + 1
        starts = [st + pd.Timedelta(days=k) for k in range(first, last + 1)]
    out = []
    for s0 in starts:
        a = int(np.searchsorted(t, np.datetime64(s0), side="left"))
        b = int(np.searchsorted(t, np.datetime64(s0 + pd.Timedelta(seconds=round(hours * 3600))), side="left"))
        if b > a:
            out.append((a, b))
    return out


REQUEST_COLUMNS = ("operator_id", "request", "name", "kind", "start", "end", "steps", "asked", "asked_kw", "asked_kwh",
                   "reward_cny_per_kwh", "delivered_kwh", "net_kw_mean", "import_max_kw", "shortfall_kwh", "met_pct")


def operator_requests(results) -> pd.DataFrame:
    """Every grid request to an operator that falls in the recorded run, one row per window and
    operator it addresses (a ``daily`` request gives one row per day), with what was asked and
    what was delivered.

    Requests in the one schema (:mod:`v2gsim.market.events`): ``grid_operator.requests`` and the
    business models' own keys of earlier versions translated (centralized ``requests``,
    distributed ``invitations``, battery_swap ``discharge_requests``). ``peak_cut``: draw at most
    ``p_kw``; ``valley_fill``: at least ``p_kw``; ``discharge_call``: feed at least ``p_kw``, or
    ``e_kwh`` over the window, or as much as they can; ``site``: that site only.

    Columns: ``operator_id``; ``request`` (position in the one schema's list); ``name``;
    ``kind``; ``start``, ``end`` (window, local time; the steps whose start lies in it);
    ``steps``; ``asked`` (text); ``asked_kw`` (export asked, or the import cap of a peak cut; NaN:
    as much as possible); ``asked_kwh`` (export asked over the window: ``p_kw`` times its hours,
    or ``e_kwh``; NaN if open-ended or not an export); ``reward_cny_per_kwh`` (the request's
    price); ``delivered_kwh`` (energy fed back in the window by the operator's sites and
    stations, or the named site); ``net_kw_mean`` and ``import_max_kw`` (its net power in the
    window); ``shortfall_kwh`` (export below what was asked, or import above the cap);
    ``met_pct`` (delivered over asked; peak cut: share of steps within the cap).
    """
    from v2gsim.market.events import asked_text, requests_of_dump

    times = results.system.index
    dt_h = results.dt_h
    ops = operator_list(results)
    drawn, fed = operator_energy(results)
    site_p = None
    rows = []
    for n, r in enumerate(requests_of_dump(results.metadata["scenario"])):
        name = r.id or f"{r.kind}{n}"
        for op in (r.to if r.to is not None else list(ops.index)):
            if op not in ops.index:
                continue
            cap = r.kind == "peak_cut"
            floor = r.kind in ("valley_fill", "regulation")
            site = r.site
            if site is not None:
                if site_p is None:
                    sp = results.sites.assign(site_id=results.sites["site_id"].astype(str))
                    site_p = sp.pivot(index="time", columns="site_id", values="p_kw").reindex(times)
                net_kw = site_p[site].to_numpy(float)
                out_kwh = np.maximum(-net_kw, 0.0) * dt_h
            else:
                net_kw = (drawn[op] - fed[op]).to_numpy(float) / dt_h
                out_kwh = fed[op].to_numpy(float)
            p_kw = np.nan if r.p_kw is None else float(r.p_kw)
            for a, b in _windows(times, r.start, r.window_h, r.daily):
                w = net_kw[a:b]
                delivered = float(out_kwh[a:b].sum())
                hours_in = (b - a) * dt_h
                if cap:
                    shortfall = float(np.maximum(w - p_kw, 0.0).sum() * dt_h)
                    met = float((w <= p_kw + 1e-9).mean() * 100.0)
                    asked_kwh = np.nan
                elif floor:
                    shortfall, met, asked_kwh = np.nan, np.nan, np.nan
                elif np.isnan(p_kw) and r.e_kwh is None:
                    shortfall, met, asked_kwh = np.nan, np.nan, np.nan
                elif np.isnan(p_kw):
                    asked_kwh = float(r.e_kwh)
                    shortfall = max(asked_kwh - delivered, 0.0)
                    met = delivered / asked_kwh * 100.0
                else:
                    asked_kwh = p_kw * hours_in
                    shortfall = float(np.maximum(p_kw - np.maximum(-w, 0.0), 0.0).sum() * dt_h)
                    met = delivered / asked_kwh * 100.0 if asked_kwh > 0 else np.nan
                rows.append((op, n, name, r.kind, times[a], times[b - 1] + pd.Timedelta(hours=dt_h), b - a,
                             asked_text(r) + (f" at {site}" if site else ""), p_kw, asked_kwh, float(r.price_cny_per_kwh), delivered,
                             float(w.mean()), float(w.max()), shortfall, met))
    out = pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))
    if out.empty:
        out = out.astype({"start": "datetime64[ns]", "end": "datetime64[ns]", "steps": np.int64})
    return out


# ---------------------------------------------------------------------------------- the table

TABLE_COLUMNS = ("kind", "sites", "stations", *KPI_COLUMNS)


def operator_table(results, requests: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-operator table (index ``operator_id``; a last row `NO_OPERATOR` where vehicles
    charged at sites no business model owns).

    Columns (money in CNY, energy grid-side in kWh, power in kW):

    - ``kind``, ``sites``, ``stations`` (ids, comma-separated);
    - ``energy_drawn_kwh``, ``energy_fed_back_kwh``: at its sites and stations;
    - ``feeder_peak_load_kw``: its net load at the step of the feeder's net peak (the coincident
      peak); ``feeder_peak_share_pct``: that load as a share of the feeder's peak;
    - ``own_peak_kw``: its own largest net load;
    - ``v2g_requests``, ``v2g_requested_kwh`` (where a request states a power),
      ``v2g_delivered_in_requests_kwh`` (fed back in its request windows; :func:`operator_requests`);
    - ``cost_cny``, ``revenue_cny``, ``net_cny``: what it paid and was paid (the ledger);
    - ``wear_cny``: the wear of batteries it owns, as its energy management priced it (swap
      stations' discharge wear; 0 where the batteries are the drivers'); ``net_after_wear_cny``;
    - ``drivers_served`` (distinct drivers with a session at its sites, plus distinct drivers
      swapped at its stations), ``sessions``, ``swaps_served``, ``swap_drivers_left``;
    - ``unmet_energy_kwh``: energy its sites' sessions asked for and did not get.
    """
    ops = operator_list(results)
    requests = operator_requests(results) if requests is None else requests
    drawn, fed = operator_energy(results)
    dt_h = results.dt_h
    k_peak = feeder_peak_step(results)
    peak_kw = float(results.system["net_load_kw"].iloc[k_peak])
    net_kw = (drawn - fed) / dt_h
    money = actor_money(results.ledger) if len(results.ledger) else pd.DataFrame(columns=["cost_cny", "revenue_cny", "net_cny"])
    sites = results.extra["site_service"].assign(operator_id=lambda d: d["operator_id"].astype(str))
    per_site = sites.groupby("operator_id")[["sessions", "unmet_kwh"]].sum()
    served = results.extra["operator_service"].set_index(results.extra["operator_service"]["operator_id"].astype(str))["drivers_served"]
    stations = results.extra.get("stations")
    swaps = results.extra.get("swaps")
    rows = {}
    for op in [*ops.index, NO_OPERATOR]:
        if op == NO_OPERATOR:
            if not (drawn[op].any() or fed[op].any() or (sites["operator_id"] == "").any()):
                continue
            kind, site_ids, st_ids, key = "", sites.loc[sites["operator_id"] == "", "site_id"].astype(str).tolist(), [], ""
        else:
            kind, site_ids, st_ids, key = ops.at[op, "kind"], ops.at[op, "sites"], ops.at[op, "stations"], op
        wear = n_swaps = left = 0.0
        swapped_drivers = 0
        if st_ids and stations is not None:
            mine = stations[stations["station_id"].astype(str).isin(st_ids)]
            wear = float(mine["wear_cost_cny"].sum())
        if st_ids and swaps is not None:
            mine = swaps[swaps["station_id"].astype(str).isin(st_ids)]
            ok = mine["outcome"].astype(str) == "swapped"
            n_swaps, left = float(ok.sum()), float((~ok).sum())
            swapped_drivers = int(mine.loc[ok, "vehicle"].nunique())
        req = requests[requests["operator_id"] == op] if op != NO_OPERATOR else requests.iloc[:0]
        m = money.loc[op] if op in money.index else pd.Series({"cost_cny": 0.0, "revenue_cny": 0.0, "net_cny": 0.0})
        at_peak = float(net_kw[op].iloc[k_peak])
        rows[op] = {
            "kind": kind, "sites": ", ".join(site_ids), "stations": ", ".join(st_ids),
            "energy_drawn_kwh": float(drawn[op].sum()), "energy_fed_back_kwh": float(fed[op].sum()),
            "feeder_peak_load_kw": at_peak,
            "feeder_peak_share_pct": at_peak / peak_kw * 100.0 if peak_kw > 0 else np.nan,
            "own_peak_kw": float(net_kw[op].max()) if len(net_kw) else np.nan,
            "v2g_requests": float(len(req)),
            "v2g_requested_kwh": float(req["asked_kwh"].sum(min_count=1)) if len(req) else 0.0,
            "v2g_delivered_in_requests_kwh": float(req["delivered_kwh"].sum()),
            "cost_cny": float(m["cost_cny"]), "revenue_cny": float(m["revenue_cny"]), "net_cny": float(m["net_cny"]),
            "wear_cny": wear, "net_after_wear_cny": float(m["net_cny"]) - wear,
            # a driver served at both its sites and its stations counts once per kind of service
            "drivers_served": float(served.get(key, 0) + swapped_drivers) if op != NO_OPERATOR else np.nan,
            "sessions": float(per_site["sessions"].get(key, 0)),
            "swaps_served": n_swaps, "swap_drivers_left": left,
            "unmet_energy_kwh": float(per_site["unmet_kwh"].get(key, 0.0)),
        }
    out = pd.DataFrame.from_dict(rows, orient="index", columns=list(TABLE_COLUMNS))
    out.index.name = "operator_id"
    return out


def operator_kpis(table: pd.DataFrame) -> dict[str, float]:
    """KPIs ``<operator_id>_<column>`` of the per-operator table (the row of vehicles at sites
    without an operator is left out: it has no id of its own)."""
    out = {}
    for op, row in table.drop(index=NO_OPERATOR, errors="ignore").iterrows():
        for c in KPI_COLUMNS:
            out[f"{op}_{c}"] = float(row[c])
    return out


def add_operator_results(results) -> None:
    """Add ``extra["operators"]``, ``extra["operator_requests"]`` and the per-operator KPIs to a
    Results built from a recording (the results build calls it)."""
    if "site_service" not in results.extra:
        return
    requests = operator_requests(results)
    table = operator_table(results, requests)
    results.extra["operators"] = table.reset_index()
    results.extra["operator_requests"] = requests
    results.kpis.update(operator_kpis(table))
