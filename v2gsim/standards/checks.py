"""Problems with a scenario's standards, each with its YAML path and a fix (run by
``v2gsim.scenario.schema.model_checks`` on every scenario loaded or built)."""

from __future__ import annotations

from v2gsim.errors import Problem
from v2gsim.standards.catalogue import CONNECTORS

_SHARE_TOL = 1e-6


def _share_problem(path: str, shares: list[float], what: str) -> list[Problem]:
    total = sum(shares)
    if abs(total - 1.0) > _SHARE_TOL:
        return [Problem(path, f"the shares of the {what} add up to {total:g}, not 1",
                        "make the shares add up to 1 (add a type for the rest, e.g. one without v2g)")]
    return []


def standards_problems(sc) -> list[Problem]:
    from v2gsim.population.fleet import vehicle_spec

    problems: list[Problem] = []
    protocols: set[str] = set()
    for i, s in enumerate(sc.sites):
        if s.standards is None:
            continue
        path = f"sites[{i}]"
        problems += _share_problem(f"{path}.standards", [t.share for t in s.standards], "site's charger types")
        current = "dc" if s.is_dc else "ac"
        for j, t in enumerate(s.standards):
            protocols.update(t.v2g)
            if not any(CONNECTORS[c][0] == current for c in t.connectors):
                problems.append(Problem(f"{path}.standards[{j}].connectors",
                                        f"lists no {current.upper()} connector, but the site's chargers are {current.upper()} "
                                        f"(p_max_kw {s.p_max_kw:g}, current {s.current})",
                                        f"add a {current.upper()} connector ({', '.join(c for c, (k, _) in CONNECTORS.items() if k == current)}) "
                                        "or set the site's current"))
    sites = sc.site_index()
    for i, g in enumerate(sc.population):
        if g.standards is None:
            continue
        path = f"population[{i}]"
        problems += _share_problem(f"{path}.standards", [t.share for t in g.standards], "group's vehicle types")
        bidir = vehicle_spec(g.vehicle).bidirectional
        for j, t in enumerate(g.standards):
            protocols.update(t.v2g)
            if t.v2g and not bidir:
                name = g.vehicle if isinstance(g.vehicle, str) else g.vehicle.name
                problems.append(Problem(f"{path}.standards[{j}].v2g", f"vehicle {name!r} is not bidirectional, so it speaks no V2G protocol",
                                        "use a bidirectional vehicle (bidirectional: true) or drop v2g"))
        home = sc.sites[sites[g.home_site]] if g.home_site in sites else None
        if home is not None and home.kind == "home" and home.standards is not None and g.home_charger_share > 0:
            offered = {c for t in home.standards for c in t.connectors}
            for j, t in enumerate(g.standards):
                if not offered & set(t.inlets):
                    problems.append(Problem(f"{path}.standards[{j}].inlets",
                                            f"fit none of the piles at home site {home.id!r} (they offer {', '.join(sorted(offered))})",
                                            "a home pile is bought for its car: add the car's connector to a type of the home site"))
    if len(protocols) > 62:  # protocols are bits of one int64 (v2gsim.standards.compat)
        problems.append(Problem("sites", f"names {len(protocols)} V2G protocols", "use at most 62 distinct protocols"))
    return problems


def raw_standards_problems(raw: dict) -> list[Problem]:
    """Problems only the file as written shows (``v2gsim.scenario.schema.cross_checks``): a
    validated scenario always holds a ``bidirectional_share`` (its default), so whether the user
    gave one beside ``standards`` is a question for the raw YAML."""
    sites = raw.get("sites") if isinstance(raw.get("sites"), list) else []
    return [Problem(f"sites[{i}].bidirectional_share", "is given together with standards",
                    "drop bidirectional_share: with standards, the chargers that can discharge are the types listing a v2g protocol")
            for i, s in enumerate(sites) if isinstance(s, dict) and "standards" in s and "bidirectional_share" in s]

