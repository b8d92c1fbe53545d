"""KPIs: pure functions of finished results (tables in, numbers out)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def peak_valley_diff_ratio(net_kw: pd.Series) -> float:
    """Mean over days of (daily max - daily min) / daily max (the Chinese 峰谷差率)."""
    daily = net_kw.groupby(net_kw.index.normalize()).agg(["max", "min"])
    daily = daily[daily["max"] > 0]
    return float(((daily["max"] - daily["min"]) / daily["max"]).mean()) if len(daily) else float("nan")


def compute_kpis(system: pd.DataFrame, vehicles: pd.DataFrame, dt_h: float, transformer_kva: float) -> dict[str, float]:
    """The headline numbers of one run; names carry units.

    Args:
        system: time series with base_load_kw, ev_charge_kw, v2g_discharge_kw, net_load_kw,
            transformer_loading_pct (one row per step).
        vehicles: per-vehicle summary table.
        dt_h: step length in hours.
        transformer_kva: rating, for reference.
    """
    net = system["net_load_kw"]
    base = system["base_load_kw"]
    peak = float(net.max())
    base_peak = float(base.max())
    mean = float(net.mean())
    return {
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
        "charging_cost_cny": float(vehicles["cost_cny"].sum()),
        "v2g_revenue_cny": float(vehicles["revenue_cny"].sum()),
        "mean_final_soc": float(np.mean(vehicles["soc_final"])) if len(vehicles) else float("nan"),
    }
