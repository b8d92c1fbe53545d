"""Scenario checks that need the feeder network: its name, whether the AC power flow can solve
it, and the buses sites name.

Tolerant of any raw shape (pydantic reports the shapes); each problem names the YAML path.
"""

from __future__ import annotations

from typing import Any

from v2gsim.errors import Problem


def _spec_problem(spec: str) -> Problem | None:
    """A problem with a network spec, found by its source without loading the network."""
    from v2gsim.physics.networks import spec_problem

    found = spec_problem(spec)
    return Problem("feeder.network", *found) if found else None


def network_checks(raw: Any) -> list[Problem]:
    """Problems with ``feeder.network`` (unknown, or one the AC power flow cannot solve),
    ``sites[i].bus`` and ``outputs.bus_voltages``."""
    if not isinstance(raw, dict):
        return []
    problems: list[Problem] = []
    feeder = raw.get("feeder") if isinstance(raw.get("feeder"), dict) else {}
    spec = feeder.get("network")
    sites = raw.get("sites") if isinstance(raw.get("sites"), list) else []
    explicit = [(i, s["bus"]) for i, s in enumerate(sites)
                if isinstance(s, dict) and s.get("bus") is not None and s.get("bus") not in ("auto", "spread")]
    outputs = raw.get("outputs") if isinstance(raw.get("outputs"), dict) else {}
    if spec is None:
        for i, _ in explicit:
            problems.append(Problem(f"sites[{i}].bus", "names a bus but the feeder has no network",
                                    "set feeder.network, or remove the bus"))
        if outputs.get("bus_voltages") is True:
            problems.append(Problem("outputs.bus_voltages", "needs a feeder.network", "set feeder.network or drop bus_voltages"))
        return problems
    if not isinstance(spec, str):
        return problems  # pydantic reports the type
    bad = _spec_problem(spec)
    if bad is not None:
        return problems + [bad]
    if outputs.get("bus_voltages") is True and feeder.get("solver") == "capacity_only":
        problems.append(Problem("outputs.bus_voltages", "needs feeder.solver: ac (capacity_only computes no voltages)",
                                "use solver: ac or drop bus_voltages"))
    explicit = [(i, b) for i, b in explicit if isinstance(b, int) and not isinstance(b, bool)]
    solve_ac = feeder.get("solver", "ac") == "ac"
    if not (explicit or solve_ac):
        return problems
    from v2gsim.physics.grid import unsupported_reason
    from v2gsim.physics.networks import check_bus, network_source

    spec = spec.strip()
    source, argument = network_source(spec)
    if solve_ac and not explicit:
        decided, reason = source.unsupported_without_loading(argument)  # SimBench: from the code (loading takes seconds)
        if decided:
            return problems + ([unsupported_problem(spec, reason)] if reason else [])
    try:
        net = source.load(argument)
    except Exception as exc:  # a JSON file that is not a pandapower net, ...
        return problems + [Problem("feeder.network", f"cannot load network {spec!r}: {exc}")]
    net.name = net.name or spec
    reason = unsupported_reason(net) if solve_ac else None
    if reason:
        problems.append(unsupported_problem(spec, reason))
    for i, b in explicit:
        err = check_bus(net, b)
        if err:
            sid = sites[i].get("id", f"#{i}")
            problems.append(Problem(f"sites[{i}].bus", f"site {sid!r}: {err}", "use a bus index of the network, or bus: auto"))
    return problems


def unsupported_problem(spec: str, reason: str) -> Problem:
    """The problem of a ``feeder.network`` the AC power flow cannot solve, and why."""
    return Problem("feeder.network", f"network {spec!r} cannot be solved by the AC power flow: {reason}",
                   "use feeder.solver: capacity_only, or change the network")
