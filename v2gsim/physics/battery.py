"""Charging and discharging of batteries: the one implementation used by every vehicle.

Charging follows a CC-CV curve. The battery accepts at most ``p_batt_max`` (its DC limit) below
the knee ``e_knee = soc_knee * capacity``; above it the acceptable power falls linearly with the
remaining room, ``p_accept(e) = p_batt_max * (cap - e) / (cap - e_knee)``. A charger delivering
``p`` (battery side) therefore charges at constant power until ``p_accept(e) = p`` and then
follows the taper: ``de/dt = min(p, k * (cap - e))`` with ``k = p_batt_max / (cap - e_knee)``.
So fast DC charging tapers from the knee while a 7 kW AC pile stays at full power almost to the
top, as real cars do. Charging ends at ``e_full``, where the acceptable power has fallen to
``taper_cutoff_frac`` of ``p_batt_max``. The step is integrated exactly (a linear ramp, then an
exponential approach), so the result does not depend on the step length. Discharging draws
``|p| / eta_discharge`` from the battery at constant power and stops at a floor energy.
"""

from __future__ import annotations

import numpy as np


def charge_to(e0_kwh, cap_kwh, e_knee_kwh, e_full_kwh, p_batt_kw, p_batt_max_kw, dt_h):
    """Energy after charging for dt_h at battery-side power p_batt_kw under the CC-CV taper.

    All arguments are arrays of one shape (or scalars); 0 < p_batt_kw <= p_batt_max_kw.
    Returns e1 with e0 <= e1 <= max(e0, e_full).
    """
    p = np.maximum(p_batt_kw, 1e-12)
    k_per_h = p_batt_max_kw / np.maximum(cap_kwh - e_knee_kwh, 1e-12)  # rate constant of the taper
    e_cv_start = np.maximum(e_knee_kwh, cap_kwh - p / k_per_h)  # where the taper limit meets p
    t_to_cv_h = np.maximum(e_cv_start - e0_kwh, 0.0) / p
    e_cc = e0_kwh + p * dt_h
    tau_h = np.maximum(dt_h - t_to_cv_h, 0.0)
    e_cv = cap_kwh - (cap_kwh - np.maximum(e0_kwh, e_cv_start)) * np.exp(-k_per_h * tau_h)
    e1 = np.where(e_cc <= e_cv_start, e_cc, e_cv)
    return np.maximum(e0_kwh, np.minimum(e1, e_full_kwh))


def discharge_to(e0_kwh, e_floor_kwh, p_batt_kw, dt_h):
    """Energy after drawing p_batt_kw (> 0) from the battery for dt_h, never below the floor."""
    return np.maximum(np.minimum(e0_kwh, np.maximum(e_floor_kwh, e0_kwh - p_batt_kw * dt_h)), 0.0)


def apply_power(fleet, idx: np.ndarray, p_req_kw: np.ndarray, dt_h: float) -> np.ndarray:
    """Apply requested grid-side power to vehicles ``idx`` for one step; return the power drawn.

    The request is clipped to the vehicle's current charger (``p_plug_max_kw``), to discharge
    permission (``can_discharge``), to the battery's CC-CV curve and to the driver's departure
    reserve as the discharge floor. Updates ``e_kwh``, ``p_kw``, ``below_stop`` and the energy
    accumulators in place. Shapes: idx (k,), p_req_kw (k,) -> (k,) grid-side kW, > 0 charging.
    """
    e0 = fleet.e_kwh[idx]
    p_max = fleet.p_plug_max_kw[idx]
    p = np.clip(p_req_kw, -p_max * fleet.can_discharge[idx], p_max)
    eta_c = fleet.eta_charge[idx]
    cap = fleet.capacity_kwh[idx]
    charging = p > 0
    p_batt_max = fleet.p_batt_max_kw[idx]
    if np.count_nonzero(charging) == p.size:  # every vehicle charges (uncontrolled): the masks select everything
        p_batt = np.minimum(p * eta_c, p_batt_max)
        e1 = charge_to(e0, cap, fleet.soc_knee[idx] * cap, fleet.e_full_kwh[idx], p_batt, p_batt_max, dt_h)
        any_discharging = False
    else:
        p_batt = np.minimum(np.where(charging, p, 0.0) * eta_c, p_batt_max)
        e1 = np.where(charging, charge_to(e0, cap, fleet.soc_knee[idx] * cap, fleet.e_full_kwh[idx], p_batt, p_batt_max, dt_h), e0)
        discharging = p < 0
        any_discharging = bool(np.count_nonzero(discharging))
    if any_discharging:  # skipped entirely by charge-only strategies, the common case
        eta_d = fleet.eta_discharge[idx]
        e_down = discharge_to(e0, np.minimum(e0, fleet.e_min_departure_kwh[idx]), np.where(discharging, -p, 0.0) / eta_d, dt_h)
        e1 = np.where(discharging, e_down, e1)
    de = e1 - e0
    fleet.e_kwh[idx] = e1
    if any_discharging:
        grid_kwh = np.where(de > 0, de / eta_c, de * eta_d)
        fleet.e_discharged_kwh[idx] += np.maximum(-grid_kwh, 0.0)
    else:
        grid_kwh = de / eta_c
    p_grid = grid_kwh / dt_h
    fleet.p_kw[idx] = p_grid
    fleet.e_charged_kwh[idx] += np.maximum(grid_kwh, 0.0)
    fleet.e_loss_kwh[idx] += np.abs(grid_kwh - de)
    fleet.session_grid_kwh[idx] += grid_kwh
    fleet.below_stop[idx] = e1 < fleet.e_stop_kwh[idx] - 1e-9
    return p_grid
