"""KPIs: pure functions of finished results (tables in, numbers out)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def peak_valley_diff_ratio(net_kw: pd.Series) -> float:
    """Mean over days of (daily max - daily min) / daily max (the Chinese 峰谷差率)."""
    daily = net_kw.groupby(net_kw.index.normalize()).agg(["max", "min"])
    daily = daily[daily["max"] > 0]
    return float(((daily["max"] - daily["min"]) / daily["max"]).mean()) if len(daily) else float("nan")


def base_net_kw(system: pd.DataFrame) -> pd.Series:
    """The base every KPI and plot compares with: the load without EVs minus PV (``pv_kw``,
    networks only), i.e. the net load before EVs, swap stations and storage."""
    base = system["base_load_kw"]
    return base - system["pv_kw"] if "pv_kw" in system else base.copy()


def compute_kpis(system: pd.DataFrame, vehicles: pd.DataFrame, dt_h: float, transformer_kva: float,
                 v_band_pu: tuple[float, float] = (0.93, 1.07), loading_limit_pct: float = 100.0) -> dict[str, float]:
    """The headline numbers of one run; names carry units.

    Args:
        system: time series with base_load_kw (pv_kw), ev_charge_kw, v2g_discharge_kw,
            net_load_kw, transformer_loading_pct (one row per step).
        vehicles: per-vehicle summary table.

    ``base_peak_kw``, ``peak_increase_*`` and ``energy_base_kwh`` are of :func:`base_net_kw`
    (load − PV); ``unmet_energy_kwh`` includes turned-away sessions
    (``unmet_energy_turned_away_kwh``) and the part of sessions open at the end that can no
    longer be met (``energy_pending_at_end_kwh`` is all they still ask for).
        dt_h: step length in hours.
        transformer_kva: rating, for reference.
        v_band_pu: allowed voltage band (min, max) for the violation hours (network runs).
        loading_limit_pct: line loading above which a step counts as overloaded (network runs).
    """
    net = system["net_load_kw"]
    base = base_net_kw(system)
    peak = float(net.max())
    base_peak = float(base.max())
    mean = float(net.mean())
    out = {
        "n_vehicles": float(len(vehicles)),
        "peak_load_kw": peak,
        "base_peak_kw": base_peak,
        "peak_increase_kw": peak - base_peak,
        "peak_increase_pct": (peak - base_peak) / base_peak * 100.0 if base_peak > 0 else float("nan"),
        "ev_peak_kw": float(system["ev_charge_kw"].max()),
        "load_factor": mean / peak if peak > 0 else float("nan"),
        "peak_valley_diff_ratio": peak_valley_diff_ratio(net),
        "max_transformer_loading_pct": float(system["transformer_loading_pct"].max()),
        "transformer_overload_h": float((system["transformer_loading_pct"] > 100.0).sum() * dt_h),
        "transformer_kva": float(transformer_kva),
        "energy_base_kwh": float(base.sum() * dt_h),
        "energy_charged_kwh": float(vehicles["e_charged_kwh"].sum()),
        "v2g_energy_kwh": float(vehicles["e_discharged_kwh"].sum()),
        "conversion_losses_kwh": float(vehicles["e_loss_kwh"].sum()),
        "energy_driven_kwh": float(vehicles["e_driven_kwh"].sum()),
        "distance_km": float(vehicles["distance_km"].sum()),
        "unmet_energy_kwh": float(vehicles["unmet_kwh"].sum()),
        "stranded_trips": float(vehicles["stranded_trips"].sum()),
        "stranded_energy_kwh": float(vehicles["stranded_kwh"].sum()),
        "departures_below_min_soc": float(vehicles["departures_below_min"].sum()),
        "departures": float(vehicles["departures"].sum()),
        "no_charger_events": float(vehicles["no_charger_events"].sum()),
        "sessions": float(vehicles["sessions"].sum()),
        "sessions_turned_away": float(vehicles["sessions_turned_away"].sum()),
        "unmet_energy_turned_away_kwh": float(vehicles["unmet_turned_away_kwh"].sum()),
        # drivers short of charge for the next trip, and public queues (v2gsim.population.drivers)
        **{kpi: _total(vehicles, col) for kpi, col in DRIVER_KPIS},
        "sessions_open_at_end": float(vehicles["plugged_at_end"].sum()),
        "energy_pending_at_end_kwh": float(vehicles["pending_kwh"].sum()),
        "charging_cost_cny": float(vehicles["cost_cny"].sum()),
        "v2g_revenue_cny": float(vehicles["revenue_cny"].sum()),
        "mean_final_soc": float(np.mean(vehicles["soc_final"])) if len(vehicles) else float("nan"),
    }
    if "pf_converged" in system:
        out.update(network_kpis(system, dt_h, v_band_pu, loading_limit_pct))
    return out


# KPI name -> per-vehicle column of the drivers' choices (docs/mobility.md)
DRIVER_KPIS = (
    ("delayed_departures", "delayed_departures"), ("departure_delay_min", "delay_min"), ("detours", "detours"),
    ("detour_min", "detour_min"), ("trips_shortened", "trips_shortened"), ("trips_cancelled", "trips_cancelled"),
    ("km_lost", "km_lost"), ("queued_at_public", "queued"), ("queue_wait_min", "queue_wait_min"), ("queue_left", "queue_left"),
)


def _total(vehicles: pd.DataFrame, col: str) -> float:
    """Sum of a column; NaN for results saved before the column existed."""
    return float(vehicles[col].sum()) if col in vehicles else float("nan")


def network_kpis(system: pd.DataFrame, dt_h: float, v_band_pu: tuple[float, float] = (0.93, 1.07),
                 loading_limit_pct: float = 100.0) -> dict[str, float]:
    """Feeder KPIs of a run on a network (system columns vm_min_pu, vm_max_pu,
    line_loading_max_pct, losses_kw, pf_converged, pf_unsolved_buses, headroom_kw).

    - voltage_violation_h: hours with any bus outside ``v_band_pu`` (non-converged steps not
      counted; see nonconverged_steps; nor buses without a solution, see max_unsolved_buses).
    - max_unsolved_buses: most in-service buses left without a voltage in a step (areas no
      external grid supplies, all of them on a step that did not converge; every bus with
      ``solver: capacity_only``).
    - line_overload_h: hours with the most loaded line above ``loading_limit_pct``.
    - losses_kwh: line and transformer losses.
    - hosting_capacity_margin_kw: the smallest hourly-mean headroom, i.e. how much more load
      (e.g. EV charging) the worst hour could take at the worst-placed bus (negative: that
      hour was already over a limit). Linear estimate from thermal limits; voltages ignored.
    """
    lo, hi = v_band_pu
    vmin, vmax = system["vm_min_pu"], system["vm_max_pu"]
    head_h = system["headroom_kw"].resample("1h").mean() if isinstance(system.index, pd.DatetimeIndex) else system["headroom_kw"]
    return {
        "voltage_violation_h": float(((vmin < lo) | (vmax > hi)).sum() * dt_h),
        "undervoltage_h": float((vmin < lo).sum() * dt_h),
        "overvoltage_h": float((vmax > hi).sum() * dt_h),
        "min_voltage_pu": float(vmin.min()),
        "max_voltage_pu": float(vmax.max()),
        "max_line_loading_pct": float(system["line_loading_max_pct"].max()),
        "line_overload_h": float((system["line_loading_max_pct"] > loading_limit_pct).sum() * dt_h),
        "losses_kwh": float(system["losses_kw"].sum() * dt_h),
        "nonconverged_steps": float((system["pf_converged"] < 0.5).sum()),
        "max_unsolved_buses": float(system["pf_unsolved_buses"].max()),
        "hosting_capacity_margin_kw": float(head_h.min()),
        "energy_pv_kwh": float(system["pv_kw"].sum() * dt_h),
    }


def swap_kpis(stations: pd.DataFrame, swaps: pd.DataFrame, dt_h: float) -> dict[str, float]:
    """Battery-swap KPIs from the ``stations`` (long, per station and step) and ``swaps`` (one
    row per driver at a station) tables.

    - swaps_served, swap_drivers_left (waited longer than the limit, or their next trip began);
    - swaps_served_low_soc, swaps_served_long_trip: the served swaps by why the driver came
      (``swaps.reason``: arrived below ``swap_below_soc``, or before a trip too long for the charge);
    - swap_wait_mean_min / swap_wait_p95_min: waiting time of the served drivers;
    - swap_utilisation_pct: swaps served over the stations' swap capacity in the run;
    - swap_packs_ready_min / _mean: ready packs over all stations (a system time series);
    - swap_station_peak_kw, swap_station_energy_charged_kwh, swap_station_energy_discharged_kwh;
    - swap_station_cost_cny, swap_station_revenue_cny, swap_station_wear_cost_cny (operator).
    """
    served = swaps[swaps["outcome"] == "swapped"]
    wait = served["wait_min"].to_numpy(float)
    total = stations.groupby("time", observed=True)[["p_kw", "packs_ready"]].sum()
    cap = float(stations["swap_capacity"].sum())
    # results saved before swaps had a reason: every driver came low
    n_long = float((served["reason"] == "long_trip").sum()) if "reason" in served else 0.0
    return {
        "swaps_served": float(len(served)),
        "swaps_served_low_soc": float(len(served)) - n_long,
        "swaps_served_long_trip": n_long,
        "swap_drivers_left": float(len(swaps) - len(served)),
        "swap_wait_mean_min": float(wait.mean()) if wait.size else float("nan"),
        "swap_wait_p95_min": float(np.percentile(wait, 95)) if wait.size else float("nan"),
        "swap_utilisation_pct": float(len(served) / cap * 100.0) if cap > 0 else float("nan"),
        "swap_packs_ready_min": float(total["packs_ready"].min()) if len(total) else float("nan"),
        "swap_packs_ready_mean": float(total["packs_ready"].mean()) if len(total) else float("nan"),
        "swap_station_peak_kw": float(total["p_kw"].max()) if len(total) else float("nan"),
        "swap_station_energy_charged_kwh": float(stations["charge_kw"].sum() * dt_h),
        "swap_station_energy_discharged_kwh": float(stations["discharge_kw"].sum() * dt_h),
        "swap_station_cost_cny": float(stations["cost_cny"].sum()),
        "swap_station_revenue_cny": float(stations["revenue_cny"].sum()),
        "swap_station_wear_cost_cny": float(stations["wear_cost_cny"].sum()),
    }


def wear_kpis(wear: pd.DataFrame, packs: pd.DataFrame | None = None, *, second_life_days: float | None = None) -> dict[str, float]:
    """Battery-wear KPIs from the per-vehicle ``wear`` table and the retired-pack table.

    - wear_fade_mean_pct / wear_fade_p95_pct: capacity fade (percent of nominal, summed over
      each vehicle's packs);
    - wear_fade_v2g_mean_pct / _p95_pct: the V2G-attributed part (percentage points), and its
      mean over the vehicles that did V2G (wear_fade_v2g_mean_v2g_vehicles_pct);
    - wear_fade_calendar_mean_pct, wear_fade_driving_mean_pct, wear_fade_charging_mean_pct;
    - wear_cost_cny (fade priced at replacement cost), wear_cost_v2g_cny, wear_fec_mean;
    - packs_retired, pack_replacement_cost_cny, wear_out_of_range_vehicle_periods;
    - second_life_packs, second_life_energy_discharged_kwh, second_life_throughput_kwh,
      second_life_revenue_cny, second_life_packs_recycled.
    """
    fade = wear["fade_pct"].to_numpy(float)
    v2g = wear["fade_v2g_pct"].to_numpy(float)
    did = wear["e_v2g_kwh"].to_numpy(float) > 0 if "e_v2g_kwh" in wear else v2g != 0
    out = {
        "wear_fade_mean_pct": float(fade.mean()) if fade.size else float("nan"),
        "wear_fade_p95_pct": float(np.percentile(fade, 95)) if fade.size else float("nan"),
        "wear_fade_v2g_mean_pct": float(v2g.mean()) if v2g.size else float("nan"),
        "wear_fade_v2g_p95_pct": float(np.percentile(v2g, 95)) if v2g.size else float("nan"),
        "wear_fade_v2g_mean_v2g_vehicles_pct": float(v2g[did].mean()) if did.any() else 0.0,
        "wear_fade_calendar_mean_pct": float(wear["fade_calendar_pct"].mean()),
        "wear_fade_driving_mean_pct": float(wear["fade_driving_pct"].mean()),
        "wear_fade_charging_mean_pct": float(wear["fade_charging_pct"].mean()),
        "wear_cost_cny": float(wear["wear_cost_cny"].sum()),
        "wear_cost_v2g_cny": float(wear["wear_cost_v2g_cny"].sum()),
        "wear_fec_mean": float(wear["fec"].mean()),
        "packs_retired": float(wear["packs_replaced"].sum()),
        "pack_replacement_cost_cny": float(wear["replacement_cost_cny"].sum()),
        "wear_out_of_range_vehicle_periods": float(wear["out_of_range_periods"].sum()),
    }
    if packs is not None:
        out.update({
            "second_life_packs": float(len(packs)),
            "second_life_energy_discharged_kwh": float(packs["e_discharged_kwh"].sum()),
            "second_life_throughput_kwh": float(packs["e_charged_kwh"].sum() + packs["e_discharged_kwh"].sum()),
            "second_life_revenue_cny": float(packs["revenue_cny"].sum()),
            "second_life_packs_recycled": float((packs["status"] == "recycled").sum()),
        })
    return out


def swap_pack_wear_kpis(packs: pd.DataFrame) -> dict[str, float]:
    """Swap-pack wear KPIs from the ``swap_pack_wear`` table (one row per pack id).

    - swap_pack_fade_mean_pct / swap_pack_fade_p95_pct (summed over each id's packs);
    - swap_pack_soh_min, swap_pack_fec_mean, swap_packs_retired;
    - swap_pack_wear_cost_cny (fade priced at replacement cost), swap_pack_replacement_cost_cny.
    """
    fade = packs["fade_pct"].to_numpy(float)
    return {
        "swap_pack_fade_mean_pct": float(fade.mean()) if fade.size else float("nan"),
        "swap_pack_fade_p95_pct": float(np.percentile(fade, 95)) if fade.size else float("nan"),
        "swap_pack_soh_min": float(packs["soh"].min()) if fade.size else float("nan"),
        "swap_pack_fec_mean": float(packs["fec"].mean()) if fade.size else float("nan"),
        "swap_packs_retired": float(packs["packs_replaced"].sum()),
        "swap_pack_wear_cost_cny": float(packs["wear_cost_cny"].sum()),
        "swap_pack_replacement_cost_cny": float(packs["replacement_cost_cny"].sum()),
    }


# ---------------------------------------------------------------------- wear by cause, V2G's worth

FADE_CAUSES = {  # column of the wear table -> cause; driving and charging together are the cycle fade
    "fade_calendar_pct": "calendar",
    "fade_driving_pct": "cycle_driving",
    "fade_charging_pct": "cycle_charging",
    "fade_v2g_pct": "v2g",
}


def fade_by_cause(results, by: str = "group") -> pd.DataFrame:
    """Mean capacity fade per vehicle by cause, per value of a column of ``results.vehicles``.

    Args:
        results: a run with wear (``results.extra["wear"]``).
        by: a column of the vehicles table (``group``, ``archetype``, ``vehicle_model``).

    Returns:
        One row per value of ``by`` and a last row ``all vehicles``: ``vehicles`` (count),
        ``calendar_pct``, ``cycle_driving_pct``, ``cycle_charging_pct``, ``v2g_pct`` (means in
        percentage points of nominal capacity; they add up to ``total_pct``, the mean
        ``fade_pct``) and ``v2g_share_pct`` (V2G's part of the total, percent).
    """
    wear = _wear_table(results)
    if by not in results.vehicles:
        raise ValueError(f"by={by!r} is not a column of the vehicles table; use one of {list(results.vehicles.columns)}")
    t = wear[["vehicle", *FADE_CAUSES, "fade_pct"]].merge(results.vehicles[["vehicle", by]], on="vehicle", how="left")
    cols = {c: f"{name}_pct" for c, name in FADE_CAUSES.items()} | {"fade_pct": "total_pct"}
    t = t.rename(columns=cols)
    value_cols = list(cols.values())
    per_group = t.groupby(by, observed=True, sort=False)[value_cols].mean()
    per_group.insert(0, "vehicles", t.groupby(by, observed=True, sort=False).size())
    fleet = pd.DataFrame([[len(t), *t[value_cols].mean()]], columns=["vehicles", *value_cols], index=["all vehicles"])
    out = pd.concat([per_group, fleet])
    out.index.name = by
    out["v2g_share_pct"] = np.divide(out["v2g_pct"] * 100.0, out["total_pct"], out=np.full(len(out), np.nan),
                                     where=out["total_pct"].to_numpy() > 0)
    out["vehicles"] = out["vehicles"].astype(int)
    return out


def v2g_value_per_vehicle(results) -> pd.DataFrame:
    """What V2G paid each vehicle against what it cost the battery, one row per vehicle.

    Columns: ``vehicle``, ``group``, ``e_v2g_kwh`` (grid-side energy fed back), ``v2g_revenue_cny``
    (that energy at the V2G price, ``vehicles.revenue_cny``), ``fade_v2g_pct`` (V2G-attributed
    fade, points of nominal capacity; negative where V2G slowed calendar ageing),
    ``v2g_wear_cost_cny`` (that fade priced at replacement cost, ``wear.wear_cost_v2g_cny``),
    ``v2g_net_cny`` (revenue − wear cost), ``pack_life_used_by_v2g_pct`` (the V2G fade as a share
    of the fade from new to ``wear.retirement_soh``: the part of the pack's service life V2G
    used), ``battery_leased`` (the pack is the swap operator's: its wear cost is the operator's,
    0 here).
    """
    wear = _wear_table(results)
    retire_soh = float(results.metadata["scenario"]["wear"]["retirement_soh"])
    v = results.vehicles[["vehicle", "group", "e_discharged_kwh", "revenue_cny"]]
    t = v.merge(wear[["vehicle", "fade_v2g_pct", "wear_cost_v2g_cny", "battery_leased"]], on="vehicle", how="left")
    return pd.DataFrame({
        "vehicle": t["vehicle"],
        "group": t["group"],
        "e_v2g_kwh": t["e_discharged_kwh"],
        "v2g_revenue_cny": t["revenue_cny"],
        "fade_v2g_pct": t["fade_v2g_pct"],
        "v2g_wear_cost_cny": t["wear_cost_v2g_cny"],
        "v2g_net_cny": t["revenue_cny"] - t["wear_cost_v2g_cny"],
        "pack_life_used_by_v2g_pct": t["fade_v2g_pct"] / (1.0 - retire_soh),
        "battery_leased": t["battery_leased"].astype(bool),
    })


def _wear_table(results) -> pd.DataFrame:
    wear = getattr(results, "extra", {}).get("wear")
    if wear is None:
        raise ValueError("these results have no battery wear: run the scenario with a wear section "
                         "(wear: {model: auto}), e.g. load_scenario(name, {'wear.model': 'auto'})")
    return wear


# ---------------------------------------------------------------------- per-bus voltages

def worst_voltage_step(results) -> pd.Timestamp:
    """The recorded step with the lowest bus voltage of the run (converged steps only).

    Raises:
        ValueError: the run has no network, or no step converged.
    """
    sy = results.system
    if "vm_min_pu" not in sy:
        raise ValueError("these results have no per-bus voltages: the scenario needs a feeder.network")
    vmin = sy["vm_min_pu"].where(sy["pf_converged"] >= 0.5)
    if vmin.isna().all():
        raise ValueError("no step of this run has a converged power flow")
    return vmin.idxmin()


def bus_voltages_at(results, time) -> pd.Series:
    """Every bus's voltage (p.u., indexed by the network's bus label) at one recorded step.

    Raises:
        ValueError: the run did not record bus voltages (``outputs.bus_voltages: true``) or
            ``time`` is not one of its steps.
    """
    bv = results.bus_voltages
    if bv is None:
        raise ValueError("these results have no per-bus voltages: set outputs.bus_voltages: true (needs a feeder.network)")
    at = bv[bv["time"] == pd.Timestamp(time)]
    if at.empty:
        raise ValueError(f"{time} is not a recorded step of this run ({bv['time'].min()} to {bv['time'].max()})")
    return pd.Series(at["vm_pu"].to_numpy(float), index=at["bus"].to_numpy(), name="vm_pu").rename_axis("bus")


# ---------------------------------------------------------------------- hosting capacity of a sweep

DEFAULT_HOSTING_LIMITS = {"max_transformer_loading_pct": 100.0, "max_line_loading_pct": 100.0}


def hosting_capacity(table: pd.DataFrame, size: str, *, by: str | None = None,
                     upper: dict[str, float] | None = None, lower: dict[str, float] | None = None) -> pd.DataFrame:
    """The largest fleet (or other size parameter) a feeder took within its limits, from a sweep's run table.

    A size is within limits when every successful run at it (all replications) keeps each KPI of
    ``upper`` at or below its value and each KPI of ``lower`` at or above it. The hosting
    capacity is the largest size below the first size that is not, so a lucky larger size after
    a violation does not count.

    Args:
        table: a run table (`v2gsim.sweeps.run_sweep`): ``status``, the ``size`` and ``by``
            parameter columns and the KPI columns the limits name.
        size: the parameter column that grows (e.g. ``population.0.count``).
        by: a parameter column to answer per value of (e.g. ``business_models.0.kind``).
        upper: KPI -> largest allowed value; default transformer and line loading at 100 %.
        lower: KPI -> smallest allowed value, e.g. ``{"min_voltage_pu": 0.93}``.

    Returns:
        One row per value of ``by`` (or one row ``all``): ``hosting_capacity`` (NaN when even the
        smallest size broke a limit), ``first_violation`` (the smallest size that broke one;
        NaN when none did), ``binding`` (the KPIs broken there, comma-separated) and
        ``largest_size_run``.

    Raises:
        ValueError: a limit names a KPI the table lacks.
    """
    upper = DEFAULT_HOSTING_LIMITS if upper is None else upper
    lower = lower or {}
    missing = [k for k in [*upper, *lower] if k not in table]
    if missing:
        raise ValueError(f"the run table has no KPI {missing}: name it in the sweep's kpis (columns: {list(table.columns)})")
    ok = table[table["status"] == "ok"]
    broken = pd.DataFrame({k: ok[k] > v for k, v in upper.items()} | {k: ok[k] < v for k, v in lower.items()}, index=ok.index)
    groups = ok.groupby(by, sort=False, observed=True) if by else [("all", ok)]
    rows = {}
    for g, part in groups:
        per_size = broken.loc[part.index].groupby(part[size]).any().sort_index()
        bad = per_size.any(axis=1)
        sizes = per_size.index.to_numpy()
        if bad.any():
            first = sizes[bad.to_numpy().argmax()]
            below = sizes[sizes < first]
            rows[g] = {"hosting_capacity": float(below.max()) if below.size else float("nan"),
                       "first_violation": float(first),
                       "binding": ", ".join(c for c in per_size.columns if per_size.loc[first, c])}
        else:
            rows[g] = {"hosting_capacity": float(sizes.max()), "first_violation": float("nan"), "binding": ""}
        rows[g]["largest_size_run"] = float(sizes.max())
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by or "runs"
    return out
