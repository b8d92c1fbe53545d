"""The contract every registered strategy honours, run against each of them: the built-ins, the
installed entry points' and a plugin's (``tests/plugins``), as the live registry lists them."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2gsim.model import V2GModel
from v2gsim.plugins import load_plugin
from v2gsim.strategies import STRATEGIES
from v2gsim.strategies.base import Dispatch

from helpers import BASE, registries_restored, scenario

PLUGINS = sorted((Path(__file__).parent / "plugins").glob("*.py"))


def _registered() -> list[str]:
    """Every kind the registry holds with the test plugins imported (they are imported again,
    and undone, around each test)."""
    with registries_restored(*{p.parent for p in PLUGINS}):
        for p in PLUGINS:
            load_plugin(p)
        return list(STRATEGIES)


KINDS = _registered()


@pytest.fixture(autouse=True)
def _plugins_registered():
    with registries_restored(*{p.parent for p in PLUGINS}):
        for p in PLUGINS:
            load_plugin(p)
        yield


def test_the_registry_holds_the_built_ins_and_the_plugin():
    assert KINDS[:4] == ["uncontrolled", "distributed", "centralized", "battery_swap"]
    assert "contract_price_band" in KINDS


def _model(kind: str, seed: int, n: int, share: float) -> V2GModel:
    cfg = STRATEGIES[kind].config_cls()  # every strategy must run with its defaults
    sc = scenario(seed=seed, population__0__count=n, population__0__home_charger_share=share,
                  business_models=[cfg.model_dump()])
    return V2GModel(sc)


class Spy:
    """Wraps a strategy: snapshots each observation and checks the dispatch it returns."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = []

    def decide(self, obs):
        fields = {k: getattr(obs.fleet, k) for k in obs.fleet.__dataclass_fields__}
        # the arrays are snapshotted; the one other field is the wear model's V2G price reader
        assert all(isinstance(a, np.ndarray) or k == "v2g_wear_price" and (a is None or callable(a)) for k, a in fields.items())
        before = {k: a.copy() for k, a in fields.items() if isinstance(a, np.ndarray)}
        plugged = obs.plugged.copy()
        d = self.inner.decide(obs)
        for k, arr in before.items():
            np.testing.assert_array_equal(getattr(obs.fleet, k), arr, err_msg=f"strategy mutated fleet.{k}")
        np.testing.assert_array_equal(obs.plugged, plugged)
        check_dispatch(obs, d)  # now: the observation's arrays are live views
        self.calls.append((obs, d))
        return d


def check_dispatch(obs, d):
    assert isinstance(d, Dispatch)
    assert d.idx.shape == d.p_kw.shape and d.idx.ndim == 1
    assert np.all(np.isfinite(d.p_kw))
    assert np.unique(d.idx).size == d.idx.size, "a vehicle dispatched twice"
    assert np.all(obs.plugged[d.idx]), "dispatch for a vehicle not plugged at the strategy's sites"
    assert np.all(d.p_kw <= obs.fleet.p_plug_max_kw[d.idx] + 1e-9)
    assert np.all(d.p_kw >= -obs.fleet.p_plug_max_kw[d.idx] * obs.fleet.can_discharge[d.idx] - 1e-9)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 30), share=st.floats(0, 1))
def test_contract(kind, seed, n, share):
    m = _model(kind, seed, n, share)
    spy = Spy(m.aggregators[0].strategy)
    m.aggregators[0].strategy = spy
    steps = min(m.n_clock, 96)
    for _ in range(steps):
        m.step()
        f = m.fleet
        assert np.all(f.e_kwh >= -1e-12) and np.all(f.e_kwh <= f.capacity_kwh + 1e-9)
        assert np.all(np.abs(f.p_kw) <= f.p_plug_max_kw + 1e-9)  # never above the charger
    assert len(spy.calls) == steps


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_and_observation_read_only(kind):
    a, b = _model(kind, 3, 10, 0.8), _model(kind, 3, 10, 0.8)
    for _ in range(80):
        a.step()
        b.step()
    np.testing.assert_array_equal(a.fleet.p_kw, b.fleet.p_kw)
    spy = Spy(a.aggregators[0].strategy)
    a.aggregators[0].strategy = spy
    a.step()
    obs, _ = spy.calls[0]
    with pytest.raises(ValueError):
        obs.fleet.e_kwh[0] = 1.0  # views are read-only
    with pytest.raises(ValueError):
        obs.plugged[0] = True


def test_registry_rejects_duplicates():
    from v2gsim.strategies.base import register

    with pytest.raises(ValueError, match="already registered"):
        register("uncontrolled")(type("Other", (STRATEGIES["uncontrolled"],), {}))


def test_base_scenario_uses_uncontrolled_by_default():
    assert "business_models" not in BASE
    assert scenario().business_models[0].kind == "uncontrolled"
