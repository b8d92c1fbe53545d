"""Rows a dispatch LP gains for a valley fill's floor and for regulation capacity held.

Both are soft: each has one slack column per step, priced at what the grid pays for it, so the
LP stays feasible whatever the fleet can do.

* **Floor** (valley fill): ``net_t + u_t >= floor_t``; ``u_t`` costs ``floor_price * dt`` per kW.
* **Reserve** (regulation, ``R_t`` kW both ways around the planned power): with one slack
  ``v_t`` (kW not held; at most ``R_t``, costing ``reserve_price * dt``):

  - charger headroom down (the fleet can draw ``R`` more): ``bidir_net_t - v_t <= room_ch_t - R_t``
    where ``room_ch_t`` is the plugged bidirectional vehicles' charger power;
  - charger headroom up (it can draw ``R`` less / feed ``R`` more):
    ``bidir_net_t + v_t >= R_t - room_dis_t`` (their discharge power);
  - site limits: ``net_t - v_t <= p_site_max_t - R_t`` and ``net_t + v_t >= p_site_min_t + R_t``;
  - energy (with per-vehicle energy columns, the exact LP): the plugged bidirectional vehicles
    hold ``R_t * sustain_h`` above their floors after discharge losses and below their
    capacities before charge losses: ``sum eta_dis (e - e_lb) + sustain_h v_t >= R_t sustain_h``
    and ``sum (e_cap - e) / eta_ch + sustain_h v_t >= R_t sustain_h``. The assumption: the
    regulation signal is energy-neutral over the window but may sit at +-1 for ``sustain_h``
    (``sustain_min`` of the request; docs/market.md "Regulation").

The aggregate LP has no per-vehicle energy and does not tell bidirectional vehicles from the
others: there the headroom rows use the whole fleet's net power and no energy rows (a looser
relaxation; the exact LP is the reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["GridRows", "grid_rows"]


@dataclass(frozen=True)
class GridRows:
    """The extra block of an LP: ``A`` (rows x (n_base + n_slack)), row bounds, slack costs and
    bounds; ``floor_rows`` (positions of the floor rows within the block) for duals."""

    A: sp.csr_array
    lo: np.ndarray
    hi: np.ndarray
    c: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    floor_rows: np.ndarray
    floor_steps: np.ndarray
    n_base: int

    @property
    def n_slack(self) -> int:
        return self.c.size

    def slacks(self, x_base: np.ndarray) -> np.ndarray:
        """The smallest slacks that make a base solution ``x_base`` keep every row (a MIP start)."""
        nb = self.n_base
        base, sl = self.A[:, :nb], self.A[:, nb:].tocoo()
        act = base @ x_base
        need = np.zeros(self.n_slack)
        if sl.nnz:
            r, k, a = sl.row, sl.col, sl.data
            lo_need = np.where(np.isfinite(self.lo[r]), (self.lo[r] - act[r]) / a, -np.inf)
            hi_need = np.where(np.isfinite(self.hi[r]), (self.hi[r] - act[r]) / a, -np.inf)
            req = np.where(a > 0, lo_need, hi_need)
            np.maximum.at(need, k, req)
        return np.clip(need, self.lb, self.ub)

    def stack(self, c, A, lo, hi, lb, ub):
        """The LP (c, A, lo, hi, lb, ub) with this block below it and its slacks after its columns."""
        A0 = A.scipy() if hasattr(A, "scipy") else A
        A1 = sp.vstack([sp.hstack([A0, sp.csr_array((A0.shape[0], self.n_slack))]), self.A], format="csr")
        return (np.concatenate([c, self.c]), A1, np.concatenate([lo, self.lo]), np.concatenate([hi, self.hi]),
                np.concatenate([lb, self.lb]), np.concatenate([ub, self.ub]))


def grid_rows(prob, n_base: int, net_cols: np.ndarray, net_step: np.ndarray, net_coef: np.ndarray,
              bidir: np.ndarray | None = None, e_cols: np.ndarray | None = None) -> GridRows | None:
    """The floor and reserve rows of ``prob`` (a :class:`~.problem.DispatchProblem`) for an LP with
    ``n_base`` columns whose site net power at step t is ``sum net_coef * x[net_cols]`` over the
    entries with ``net_step == t``. ``bidir``: per entry, whether it is a bidirectional vehicle's
    (None: every entry counts, the aggregate LP). ``e_cols``: (n, T + 1) energy columns of each
    vehicle (the exact LP), for the energy rows. None when the problem has neither."""
    T = prob.n_steps
    dt = np.broadcast_to(np.asarray(prob.dt_h, float), (T,))
    floor = prob.p_floor_kw if prob.p_floor_kw is not None else np.full(T, -np.inf)
    fl = np.flatnonzero(np.isfinite(floor))
    res = prob.reserve_kw if prob.reserve_kw is not None else np.zeros(T)
    rs = np.flatnonzero(res > 0)
    if fl.size == 0 and rs.size == 0:
        return None
    rows, cols, vals, lo, hi = [], [], [], [], []
    c, lb, ub = [], [], []
    nrow, ncol = 0, n_base

    def net_rows(steps, row_of_step, sel=None):
        m = np.isin(net_step, steps) if sel is None else np.isin(net_step, steps) & sel
        return row_of_step[net_step[m]], net_cols[m], net_coef[m]

    if fl.size:
        rmap = np.full(T, -1)
        rmap[fl] = nrow + np.arange(fl.size)
        r, k, v = net_rows(fl, rmap)
        rows += [r, rmap[fl]]
        cols += [k, ncol + np.arange(fl.size)]
        vals += [v, np.ones(fl.size)]
        lo.append(floor[fl])
        hi.append(np.full(fl.size, np.inf))
        c.append(prob.floor_price_cny_per_kwh[fl] * dt[fl])
        lb.append(np.zeros(fl.size))
        ub.append(np.full(fl.size, np.inf))
        floor_rows = rmap[fl].copy()
        nrow += fl.size
        ncol += fl.size
    else:
        floor_rows = np.empty(0, np.int64)
    if rs.size:
        slack = np.full(T, -1)
        slack[rs] = ncol + np.arange(rs.size)
        R = res[rs]
        plug = prob.plugged
        is_bi = prob.p_dis_max_kw > 0
        room_ch = (prob.p_ch_max_kw * is_bi) @ plug
        room_dis = prob.p_dis_max_kw @ plug

        def block(r_lo, r_hi, sel, v_sign):
            nonlocal nrow
            rmap = np.full(T, -1)
            rmap[rs] = nrow + np.arange(rs.size)
            r, k, v = net_rows(rs, rmap, sel)
            rows.extend([r, rmap[rs]])
            cols.extend([k, slack[rs]])
            vals.extend([v, np.full(rs.size, float(v_sign))])
            lo.append(r_lo)
            hi.append(r_hi)
            nrow += rs.size

        bsel = None if bidir is None else bidir
        ch = room_ch if bidir is not None else prob.p_ch_max_kw @ plug
        block(np.full(rs.size, -np.inf), ch[rs] - R, bsel, -1)  # draw R more
        block(R - room_dis[rs], np.full(rs.size, np.inf), bsel, 1)  # draw R less / feed R more
        smax, smin = prob.p_site_max_kw[rs], prob.p_site_min_kw[rs]
        if np.isfinite(smax).any():
            block(np.full(rs.size, -np.inf), np.where(np.isfinite(smax), smax - R, np.inf), None, -1)
        if np.isfinite(smin).any():
            block(np.where(np.isfinite(smin), smin + R, -np.inf), np.full(rs.size, np.inf), None, 1)
        h = float(prob.reserve_sustain_h)
        if e_cols is not None and h > 0:
            on = plug[:, rs] & is_bi[:, None]  # (n, k): bidirectional vehicles plugged at each reserve step
            i_, j_ = np.nonzero(on)
            for coef, const in ((prob.eta_dis, prob.eta_dis * prob.e_lb_kwh), (-1.0 / prob.eta_ch, -prob.e_cap_kwh / prob.eta_ch)):
                rr = nrow + np.arange(rs.size)
                rows += [rr[j_], rr]
                cols += [e_cols[i_, rs[j_]], slack[rs]]
                vals += [coef[i_], np.full(rs.size, h)]
                lo.append(R * h + np.bincount(j_, weights=const[i_], minlength=rs.size))
                hi.append(np.full(rs.size, np.inf))
                nrow += rs.size
        c.append(prob.reserve_price_cny_per_kwh[rs] * dt[rs])
        lb.append(np.zeros(rs.size))
        ub.append(R.copy())
        ncol += rs.size
    A = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, ncol))
    return GridRows(A, np.concatenate(lo), np.concatenate(hi), np.concatenate(c), np.concatenate(lb), np.concatenate(ub),
                    floor_rows, fl, n_base)
