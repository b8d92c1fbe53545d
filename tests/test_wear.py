"""Tests for v2gsim.physics.wear: hand-computed values, continuation, BLAST-Lite oracle."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from v2gsim.physics.wear import (
    WEAR_MODELS,
    NaumannLfp,
    SchmalstiegNmc,
    WearState,
    XuRainflow,
    model_for_chemistry,
    nmc_sanyo_ocv_v,
    rainflow_cycles,
)

YEAR_S = 365 * 86400.0
REL = 1e-6
MODELS = [NaumannLfp(), SchmalstiegNmc(), XuRainflow()]
MODEL_IDS = ["naumann", "schmalstieg", "xu"]


def rel_err(a, b):
    return abs(a - b) / abs(b)


# ----------------------------------------------------------------- hand-computed values


@pytest.mark.parametrize("soc,t_degc,t_s", [(0.5, 25.0, YEAR_S), (0.9, 40.0, 200 * 86400.0), (0.1, 10.0, 3600.0), (0.5, 35.0, YEAR_S)])
def test_naumann_calendar_by_hand(soc, t_degc, t_s):
    T = t_degc + 273.15
    # R = 8.3144598 J/(mol K), as in Naumann's fit (8.314 is off by up to 1.2e-5 at 35 degC)
    expected = 1.2571e-5 * math.exp(-17126 / 8.3144598 * (1 / T - 1 / 298.15)) * (2.8575 * (soc - 0.5) ** 3 + 0.60225) * math.sqrt(t_s)
    assert rel_err(float(NaumannLfp().calendar_loss(t_s, soc, t_degc)), expected) < 1e-12


@pytest.mark.parametrize("fec,dod,c_rate", [(292.0, 0.8, 0.5), (1000.0, 1.0, 1.0), (50.0, 0.1, 0.2)])
def test_naumann_cycle_by_hand(fec, dod, c_rate):
    expected_pct = (0.0630 * c_rate + 0.0971) * (4.0253 * (dod - 0.6) ** 3 + 1.0923) * math.sqrt(fec)
    assert rel_err(float(NaumannLfp().cycle_loss(fec, dod, c_rate)), expected_pct / 100) < REL


def test_nmc_ocv_table_points():
    # Table ends and one interior point (Schmalstieg 2014 Fig. 1 / Ecker 2014, as in BLAST-Lite).
    assert nmc_sanyo_ocv_v(0.0) == pytest.approx(3.331, abs=1e-12)
    assert nmc_sanyo_ocv_v(1.0) == pytest.approx(4.162, abs=1e-12)
    assert nmc_sanyo_ocv_v(0.498480903) == pytest.approx(3.696420384, abs=1e-12)
    v = nmc_sanyo_ocv_v(np.linspace(0, 1, 201))
    assert np.all(np.diff(v) > 0)


@pytest.mark.parametrize("soc,t_degc,t_s", [(0.5, 25.0, YEAR_S), (0.9, 50.0, 100 * 86400.0), (0.2, 35.0, 86400.0)])
def test_schmalstieg_calendar_by_hand(soc, t_degc, t_s):
    V = float(nmc_sanyo_ocv_v(soc))
    alpha = (7.543 * V - 23.75) * 1e6 * math.exp(-6976 / (t_degc + 273.15))
    expected = alpha * (t_s / 86400) ** 0.75
    assert rel_err(float(SchmalstiegNmc().calendar_loss(t_s, soc, t_degc)), expected) < REL


@pytest.mark.parametrize("fec,dod,v_rms", [(292.0, 0.8, 3.75), (10.0, 0.1, 3.9), (500.0, 1.0, 3.667)])
def test_schmalstieg_cycle_by_hand(fec, dod, v_rms):
    beta = 7.348e-3 * (v_rms - 3.667) ** 2 + 7.6e-4 + 4.081e-3 * dod
    expected = beta * math.sqrt(2 * fec * 2.15)  # Ah = charge + discharge throughput
    assert rel_err(float(SchmalstiegNmc().cycle_loss(fec, dod, v_rms)), expected) < REL


def _xu_L(fd):
    return 1 - 5.75e-2 * math.exp(-121 * fd) - (1 - 5.75e-2) * math.exp(-fd)


def _xu_s_t(t_degc):
    T = t_degc + 273.15
    return math.exp(0.0693 * (T - 298.15) * 298.15 / T)


@pytest.mark.parametrize("soc,t_degc,t_s", [(0.5, 25.0, YEAR_S), (0.9, 40.0, 30 * 86400.0)])
def test_xu_calendar_by_hand(soc, t_degc, t_s):
    fd = 4.14e-10 * t_s * math.exp(1.04 * (soc - 0.5)) * _xu_s_t(t_degc)
    assert rel_err(float(XuRainflow().calendar_loss(t_s, soc, t_degc)), _xu_L(fd)) < REL


@pytest.mark.parametrize("n,dod,soc,t_degc", [(365, 0.8, 0.5, 25.0), (1000, 0.3, 0.7, 35.0), (10, 1.0, 0.5, 15.0)])
def test_xu_cycle_by_hand(n, dod, soc, t_degc):
    s_dod = 1 / (1.40e5 * dod**-0.501 - 1.23e5)
    fd = n * s_dod * math.exp(1.04 * (soc - 0.5)) * _xu_s_t(t_degc)
    assert rel_err(float(XuRainflow().cycle_loss(n, dod, soc, t_degc)), _xu_L(fd)) < REL


def test_xu_update_with_rainflow_history_by_hand():
    # 10 days, one 0.9 -> 0.1 -> 0.9 cycle per day: rainflow finds 10 full cycles of depth 0.8, mean 0.5.
    hist = np.array([np.r_[np.tile([0.9, 0.1], 10), 0.9]])
    m = XuRainflow()
    s = WearState.zeros(1)
    m.update(s, [0], dt_s=10 * 86400.0, t_degc=25.0, soc_mean=0.5, fec=8.0, dod=0.8, soc_history=hist)
    s_dod = 1 / (1.40e5 * 0.8**-0.501 - 1.23e5)
    fd_cyc = 10 * s_dod * 1.0 * 1.0
    fd_cal = 4.14e-10 * 10 * 86400.0
    assert rel_err(float(s.q_loss[0]), _xu_L(fd_cal + fd_cyc)) < REL
    assert rel_err(float(s.fd_cyc[0]), fd_cyc) < REL
    # the fixed-depth fallback (fec / dod cycles) gives the same damage
    s2 = WearState.zeros(1)
    m.update(s2, [0], dt_s=10 * 86400.0, t_degc=25.0, soc_mean=0.5, fec=8.0, dod=0.8)
    assert rel_err(float(s2.q_loss[0]), float(s.q_loss[0])) < 1e-12


def test_rainflow_cycles_per_row():
    hist = np.array([[0.2, 0.8, 0.2, 0.8, 0.2], [0.5, 0.5, 0.5, 0.5, 0.5], [0.9, 0.4, 0.9, 0.4, 0.9]])
    row, dod, mean, count = rainflow_cycles(hist)
    total = np.bincount(row, weights=count, minlength=3)
    np.testing.assert_allclose(total, [2.0, 0.0, 2.0])
    np.testing.assert_allclose(dod[row == 0], 0.6)
    np.testing.assert_allclose(mean[row == 2], 0.65)


# ----------------------------------------------------------------- continuation


def _one_period(model, pieces, stress):
    s = WearState.zeros(1)
    for frac in pieces:
        model.update(
            s, np.array([0]), dt_s=stress["dt_s"] * frac, fec=stress["fec"] * frac,
            **{k: v for k, v in stress.items() if k not in ("dt_s", "fec")},
        )
    return s


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=8))
def test_split_constant_profile_equals_one_piece(model, cuts):
    edges = np.r_[0.0, np.sort(cuts), 1.0]
    pieces = np.diff(edges)
    stress = dict(dt_s=90 * 86400.0, fec=70.0, t_degc=30.0, soc_mean=0.6, dod=0.7, c_rate=0.5)
    whole = _one_period(model, [1.0], stress)
    split = _one_period(model, pieces, stress)
    for name in ("q_loss_cal", "q_loss_cyc"):
        a, b = getattr(split, name)[0], getattr(whole, name)[0]
        assert abs(a - b) <= 1e-9 * b + 1e-15, name


def test_naumann_two_period_by_hand():
    m = NaumannLfp()
    s = WearState.zeros(1)
    t1, t2 = 100 * 86400.0, 50 * 86400.0

    def k_cal(soc, tc):
        T = tc + 273.15
        return 1.2571e-5 * math.exp(-17126 / 8.3144598 * (1 / T - 1 / 298.15)) * (2.8575 * (soc - 0.5) ** 3 + 0.60225)

    def k_cyc(dod, c):
        return (0.0630 * c + 0.0971) * (4.0253 * (dod - 0.6) ** 3 + 1.0923) / 100

    m.update(s, [0], dt_s=t1, t_degc=25.0, soc_mean=0.5, fec=100.0, dod=0.8, c_rate=0.5)
    m.update(s, [0], dt_s=t2, t_degc=40.0, soc_mean=0.9, fec=30.0, dod=0.3, c_rate=1.0)
    q1 = k_cal(0.5, 25.0) * math.sqrt(t1)
    t_virtual = (q1 / k_cal(0.9, 40.0)) ** 2
    q2 = k_cal(0.9, 40.0) * math.sqrt(t_virtual + t2)
    c1 = k_cyc(0.8, 0.5) * math.sqrt(100.0)
    fec_virtual = (c1 / k_cyc(0.3, 1.0)) ** 2
    c2 = k_cyc(0.3, 1.0) * math.sqrt(fec_virtual + 30.0)
    assert rel_err(float(s.q_loss_cal[0]), q2) < REL
    assert rel_err(float(s.q_loss_cyc[0]), c2) < REL


def test_schmalstieg_two_period_by_hand():
    m = SchmalstiegNmc()
    s = WearState.zeros(1)
    m.update(s, [0], dt_s=30 * 86400.0, t_degc=45.0, soc_mean=0.5, fec=30.0, dod=0.8, v_rms=3.7)
    m.update(s, [0], dt_s=60 * 86400.0, t_degc=25.0, soc_mean=0.9, fec=10.0, dod=0.2, v_rms=3.95)

    def alpha(soc, tc):
        return (7.543 * float(nmc_sanyo_ocv_v(soc)) - 23.75) * 1e6 * math.exp(-6976 / (tc + 273.15))

    def beta(v, dod):
        return 7.348e-3 * (v - 3.667) ** 2 + 7.6e-4 + 4.081e-3 * dod

    q1 = alpha(0.5, 45.0) * 30**0.75
    q2 = alpha(0.9, 25.0) * ((q1 / alpha(0.9, 25.0)) ** (1 / 0.75) + 60) ** 0.75
    c1 = beta(3.7, 0.8) * math.sqrt(2 * 30 * 2.15)
    c2 = beta(3.95, 0.2) * math.sqrt((c1 / beta(3.95, 0.2)) ** 2 + 2 * 10 * 2.15)
    assert rel_err(float(s.q_loss_cal[0]), q2) < REL
    assert rel_err(float(s.q_loss_cyc[0]), c2) < REL


def test_xu_two_period_by_hand():
    m = XuRainflow()
    s = WearState.zeros(1)
    m.update(s, [0], dt_s=30 * 86400.0, t_degc=25.0, soc_mean=0.5, fec=24.0, dod=0.8)
    m.update(s, [0], dt_s=30 * 86400.0, t_degc=40.0, soc_mean=0.8, fec=0.0, dod=0.0)
    s_dod = 1 / (1.40e5 * 0.8**-0.501 - 1.23e5)
    f1_cal, f1_cyc = 4.14e-10 * 30 * 86400.0, 30 * s_dod
    f2_cal = 4.14e-10 * 30 * 86400.0 * math.exp(1.04 * 0.3) * _xu_s_t(40.0)
    assert rel_err(float(s.q_loss[0]), _xu_L(f1_cal + f1_cyc + f2_cal)) < REL
    # first period split in proportion to damage increments, second is all calendar
    l1 = _xu_L(f1_cal + f1_cyc)
    expected_cyc = l1 * f1_cyc / (f1_cal + f1_cyc)
    assert rel_err(float(s.q_loss_cyc[0]), expected_cyc) < REL


# ----------------------------------------------------------------- monotone, bounded


stress_period = st.fixed_dictionaries(
    {
        "dt_s": st.floats(0.0, 120 * 86400.0),
        "t_degc": st.floats(-20.0, 60.0),
        "soc_mean": st.floats(0.0, 1.0),
        "fec": st.floats(0.0, 200.0),
        "dod": st.floats(0.0, 1.0),
        "c_rate": st.floats(0.0, 3.0),
    }
)


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
@settings(max_examples=40, deadline=None)
@given(history=st.lists(stress_period, min_size=1, max_size=25))
def test_fade_monotone_and_bounded(model, history):
    s = WearState.zeros(1)
    prev_cal = prev_cyc = 0.0
    for period in history:
        model.update(s, np.array([0]), **period)
        cal, cyc = s.q_loss_cal[0], s.q_loss_cyc[0]
        assert cal >= prev_cal and cyc >= prev_cyc
        assert 0.0 <= cal <= 1.0 and 0.0 <= cyc <= 1.0
        assert 0.0 <= s.q_loss[0] <= 1.0 and 0.0 <= s.soh[0] <= 1.0
        prev_cal, prev_cyc = cal, cyc


def test_soh_clipped_at_zero():
    s = WearState.zeros(2)
    s.q_loss_cal[:] = [0.7, 0.2]
    s.q_loss_cyc[:] = [0.6, 0.1]
    np.testing.assert_allclose(s.soh, [0.0, 0.7])


# ----------------------------------------------------------------- vectorised == scalar


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_vectorised_equals_scalar_updates(model):
    rng = np.random.default_rng(7)
    n, periods = 12, 6
    vec = WearState.zeros(n)
    sca = WearState.zeros(n)
    idx = np.array([0, 2, 3, 5, 7, 8, 11])
    for _ in range(periods):
        st_ = dict(
            dt_s=rng.uniform(0, 5 * 86400, idx.size), t_degc=rng.uniform(0, 45, idx.size),
            soc_mean=rng.uniform(0, 1, idx.size), fec=rng.uniform(0, 5, idx.size),
            dod=rng.uniform(0, 1, idx.size), c_rate=rng.uniform(0, 2, idx.size),
        )
        hist = rng.uniform(0, 1, (idx.size, 20))
        extra = {"soc_history": hist} if isinstance(model, XuRainflow) else {}
        n_bad_vec = model.update(vec, idx, **st_, **extra)
        n_bad_sca = 0
        for j, i in enumerate(idx):
            one = {k: v[j] for k, v in st_.items()}
            extra1 = {"soc_history": hist[j : j + 1]} if extra else {}
            n_bad_sca += model.update(sca, np.array([i]), **one, **extra1)
        assert n_bad_vec == n_bad_sca
    for name in ("q_loss_cal", "q_loss_cyc", "t_s", "fec", "fd_cal", "fd_cyc", "n_out_of_range"):
        np.testing.assert_allclose(getattr(vec, name), getattr(sca, name), rtol=1e-12, atol=0, err_msg=name)
    untouched = np.setdiff1d(np.arange(n), idx)
    assert np.all(vec.q_loss[untouched] == 0.0)


def test_boolean_mask_index():
    m = NaumannLfp()
    a, b = WearState.zeros(4), WearState.zeros(4)
    m.update(a, np.array([True, False, True, False]), dt_s=86400.0, t_degc=25.0, soc_mean=0.5)
    m.update(b, np.array([0, 2]), dt_s=86400.0, t_degc=25.0, soc_mean=0.5)
    np.testing.assert_array_equal(a.q_loss, b.q_loss)


# ----------------------------------------------------------------- validity counting


def test_out_of_range_is_counted_not_warned(recwarn):
    m = NaumannLfp()
    s = WearState.zeros(4)
    # cell 0 fine (storage 25 degC), 1 too hot for storage, 2 cycling at 2C, 3 cycling at 10 degC
    n_bad = m.update(
        s, np.arange(4), dt_s=3600.0, t_degc=[25.0, 70.0, 25.0, 10.0], soc_mean=0.5,
        fec=[0.0, 0.0, 1.0, 1.0], dod=[0.0, 0.0, 0.8, 0.8], c_rate=[0.0, 0.0, 2.0, 0.5],
    )
    assert n_bad == 3
    np.testing.assert_array_equal(s.n_out_of_range, [0, 1, 1, 1])
    assert len(recwarn) == 0


def test_schmalstieg_flags_room_temperature_storage():
    # The calendar fit covers 35-50 degC; 25 degC storage is an Arrhenius extrapolation.
    s = WearState.zeros(2)
    assert SchmalstiegNmc().update(s, [0, 1], dt_s=3600.0, t_degc=[25.0, 40.0], soc_mean=0.5) == 1


# ----------------------------------------------------------------- registry


def test_registry_and_chemistry():
    assert set(WEAR_MODELS) == {"naumann_lfp", "schmalstieg_nmc", "xu_rainflow"}
    assert isinstance(model_for_chemistry("LFP"), NaumannLfp)
    assert isinstance(model_for_chemistry("nmc"), SchmalstiegNmc)
    assert isinstance(model_for_chemistry("NCM"), SchmalstiegNmc)
    with pytest.raises(ValueError, match="LTO"):
        model_for_chemistry("LTO")


def test_constructor_only_stores_params():
    m = NaumannLfp(k_ref_per_sqrt_s=2e-5)
    assert m.get_params()["k_ref_per_sqrt_s"] == 2e-5
    assert "k_ref_per_sqrt_s=2e-05" in repr(m)
    assert float(m.calendar_loss(YEAR_S, 0.5, 25.0)) == pytest.approx(2e-5 / 1.2571e-5 * float(NaumannLfp().calendar_loss(YEAR_S, 0.5, 25.0)))


# ----------------------------------------------------------------- BLAST-Lite oracle

blast_models = pytest.importorskip("blast.models")


def _blast(cls, t_s, soc, t_degc=25.0):
    cell = cls()
    cell.update_battery_state(np.asarray(t_s, float), np.asarray(soc, float), np.full(len(t_s), t_degc))
    return cell


def _daily_cycles(days, dod=0.8, c_rate=0.5, top=0.9):
    """One discharge/charge cycle per day at c_rate, rest of the day at top SOC."""
    h = dod / c_rate * 3600.0
    t = np.ravel([[d * 86400.0, d * 86400.0 + h, d * 86400.0 + 2 * h] for d in range(days)])
    soc = np.tile([top, top - dod, top], days)
    return np.r_[t, days * 86400.0], np.r_[soc, top]


@pytest.mark.parametrize("soc", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("t_degc", [25.0, 35.0])
def test_schmalstieg_calendar_matches_blast(soc, t_degc):
    cell = _blast(blast_models.Nmc111_Gr_Sanyo2Ah_Battery, [0.0, YEAR_S], [soc, soc], t_degc)
    blast_loss = 1.0 - cell.outputs["q_t"][-1]
    assert rel_err(float(SchmalstiegNmc().calendar_loss(YEAR_S, soc, t_degc)), blast_loss) < 1e-9


def test_schmalstieg_cycle_matches_blast():
    t, soc = _daily_cycles(365)
    cell = _blast(blast_models.Nmc111_Gr_Sanyo2Ah_Battery, t, soc)
    fec = cell.stressors["efc"][-1]
    assert fec == pytest.approx(292.0)
    # BLAST-Lite takes V_rms as the plain mean over the SOC samples; use the same samples.
    v_rms = math.sqrt(float(np.mean(nmc_sanyo_ocv_v(soc) ** 2)))
    blast_loss = 1.0 - cell.outputs["q_EFC"][-1]
    assert rel_err(float(SchmalstiegNmc().cycle_loss(fec, 0.8, v_rms)), blast_loss) < 1e-9


def test_schmalstieg_daily_steps_vs_blast_euler():
    # BLAST-Lite steps the power law with an explicit derivative; ours is exact. Daily steps
    # for a year: BLAST overshoots the closed form by ~0.16 %.
    cell = blast_models.Nmc111_Gr_Sanyo2Ah_Battery()
    for d in range(365):
        cell.update_battery_state(np.array([d, d + 1]) * 86400.0, np.array([0.5, 0.5]), np.array([25.0, 25.0]))
    ours = WearState.zeros(1)
    for _ in range(365):
        SchmalstiegNmc().update(ours, [0], dt_s=86400.0, t_degc=25.0, soc_mean=0.5)
    blast_loss = 1.0 - cell.outputs["q_t"][-1]
    assert rel_err(float(ours.q_loss_cal[0]), float(SchmalstiegNmc().calendar_loss(YEAR_S, 0.5, 25.0))) < 1e-12
    assert 0.0 < (blast_loss - ours.q_loss_cal[0]) / ours.q_loss_cal[0] < 5e-3


@pytest.mark.parametrize("soc", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("t_degc", [25.0, 35.0])
def test_naumann_resistance_calendar_matches_blast(soc, t_degc):
    # BLAST-Lite's Sony/Murata resistance model is Naumann's form and parameters (R = 8.3144).
    cell = _blast(blast_models.Lfp_Gr_SonyMurata3Ah_Battery, [0.0, YEAR_S], [soc, soc], t_degc)
    ours = NaumannLfp(r_j_per_mol_k=8.3144).resistance_gain_calendar(YEAR_S, soc, t_degc)
    assert rel_err(float(ours), cell.outputs["r_LLI_t"][-1] - 1.0) < 1e-9


def test_naumann_resistance_cycle_matches_blast():
    t, soc = _daily_cycles(365)
    cell = _blast(blast_models.Lfp_Gr_SonyMurata3Ah_Battery, t, soc)
    # BLAST-Lite's C-rate stressor is its own time average over the period, not the cycling C-rate.
    ours = NaumannLfp().resistance_gain_cycle(cell.stressors["efc"][-1], 0.8, cell.stressors["Crate"][-1])
    assert rel_err(float(ours), cell.outputs["r_LLI_EFC"][-1] - 1.0) < 1e-9


@pytest.mark.parametrize("soc,t_degc,tol", [(0.5, 25.0, 0.15), (0.9, 25.0, 0.10), (0.5, 35.0, 0.05), (0.2, 25.0, 0.70)])
def test_naumann_capacity_calendar_near_blast_refit(soc, t_degc, tol):
    # BLAST-Lite refits the Sony/Murata capacity data (sigmoid in time, anode-potential
    # stress) instead of Naumann's sqrt(t) form, so only rough agreement is expected.
    # Measured: +11 % (50 %, 25 degC), -5 % (90 %), +2 % (50 %, 35 degC), +62 % (20 %).
    cell = _blast(blast_models.Lfp_Gr_SonyMurata3Ah_Battery, [0.0, YEAR_S], [soc, soc], t_degc)
    blast_loss = 1.0 - cell.outputs["q_LLI_t"][-1]
    assert rel_err(float(NaumannLfp().calendar_loss(YEAR_S, soc, t_degc)), blast_loss) < tol


def test_naumann_capacity_cycling_year_total_near_blast_refit():
    # Daily 80 % DOD at 0.5C, 25 degC, 1 year. BLAST-Lite's refit puts far less fade on
    # cycling (0.24 % vs Naumann 2.47 %) and more on calendar under cycling; the totals
    # differ by ~19 %.
    t, soc = _daily_cycles(365)
    cell = _blast(blast_models.Lfp_Gr_SonyMurata3Ah_Battery, t, soc)
    m = NaumannLfp()
    s = WearState.zeros(1)
    m.update(s, [0], dt_s=YEAR_S, t_degc=25.0, soc_mean=0.5, fec=292.0, dod=0.8, c_rate=0.5)
    blast_total = 1.0 - cell.outputs["q"][-1]
    assert rel_err(float(s.q_loss[0]), blast_total) < 0.25
