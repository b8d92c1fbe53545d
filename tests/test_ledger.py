"""The ledger (v2gsim.market.settlement): double entry per step, each actor's totals, the
independent totals it must equal (tests/ledger_checks.py), bounded storage, saved with the result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import scenario
from ledger_checks import check_ledger
from test_battery_swap import _swap_scenario
from v2gsim.market.settlement import DRIVERS, GRID_COMPANY, Ledger
from v2gsim.model import V2GModel
from v2gsim.results import Results


@pytest.fixture(scope="module")
def swap_run():
    m = V2GModel(_swap_scenario())
    return m, m.run()


def test_flat_tariff_by_hand():
    # one operator passing a flat 0.5 CNY/kWh through: the drivers pay 0.5 per kWh to it, it pays
    # the same to the grid company, so its net is zero and the drivers' cost is 0.5 x energy
    m = V2GModel(scenario())
    res = m.run()
    t = res.ledger
    assert set(t["reason"].astype(str)) == {"charging", "energy_purchase"}
    np.testing.assert_allclose(t["amount_cny"], 0.5 * t["energy_kwh"], rtol=1e-12)
    assert m.ledger.totals("uncontrolled")["net_cny"] == pytest.approx(0.0, abs=1e-9)
    drivers = m.ledger.totals(DRIVERS)
    assert drivers["paid_cny"] == pytest.approx(0.5 * res.vehicles["e_charged_kwh"].sum(), rel=1e-9)
    assert drivers["paid_cny"] == pytest.approx(res.vehicles["cost_cny"].sum(), rel=1e-12)
    check_ledger(res)


def test_each_actors_totals_are_the_sum_of_its_entries(swap_run):
    m, res = swap_run
    t = res.ledger
    actors = set(t["payer"].astype(str)) | set(t["payee"].astype(str))
    assert {GRID_COMPANY, DRIVERS, "battery_swap"} <= actors
    for a in actors:
        tot = m.ledger.totals(a)
        assert tot["paid_cny"] == pytest.approx(t.loc[t["payer"] == a, "amount_cny"].sum(), rel=1e-12, abs=1e-12)
        assert tot["received_cny"] == pytest.approx(t.loc[t["payee"] == a, "amount_cny"].sum(), rel=1e-12, abs=1e-12)
    # per step the nets of all actors add up to zero
    assert np.abs(m.ledger.net_by_step().sum(axis=1)).max() < 1e-9
    check_ledger(res)


def test_the_checks_catch_a_ledger_that_disagrees(swap_run):
    _, res = swap_run
    t = res.ledger
    for broken in (
        t.drop(index=t.index[(t["payer"] == DRIVERS).to_numpy()][:1]),  # a driver payment lost
        t.assign(amount_cny=np.where(t["payer"] == "battery_swap", t["amount_cny"] * 1.001, t["amount_cny"])),  # a station overcharged
        t.assign(energy_kwh=np.where(t["reason"] == "energy_sale", 0.0, t["energy_kwh"])),  # fed-back energy not counted
    ):
        with pytest.raises(AssertionError):
            check_ledger(Results(**{**res.__dict__, "ledger": broken.reset_index(drop=True)}))


def test_storage_is_per_flow_not_per_vehicle():
    small, big = V2GModel(scenario()), V2GModel(scenario(population__0__count=300))
    small.run(), big.run()
    assert len(big.ledger.flows) == len(small.ledger.flows) <= 4
    assert all(a.shape == (small.n_steps,) for a in big.ledger._amount)


def test_saved_and_loaded_with_the_result(swap_run, tmp_path):
    _, res = swap_run
    res.save(tmp_path / "r", plots=False)
    assert (tmp_path / "r" / "ledger.parquet").is_file()
    back = Results.load(tmp_path / "r")
    pd.testing.assert_frame_equal(back.ledger, res.ledger)


def test_bad_entries_are_refused():
    lg = Ledger(3)
    with pytest.raises(ValueError, match="unknown ledger reason"):
        lg.post(0, DRIVERS, GRID_COMPANY, "tip", 1.0, 1.0)
    with pytest.raises(ValueError, match="paying itself"):
        lg.post(0, DRIVERS, DRIVERS, "charging", 1.0, 1.0)
    lg.post(-1, DRIVERS, GRID_COMPANY, "charging", 1.0, 1.0)  # warm-up: not kept
    assert len(lg.table()) == 0


def test_two_part_billing_posts_each_months_charge_at_its_last_step():
    """Hand-computed: two sites, hourly steps over a month end, 40 CNY/kW/month on each site's
    peak (export counts 0), pro rata: January's 2 h are 2/(24*31) of it, February's 2/(24*28)."""
    import numpy as np
    import pandas as pd

    from v2gsim.market.bills import demand_charge_cny
    from v2gsim.market.settlement import GRID_COMPANY, Ledger, TwoPartBilling

    times = pd.DatetimeIndex(["2026-01-31 22:00", "2026-01-31 23:00", "2026-02-01 00:00", "2026-02-01 01:00"])
    p = np.array([[10.0, -5.0], [20.0, 0.0], [5.0, 5.0], [0.0, 30.0]])
    led = Ledger(4)
    bill = TwoPartBilling(times, 60, demand_rate=40.0, window_min=15, meter="sites", capacity_rate=12.0, capacity_kva=100.0,
                          site_payers=["op_a", "op_b"], shared_payers=["op_a", "op_b"], shared_weights=np.array([3.0, 1.0]))
    for row in range(4):
        bill.settle(row, p[row], float(p[row].sum()), led)
    t = led.table(times)
    dem = t[t.reason == "demand_charge"]
    jan, feb = 2 / (24 * 31), 2 / (24 * 28)
    got = {(int(r.step), str(r.payer)): r.amount_cny for r in dem.itertuples()}
    assert got == pytest.approx({(1, "op_a"): 40 * 20 * jan, (3, "op_a"): 40 * 5 * feb, (3, "op_b"): 40 * 30 * feb})
    assert set(dem.payee.astype(str)) == {GRID_COMPANY}
    # the same as the bills' function on each site's series
    for k, op in enumerate(("op_a", "op_b")):
        assert dem[dem.payer.astype(str) == op].amount_cny.sum() == pytest.approx(
            demand_charge_cny(pd.Series(p[:, k], index=times), 40.0, step_min=60))
    cap = t[t.reason == "capacity_charge"]
    assert cap.amount_cny.sum() == pytest.approx(12.0 * 100.0 * (jan + feb))
    assert cap[cap.payer.astype(str) == "op_a"].amount_cny.sum() == pytest.approx(0.75 * 12.0 * 100.0 * (jan + feb))


def test_swap_fees_are_the_drivers_payments_to_the_swap_operator():
    """battery_swapping, 1 day: each swap's driver pays the operator the fixed fee (30 CNY) and
    the energy gained at the step's tariff price; the drivers' cost column includes it."""
    import numpy as np

    import v2gsim

    res = v2gsim.V2GModel(v2gsim.load_scenario("battery_swapping", ["time.horizon_days=1"])).run()
    t, sw = res.ledger, res.extra["swaps"]
    done = sw[sw.outcome.astype(str) == "swapped"]
    assert len(done) > 0
    price = res.system["price_cny_per_kwh"].reindex(done["time"]).to_numpy()
    gained = (done.e_in_kwh - done.e_out_kwh).clip(lower=0).to_numpy()
    fees = t[t.reason == "swap_fee"]
    assert set(fees.payer.astype(str)) == {"drivers"}
    assert fees.amount_cny.sum() == pytest.approx(30.0 * len(done) + float(np.dot(price, gained)), rel=1e-9)
    assert fees.energy_kwh.sum() == pytest.approx(gained.sum(), rel=1e-9)
