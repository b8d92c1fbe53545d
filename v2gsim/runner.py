"""Running a scenario the way users do: the model plus its uncontrolled baseline.

Every run that uses a business model other than ``uncontrolled`` also runs the same scenario
(same seed, drivers and grid) with uncontrolled charging, so that "peak reduced by X %" is one
KPI of the run itself. ``v2gsim run``, `v2gsim.run` and every run of a sweep go through
`run_scenario`; sweeps turn the baseline off unless their KPIs ask for `BASELINE_KPIS`.
"""

from __future__ import annotations

from v2gsim.results import Results
from v2gsim.scenario.schema import OutputsConfig, Scenario
from v2gsim.strategies.uncontrolled import UncontrolledConfig

BASELINE_KPIS = ("uncontrolled_peak_kw", "peak_reduction_pct")
"""The KPIs that only a run with ``baseline=True`` reports."""


def uncontrolled_twin(scenario: Scenario) -> Scenario:
    """The same scenario with every site under uncontrolled charging and minimal outputs."""
    return scenario.model_copy(update={
        "business_models": [UncontrolledConfig()],
        "outputs": OutputsConfig(session_sample=0, trace_sample=0, plots=False),
    })


def needs_baseline(scenario: Scenario) -> bool:
    return any(bm.kind != "uncontrolled" for bm in scenario.business_models)


def run_scenario(scenario: Scenario, *, seed: int | None = None, progress: bool = False, baseline: bool = True) -> Results:
    """Run to the horizon; add ``uncontrolled_peak_kw`` and ``peak_reduction_pct`` KPIs.

    For an uncontrolled scenario the baseline is the run itself (reduction 0).
    """
    from v2gsim.model import V2GModel

    res = V2GModel(scenario, seed=seed).run(progress=progress)
    if not baseline:
        return res
    if needs_baseline(scenario):
        base = V2GModel(uncontrolled_twin(scenario), seed=seed).run(progress=False)
        base_peak = base.kpis["peak_load_kw"]
    else:
        base_peak = res.kpis["peak_load_kw"]
    res.kpis["uncontrolled_peak_kw"] = base_peak
    res.kpis["peak_reduction_pct"] = (base_peak - res.kpis["peak_load_kw"]) / base_peak * 100.0 if base_peak > 0 else float("nan")
    return res


def kpi_names(scenario: Scenario, *, baseline: bool = True) -> set[str]:
    """The names of the KPIs ``run_scenario(scenario, baseline=baseline)`` reports.

    Which KPIs exist depends on the scenario (its business models' counters, wear, a network,
    swap stations), not on how long it runs, so this runs it for one step without warm-up (the
    horizon is shortened below the one day a scenario file may ask for, on a copy that is not
    validated again): a fraction of a second plus building the model.
    """
    tc = scenario.time
    one_step = scenario.model_copy(update={
        "time": tc.model_copy(update={"horizon_days": tc.step_min / 1440, "warmup_days": 0}),
        "outputs": OutputsConfig(session_sample=0, trace_sample=0, plots=False),
    })
    return set(run_scenario(one_step, baseline=baseline).kpis)
