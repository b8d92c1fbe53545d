"""Charging / V2G dispatch as linear programs (HiGHS), and the splits of aggregate plans.

Pure functions of plain arrays; nothing here knows about the simulator. A strategy builds a
:class:`DispatchProblem` at each re-plan and plans it with one of

* :func:`plan_exact` (:mod:`.exact`) -- one LP over every vehicle and step, optimal for the
  stated problem; a time-limited MIP where a vehicle would charge and discharge at once; every
  plan checked by :func:`check_plan` (else :func:`safe_plan`);
* :func:`plan_aggregate` (:mod:`.aggregate`) -- one LP over the fleet's aggregate flexibility
  (T-sized); its site-limit duals shift the prices and every vehicle follows its own exact
  optimum against them (:func:`plan_levels`, :func:`value_thresholds` in :mod:`.levels`;
  :func:`split_value` per step in :mod:`.split`). Without binding site limits this *is* the
  exact plan. With short stays leaving together under a binding limit it leaves needs unmet
  that the exact plan meets, hence
* :func:`plan_classes` (:mod:`.aggregate`) -- one envelope per class of alike vehicles
  (:func:`fleet_classes`), each class's power shared least laxity first among its members
  (:func:`split_classes`); it meets the needs of vehicles leaving together under a binding
  limit. Where the site's limit can bind (:func:`site_limit_can_bind`) the centralized strategy
  runs both and keeps the better (:func:`classes_do_better`).

The per-step splits (:func:`split_llf`, :func:`split_value`, :func:`split_classes`) each keep
every need reachable under the site limit (:func:`need_floor_kwh`); :func:`coarsen` and
:func:`coarsen_blocks` give the same problem on longer steps, for cheap aggregate profiles.
Conventions (signs, energies, the modelling choices): :mod:`.problem`. The solver: :mod:`.solver`.

Whole-horizon runs of these splits and research variants the strategy does not run (grouped
envelopes, a one-shot least-laxity split) are in ``bench/planners.py``, with their measurements
in ``bench/README.md``.
"""

from v2gsim.strategies.dispatch.aggregate import (
    MAX_CLASSES,
    AggregatePlan,
    ClassPlan,
    fleet_classes,
    flexibility_envelopes,
    grouped_lp,
    plan_aggregate,
    plan_classes,
)
from v2gsim.strategies.dispatch.exact import EXACT_TIME_LIMIT_S, plan_exact, safe_plan
from v2gsim.strategies.dispatch.levels import VALUE_PRICE_BAND, plan_levels, value_thresholds
from v2gsim.strategies.dispatch.problem import (
    DispatchPlan,
    DispatchProblem,
    GridRequest,
    check_plan,
    coarsen,
    coarsen_blocks,
    evaluate_schedule,
    schedule_score,
    site_limit_can_bind,
    subset_problem,
    trusted_problem,
)
from v2gsim.strategies.dispatch.solver import prepare_solver
from v2gsim.strategies.dispatch.split import (
    classes_do_better,
    classes_step,
    need_floor_kwh,
    split_classes,
    split_llf,
    split_llf_segments,
    split_powers,
    split_value,
    value_step,
)

__all__ = [
    # problem
    "GridRequest",
    "DispatchProblem",
    "DispatchPlan",
    "evaluate_schedule",
    "schedule_score",
    "check_plan",
    "site_limit_can_bind",
    "trusted_problem",
    "coarsen",
    "coarsen_blocks",
    "subset_problem",
    # solver
    "prepare_solver",
    # exact
    "EXACT_TIME_LIMIT_S",
    "plan_exact",
    "safe_plan",
    # aggregate
    "AggregatePlan",
    "flexibility_envelopes",
    "plan_aggregate",
    "MAX_CLASSES",
    "fleet_classes",
    "ClassPlan",
    "plan_classes",
    "grouped_lp",
    # levels
    "VALUE_PRICE_BAND",
    "value_thresholds",
    "plan_levels",
    # split
    "split_llf",
    "split_llf_segments",
    "split_value",
    "need_floor_kwh",
    "split_classes",
    "split_powers",
    "value_step",
    "classes_step",
    "classes_do_better",
]
