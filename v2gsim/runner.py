"""Running a scenario the way users do: the model plus its like-for-like reference.

A run is judged against a reference that keeps every actor and every vehicle's mobility (same
seed, drivers, sites, swap stations and grid) and changes only the control (DESIGN.md, "Fair
comparisons"): the scenario's ``reference`` key chooses it — ``uncontrolled`` (default: each
business model's `StrategyConfig.reference_config`), ``none``, or a scenario file with the same
time section. Its KPIs are the run's ``reference_*`` KPIs and ``peak_reduction_pct``.
``v2gsim run``, `v2gsim.run` and every run of a sweep go through `run_scenario`; sweeps run the
reference only when their KPIs ask for one of `REFERENCE_KPIS` (it doubles the run time).
"""

from __future__ import annotations

from v2gsim.results import Results
from v2gsim.scenario.schema import OutputsConfig, Scenario

# KPI of the reference run -> its name in the run's KPIs
_FROM_REFERENCE = {
    "peak_load_kw": "reference_peak_kw",
    "max_transformer_loading_pct": "reference_max_transformer_loading_pct",
    "stranded_trips": "reference_stranded_trips",
    "unmet_energy_kwh": "reference_unmet_energy_kwh",
}
REFERENCE_KPIS = (*_FROM_REFERENCE.values(), "peak_reduction_pct")
"""The KPIs that only a run with ``baseline=True`` and a reference reports."""

_QUIET = OutputsConfig(session_sample=0, trace_sample=0, plots=False)


def reference_scenario(scenario: Scenario) -> Scenario | None:
    """The scenario of the run's reference, or None when it has none (``reference: none``) or
    is its own (an uncontrolled scenario: taking the control away changes nothing)."""
    ref = scenario.reference
    if ref == "none":
        return None
    if ref == "uncontrolled":
        # the control taken away: each business model's own, and the grid operator's requests
        bms = [bm.reference_config() for bm in scenario.business_models]
        if bms == list(scenario.business_models) and not scenario.grid_operator.requests:
            return None
        from v2gsim.market.contracts import contracts_for_reference

        return scenario.model_copy(update={"business_models": bms, "grid_operator": type(scenario.grid_operator)(),
                                           "outputs": _QUIET, "reference": "none",
                                           "contracts": contracts_for_reference(scenario.contracts, scenario.business_models, bms)})
    from v2gsim.scenario import load_scenario

    return load_scenario(ref, {"reference": "none"}).model_copy(update={"outputs": _QUIET})


def run_scenario(scenario: Scenario, *, seed: int | None = None, progress: bool = False, baseline: bool = True) -> Results:
    """Run to the horizon; with ``baseline``, add the reference's KPIs (``reference_peak_kw``,
    ...) and ``peak_reduction_pct`` (positive: the run's peak is below the reference's).

    A scenario that is its own reference reports its own figures (reduction 0); one with
    ``reference: none`` reports none. The reference's description goes to
    ``metadata["reference"]``; the reference's per-operator table (:mod:`v2gsim.operators`) to
    ``extra["reference_operators"]`` (``reference_operators.parquet`` when saved).
    """
    from v2gsim.model import V2GModel

    res = V2GModel(scenario, seed=seed).run(progress=progress)
    if not baseline or scenario.reference == "none":
        return res
    ref_sc = reference_scenario(scenario)
    ref_res = V2GModel(ref_sc, seed=seed).run(progress=False) if ref_sc is not None else res
    ref = ref_res.kpis
    if "operators" in ref_res.extra and "operators" in res.extra:  # each operator in the reference, beside its row in the run
        res.extra["reference_operators"] = _same_ids(ref_res.extra["operators"], res.extra["operators"], scenario.reference == "uncontrolled")
        res.metadata["extra_tables"] = list(res.extra)
    for name, as_name in _FROM_REFERENCE.items():
        res.kpis[as_name] = ref.get(name, float("nan"))
    base_peak = res.kpis["reference_peak_kw"]
    res.kpis["peak_reduction_pct"] = (base_peak - res.kpis["peak_load_kw"]) / base_peak * 100.0 if base_peak > 0 else float("nan")
    res.metadata["reference"] = ("the run itself" if ref_sc is None
                                 else scenario.reference if scenario.reference != "uncontrolled"
                                 else "the same drivers and actors, uncontrolled")
    return res


def _same_ids(ref_ops, run_ops, positional: bool):
    """The reference's per-operator table under the run's operator ids: the uncontrolled reference
    keeps every business-model entry in its place (`StrategyConfig.reference_config`) but its
    kinds, and so its ids, may differ (``uncontrolled0`` for ``distributed``); ``kind`` stays the
    reference's."""
    from v2gsim.operators import NO_OPERATOR

    out = ref_ops.copy()
    named_ref = out["operator_id"] != NO_OPERATOR
    run_ids = [i for i in run_ops["operator_id"] if i != NO_OPERATOR]
    if positional and int(named_ref.sum()) == len(run_ids):
        out.loc[named_ref, "operator_id"] = run_ids
    return out


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
        "outputs": _QUIET,
    })
    if one_step.reference not in ("uncontrolled", "none"):  # the file's own clock would not match the shortened one
        one_step = one_step.model_copy(update={"reference": "uncontrolled"})
    return set(run_scenario(one_step, baseline=baseline).kpis)
