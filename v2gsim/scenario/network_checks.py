"""Scenario checks that need the feeder network: its name, whether the AC power flow can solve
it, and the buses sites name.

Tolerant of any raw shape (pydantic reports the shapes); each problem names the YAML path.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from v2gsim.errors import Problem


def _spec_problem(spec: str) -> Problem | None:
    """A problem with a network spec, without loading SimBench grids (which takes seconds)."""
    from v2gsim.physics import networks as nw

    spec = spec.strip()
    if spec.startswith(nw.FILE_PREFIX):
        path = Path(spec[len(nw.FILE_PREFIX):].strip()).expanduser()
        if not path.is_file():
            return Problem("feeder.network", f"network file {str(path)!r} does not exist", "give an existing pandapower JSON file")
        return None
    if spec.startswith(nw.SIMBENCH_PREFIX):
        code = spec[len(nw.SIMBENCH_PREFIX):].strip()
        codes = nw._simbench_codes()
        if code not in codes:
            close = difflib.get_close_matches(code, codes, n=3, cutoff=0.5)
            hint = ("did you mean " + ", ".join(repr(nw.SIMBENCH_PREFIX + c) for c in close) + "?") if close else \
                "see simbench.collect_all_simbench_codes() for the codes"
            return Problem("feeder.network", f"unknown SimBench code {code!r}", hint)
        return None
    known = nw.known_network_names()
    if spec not in known:
        close = difflib.get_close_matches(spec, known, n=1, cutoff=0.5)
        hint = (f"did you mean {close[0]!r}? " if close else "") + \
            f"known: {', '.join(known)}, or 'simbench:<code>', or 'file:<net.json>'"
        return Problem("feeder.network", f"unknown network {spec!r}", hint)
    return None


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
                if isinstance(s, dict) and s.get("bus") is not None and s.get("bus") != "auto"]
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
    from v2gsim.physics import networks as nw
    from v2gsim.physics.grid import unsupported_reason
    from v2gsim.physics.networks import check_bus, load_network, simbench_unsupported_reason

    spec = spec.strip()
    if solve_ac and spec.startswith(nw.SIMBENCH_PREFIX) and not explicit:
        # decided from the code: loading a SimBench grid takes seconds
        reason = simbench_unsupported_reason(spec[len(nw.SIMBENCH_PREFIX):].strip())
        return problems + ([unsupported_problem(spec, reason)] if reason else [])
    try:
        net = load_network(spec)
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
