"""Distribution networks: loading by name, placing things on buses, base-load and PV profiles.

Networks are pandapower nets. ``feeder.network`` names one as ``<source>`` or
``<source>:<argument>``; each source is registered in :data:`NETWORK_SOURCES`:

- built-ins from ``pandapower.networks`` by name (``case33bw``, ``cigre_lv``, ``cigre_mv``, the
  Kerber LV feeders, ...),
- SimBench grids by code, ``simbench:<code>`` (``simbench:1-LV-semiurb4--0-sw``), which come
  with their own year-long 15-minute load and generation profiles,
- pandapower JSON files, ``file:<net.json>``,
- and the sources a user's module registers with ``@v2gsim.register_network_source("name")``
  (see ``docs/extending.md``).

Profiles are returned in kW with the project's sign convention for loads (> 0 is drawn from the
grid). PV (static generator) output is returned as a production, >= 0.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from v2gsim.registry import Registry

__all__ = [
    "NETWORK_SOURCES",
    "NetworkSource",
    "assign_buses",
    "check_bus",
    "is_simbench",
    "known_network_names",
    "load_buses",
    "load_network",
    "network_profiles",
    "network_source",
    "register_network_source",
    "simbench_unsupported_reason",
    "spec_problem",
    "standard_profile",
]

SIMBENCH_PREFIX = "simbench:"
_SLOT_MIN = 15  # SimBench profile resolution
_SLOTS_PER_DAY = 24 * 60 // _SLOT_MIN
_PROFILE_YEAR = 2016  # SimBench profiles cover 2016 (a leap year, 366 days)


# --------------------------------------------------------------------------- sources


class NetworkSource:
    """A way to name networks in ``feeder.network``: ``name``, or ``name:<argument>`` when
    :attr:`argument` is set. Register a subclass with ``@register_network_source("name")``; it is
    made without arguments each time a network is named."""

    #: what the argument after ``name:`` is, for messages (``"<code>"``); None: the name alone
    argument: ClassVar[str | None] = None

    def load(self, argument: str | None):
        """A fresh pandapowerNet (callers may change it). Raises ValueError or OSError with a
        sentence for an argument it cannot load."""
        raise NotImplementedError

    def check(self, argument: str | None) -> tuple[str, str | None] | None:
        """``(problem, hint)`` for an argument that cannot work, found without loading the
        network (``v2gsim validate`` calls it); default: none (problems show when it loads)."""
        return None

    def unsupported_without_loading(self, argument: str | None) -> tuple[bool, str | None]:
        """``(decided, reason)``: whether this source can tell, without loading the network,
        that the AC power flow cannot solve it (and why). Default: it cannot tell; the network
        is loaded and asked."""
        return False, None


def _check_source(name: str, cls: object) -> None:
    if not (isinstance(cls, type) and issubclass(cls, NetworkSource)):
        raise TypeError(f"@register_network_source({name!r}) decorates a subclass of "
                        f"v2gsim.physics.networks.NetworkSource; got {cls!r}")


#: Network sources by the name before ``:`` in ``feeder.network``.
NETWORK_SOURCES = Registry(
    "network source", "v2gsim.network_sources", builtins=("v2gsim.physics.networks",), check=_check_source,
    display=lambda name, cls: f"{name}:{cls.argument}" if cls.argument else name,
)

#: Class decorator: ``@register_network_source("ring")`` makes ``feeder.network: ring:...`` load it.
register_network_source = NETWORK_SOURCES.register


def _pn():
    import pandapower.networks as pn  # heavy import, deferred

    return pn


class PandapowerNetwork(NetworkSource):
    """A network of ``pandapower.networks``, by the function that builds it."""

    function: ClassVar[str]
    kwargs: ClassVar[dict] = {}

    def load(self, argument: str | None):
        return copy.deepcopy(_pandapower_net(self.function, tuple(sorted(self.kwargs.items()))))


@functools.lru_cache(maxsize=16)
def _pandapower_net(function: str, kwargs: tuple):
    return getattr(_pn(), function)(**dict(kwargs))


# name in feeder.network -> (pandapower.networks function, its arguments)
_PANDAPOWER_NETWORKS: dict[str, tuple[str, dict]] = {
    "case33bw": ("case33bw", {}),
    "cigre_lv": ("create_cigre_network_lv", {}),
    "cigre_mv": ("create_cigre_network_mv", {"with_der": "pv_wind"}),  # DER (PV + wind) to play with
    "mv_oberrhein": ("mv_oberrhein", {}),
    "lv_schutterwald": ("lv_schutterwald", {}),
    **{f"kerber_{n}": (f"create_kerber_{n}", {}) for n in (
        "dorfnetz", "landnetz_freileitung_1", "landnetz_freileitung_2", "landnetz_kabel_1", "landnetz_kabel_2",
        "vorstadtnetz_kabel_1", "vorstadtnetz_kabel_2")},
    **{f"kb_extrem_{n}": (f"kb_extrem_{n}", {}) for n in (
        "dorfnetz", "dorfnetz_trafo", "landnetz_freileitung", "landnetz_freileitung_trafo", "landnetz_kabel",
        "landnetz_kabel_trafo", "vorstadtnetz_1", "vorstadtnetz_2", "vorstadtnetz_trafo_1", "vorstadtnetz_trafo_2")},
}

for _name, (_function, _kwargs) in _PANDAPOWER_NETWORKS.items():
    register_network_source(_name)(type(_name, (PandapowerNetwork,), {
        "function": _function, "kwargs": _kwargs, "__module__": __name__,
        "__doc__": f"pandapower.networks.{_function}"}))
del _name, _function, _kwargs


@register_network_source("simbench")
class SimBench(NetworkSource):
    """A SimBench grid by its code, with its year-long load and generation profiles."""

    argument = "<code>"

    def check(self, argument):
        codes = _simbench_codes()
        if argument in codes:
            return None
        close = difflib.get_close_matches(argument or "", codes, n=3, cutoff=0.5)
        hint = ("did you mean " + ", ".join(repr(SIMBENCH_PREFIX + c) for c in close) + "?") if close else \
            "see simbench.collect_all_simbench_codes() for the codes"
        return f"unknown SimBench code {argument!r}", hint

    def load(self, argument):
        bad = self.check(argument)
        if bad is not None:
            raise ValueError(f"{bad[0]}; {bad[1]}")
        return copy.deepcopy(_simbench_net(argument))

    def unsupported_without_loading(self, argument):
        return True, simbench_unsupported_reason(argument)  # loading a SimBench grid takes seconds


# pandapower.from_json imports every module a file names in "_module" before it builds the
# object, so a network file could run any importable code: only these packages are let through
_JSON_MODULES = ("pandapower", "pandas", "numpy", "networkx", "geojson", "shapely", "builtins")


def _foreign_modules(path: Path) -> list[str]:
    """The "_module" entries of a pandapower JSON file outside `_JSON_MODULES` (or the reason it
    is not JSON)."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            mod = node.get("_module")
            if isinstance(mod, str) and mod.split(".")[0] not in _JSON_MODULES:
                found.add(mod)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and '"_module"' in node:  # pandapower nests JSON in strings
            try:
                walk(json.loads(node))
            except ValueError:
                pass

    try:
        walk(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return [f"(not a readable JSON file: {exc})"]
    return sorted(found)


@register_network_source("file")
class JsonFile(NetworkSource):
    """A pandapower JSON file (``pandapower.to_json``)."""

    argument = "<net.json>"

    def check(self, argument):
        path = Path(argument or "").expanduser()
        if not path.is_file():
            return f"network file {str(path)!r} does not exist", "give an existing pandapower JSON file"
        foreign = _foreign_modules(path)
        if foreign:
            return (f"network file {str(path)!r} names Python modules v2gsim does not import from a network file: "
                    f"{', '.join(foreign)}", "save the network with pandapower.to_json; only pandapower, pandas and numpy objects are read")
        return None

    def load(self, argument):
        import pandapower as pp

        path = Path(argument or "").expanduser()
        problem = self.check(argument)
        if problem is not None:
            # a missing file is a FileNotFoundError, as open() would raise; a refused one a ValueError
            raise (ValueError if path.is_file() else FileNotFoundError)(problem[0])
        return pp.from_json(os.fspath(path))


def known_network_names() -> list[str]:
    """Every registered way to name a network (``case33bw``, ``simbench:<code>``, ...)."""
    return NETWORK_SOURCES.names()


@functools.lru_cache(maxsize=16)
def _simbench_net(code: str):
    import simbench as sb

    return sb.get_simbench_net(code)


@functools.lru_cache(maxsize=1)
def _simbench_codes() -> tuple[str, ...]:
    import simbench as sb

    return tuple(sb.collect_all_simbench_codes())


def simbench_unsupported_reason(code: str) -> str | None:
    """Why the AC power flow cannot solve SimBench grid ``code``, without loading it (seconds).

    The SimBench grids with extra-high voltage carry DC lines (``dcline``) in scenarios 1 and
    2, which `v2gsim.physics.grid.PowerFlow` does not model; every other grid it solves as
    ``pandapower.runpp`` does (``bench/bench_feeder.py --agreement`` checks this rule against
    every code the installed simbench ships).
    """
    import simbench as sb

    _, par = sb.get_simbench_code_and_parameters(code)
    hv_level, scenario = str(par[1]), str(par[5])
    if hv_level in ("EHV", "complete_data") and scenario in ("1", "2"):
        return (f"SimBench scenario {scenario} grids with extra-high voltage have DC lines "
                f"(dcline), which the lightsim2grid power flow does not model")
    return None


@register_network_source("replicate")
class Replicate(NetworkSource):
    """``replicate:<N>:<network>``: N copies of a network side by side, each with its own
    infeed (so N islands, one per feeder), e.g. ``replicate:10:simbench:1-MV-urban--0-sw`` for a
    district on ten MV grids. One MV feeder carries a few thousand households, so a city's EVs
    sit on many; the power flow solves every island with its own slack. Copies keep the source
    net's profiles (SimBench): every copy has the same base load and PV shapes."""

    argument = "<N>:<network>"
    MAX_COPIES = 200

    def _split(self, argument: str | None) -> tuple[int, str] | tuple[str, str | None]:
        n_text, colon, inner = (argument or "").partition(":")
        try:
            n = int(n_text)
        except ValueError:
            return f"replicate needs a whole number of copies before the network; got {n_text!r}", \
                "write replicate:<N>:<network>, e.g. replicate:10:simbench:1-MV-urban--0-sw"
        if not 1 <= n <= self.MAX_COPIES or not colon or not inner.strip():
            return f"replicate needs 1..{self.MAX_COPIES} copies and a network; got {argument!r}", \
                "write replicate:<N>:<network>, e.g. replicate:10:simbench:1-MV-urban--0-sw"
        return n, inner.strip()

    def check(self, argument):
        split = self._split(argument)
        if isinstance(split[0], str):
            return split
        if split[1].partition(":")[0].strip() == "replicate":
            return "replicate of a replicate", "give the copies in one replicate:<N>:<network>"
        return spec_problem(split[1])

    def unsupported_without_loading(self, argument):
        split = self._split(argument)
        if isinstance(split[0], str) or split[1].partition(":")[0].strip() == "replicate":
            return False, None
        source, inner_argument = network_source(split[1])
        return source.unsupported_without_loading(inner_argument)

    def load(self, argument):
        import pandapower.toolbox as tb

        bad = self.check(argument)
        if bad is not None:
            raise ValueError(f"{bad[0]}; {bad[1]}")
        n, inner = self._split(argument)
        one = load_network(inner)
        # merge_nets reindexes every element table; SimBench's loadcases (indexed by name) are
        # set aside and put back (they are the same for every copy)
        loadcases = one.get("loadcases") if hasattr(one, "get") else None
        if isinstance(loadcases, pd.DataFrame):
            one.loadcases = loadcases.iloc[:0]
        net = copy.deepcopy(one)
        for _ in range(n - 1):
            net = tb.merge_nets(net, copy.deepcopy(one), validate=False, net2_reindex_log_level=None)
        if isinstance(loadcases, pd.DataFrame):
            net.loadcases = loadcases
        net.name = f"replicate:{argument}"
        return net


class NetworkSpecError(ValueError):
    """A ``feeder.network`` that names no registered source, or gives it the wrong argument."""

    def __init__(self, message: str, hint: str | None):
        super().__init__(f"{message}; {hint}" if hint else message)
        self.message, self.hint = message, hint


def network_source(spec: str) -> tuple[NetworkSource, str | None]:
    """The source a ``feeder.network`` names and the argument after its ``:`` (None without).

    Raises:
        NetworkSpecError: no such source (with a suggestion and the known ones), or an argument
            missing or given where the source takes none.
    """
    name, colon, argument = spec.strip().partition(":")
    name, argument = name.strip(), argument.strip() if colon else None
    if name not in NETWORK_SOURCES:
        raise NetworkSpecError(f"unknown network {spec.strip()!r}", NETWORK_SOURCES.hint(name))
    cls = NETWORK_SOURCES[name]
    if cls.argument is None and argument is not None:
        raise NetworkSpecError(f"network {name!r} takes nothing after ':'; got {spec.strip()!r}", f"write {name}")
    if cls.argument is not None and not argument:
        raise NetworkSpecError(f"network source {name!r} needs an argument", f"write {name}:{cls.argument}")
    return cls(), argument


def spec_problem(spec: str) -> tuple[str, str | None] | None:
    """``(problem, hint)`` of a ``feeder.network`` found without loading the network, or None."""
    try:
        source, argument = network_source(spec)
    except NetworkSpecError as exc:
        return exc.message, exc.hint
    return source.check(argument)


def load_network(spec: str):
    """Load a pandapower network by its ``feeder.network`` spec.

    Args:
        spec: ``case33bw``, ``cigre_lv``, ``cigre_mv``, a Kerber feeder name
            (``kerber_landnetz_freileitung_1``, ...), ``simbench:<code>``, ``file:<path.json>``,
            or ``<name>[:<argument>]`` of a registered source.

    Returns:
        A fresh pandapowerNet (a deep copy: callers may mutate it). SimBench nets keep their
        ``profiles`` tables.

    Raises:
        ValueError: unknown name or SimBench code (with the known names and a suggestion).
        FileNotFoundError: a ``file:`` path that does not exist.
    """
    source, argument = network_source(spec)
    return source.load(argument)


# --------------------------------------------------------------------------- placement


def load_buses(net) -> tuple[np.ndarray, np.ndarray]:
    """Buses that carry in-service loads and are supplied, with weights proportional to their load.

    Args:
        net: pandapowerNet.

    Returns:
        ``(buses, weights)``: unique bus indices [n_load_buses] (pandapower labels, sorted) and
        weights [n_load_buses] summing to 1, proportional to the summed ``p_mw * scaling`` of the
        loads at each bus (equal weights if all loads are zero). Buses no external grid supplies
        (`v2gsim.physics.grid.energised_buses`) are left out: nothing placed there would be
        solved.

    Raises:
        ValueError: the network has no in-service load on a supplied bus.
    """
    from v2gsim.physics.grid import energised_buses

    supplied = net.bus.index[energised_buses(net)]
    load = net.load[net.load["in_service"].to_numpy(bool) & net.load["bus"].isin(supplied).to_numpy()]
    if len(load) == 0:
        raise ValueError(f"network {net.name!r} has no in-service load on a supplied bus to attach "
                         f"anything to")
    bus = load["bus"].to_numpy(np.int64)
    scaling = load["scaling"].to_numpy(float) if "scaling" in load else 1.0
    p = np.abs(load["p_mw"].to_numpy(float) * scaling)
    buses, inv = np.unique(bus, return_inverse=True)
    w = np.bincount(inv, weights=p, minlength=len(buses))
    total = w.sum()
    w = w / total if total > 0 else np.full(len(buses), 1.0 / len(buses))
    return buses, w


def check_bus(net, bus) -> str | None:
    """Return an error sentence if ``bus`` is not an in-service bus of ``net``, else None."""
    try:
        b = int(bus)
    except (TypeError, ValueError):
        return f"bus must be an integer bus index of network {net.name!r}; got {bus!r}"
    if b != bus:
        return f"bus must be an integer bus index of network {net.name!r}; got {bus!r}"
    if b not in net.bus.index:
        lo, hi = int(net.bus.index.min()), int(net.bus.index.max())
        return (f"bus {b} does not exist in network {net.name!r} "
                f"({len(net.bus)} buses, indices {lo}..{hi})")
    if not bool(net.bus.at[b, "in_service"]):
        return f"bus {b} of network {net.name!r} is out of service"
    from v2gsim.physics.grid import energised_buses

    if not energised_buses(net)[net.bus.index.get_loc(b)]:
        return (f"bus {b} of network {net.name!r} is not supplied: no in-service external grid "
                f"reaches it (an island, or cut off by open switches)")
    return None


def assign_buses(n_items: int, net, rng: np.random.Generator,
                 explicit: dict[str, int] | None = None,
                 ids: list[str] | None = None) -> np.ndarray:
    """Spread items over the load buses in proportion to the existing load.

    Uses systematic (low-variance) sampling on the cumulative load weights after a random
    permutation of the items, so bus counts match ``n_items * weight`` to within one item and
    the assignment is deterministic under ``rng``.

    Args:
        n_items: number of items (vehicles, chargers, sites) to place.
        net: pandapowerNet.
        rng: numpy Generator (the caller's named stream).
        explicit: optional ``{item_id: bus}`` overrides. Keys are looked up in ``ids``, or are
            item positions as strings when ``ids`` is None.
        ids: optional item ids [n_items], used with ``explicit``.

    Returns:
        Bus index (pandapower label) per item, int64 [n_items].

    Raises:
        ValueError: an explicit bus the network does not have, or an explicit id not in ``ids``.
    """
    buses, w = load_buses(net)
    # systematic sampling: positions (u + k) / n over the cumulative weights
    u = rng.random()
    pos = (u + np.arange(n_items)) / max(n_items, 1)
    cum = np.cumsum(w)
    cum[-1] = 1.0
    out = buses[np.searchsorted(cum, pos, side="right").clip(0, len(buses) - 1)]
    out = out[rng.permutation(n_items)]
    if explicit:
        # keys are item ids when ``ids`` is given, else item positions ("0", "1", ...)
        where = ({k: i for i, k in enumerate(ids)} if ids is not None
                 else {str(i): i for i in range(n_items)})
        for key, bus in explicit.items():
            if key not in where:
                raise ValueError(f"explicit bus given for unknown item {key!r}")
            err = check_bus(net, bus)
            if err:
                raise ValueError(f"{key}: {err}")
            out[where[key]] = int(bus)
    return out.astype(np.int64)


# --------------------------------------------------------------------------- profiles


def is_simbench(net) -> bool:
    """True if ``net`` carries SimBench profiles (``net.profiles['load']`` and a profile column)."""
    prof = net.get("profiles") if hasattr(net, "get") else None
    return (isinstance(prof, dict) and isinstance(prof.get("load"), pd.DataFrame)
            and len(prof["load"]) > 0 and "profile" in net.load)


def _simbench_data_dir() -> Path:
    import simbench as sb

    root = Path(sb.__file__).parent / "networks"
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "LoadProfile.csv").exists())
    if not dirs:
        raise FileNotFoundError(f"no SimBench LoadProfile.csv found under {root}")
    return dirs[0]


@functools.lru_cache(maxsize=8)
def standard_profile(name: str = "H0-A_pload", kind: str = "load") -> np.ndarray:
    """A SimBench standard profile, year-long at 15 min, normalised to a peak of 1.

    Args:
        name: column of SimBench's ``LoadProfile.csv`` (``H0-A_pload``, ``G1-A_pload``, ...) or,
            with ``kind="res"``, of ``RESProfile.csv`` (``PV1``, ``WP1``, ...).
        kind: ``"load"`` or ``"res"``.

    Returns:
        float64 [35136] (366 days × 96 slots of 2016), read-only, max 1.
    """
    fname = {"load": "LoadProfile.csv", "res": "RESProfile.csv"}[kind]
    path = _simbench_data_dir() / fname
    col = pd.read_csv(path, sep=";", usecols=[name])[name].to_numpy(float)
    peak = np.abs(col).max()
    out = col / peak if peak > 0 else col
    out.setflags(write=False)
    return out


def _slot_of(times: pd.DatetimeIndex) -> np.ndarray:
    """15-minute slot in the 2016 SimBench year with the same month, day and time of day."""
    if times.tz is not None:
        times = times.tz_localize(None)  # local wall-clock time is what the profiles describe
    doy_2016 = pd.to_datetime(
        {"year": _PROFILE_YEAR, "month": times.month, "day": times.day}).dt.dayofyear.to_numpy()
    minute = times.hour.to_numpy() * 60 + times.minute.to_numpy()
    return (doy_2016 - 1) * _SLOTS_PER_DAY + minute // _SLOT_MIN


def _resample(year: np.ndarray, start: pd.Timestamp, step_min: int, n_steps: int) -> np.ndarray:
    """Mean of a piecewise-constant 15-min year profile over each step of the horizon.

    Args:
        year: [35136, n] values per 2016 slot.

    Returns:
        [n_steps, n]: exact interval means, so energy is conserved under any step length; below
        15 min this is a hold of the slot value (when the step divides 15 min).
    """
    start = pd.Timestamp(start)
    if start.tzinfo is not None:
        start = start.tz_localize(None)
    total_min = n_steps * step_min
    off = (start.hour * 60 + start.minute) % _SLOT_MIN + start.second / 60.0
    slot0 = start.floor(f"{_SLOT_MIN}min")
    n_slots = int(np.ceil((off + total_min) / _SLOT_MIN)) + 1
    times = pd.date_range(slot0, periods=n_slots, freq=f"{_SLOT_MIN}min")
    vals = year[_slot_of(times)]  # [n_slots, n]
    cum = np.zeros((n_slots + 1, vals.shape[1]))
    np.cumsum(vals, axis=0, out=cum[1:])
    cum *= _SLOT_MIN  # value·minutes from slot0 to each slot edge

    edges = off + step_min * np.arange(n_steps + 1, dtype=float)  # minutes from slot0
    j = np.minimum((edges // _SLOT_MIN).astype(np.int64), n_slots - 1)
    integ = cum[j] + (edges - j * _SLOT_MIN)[:, None] * vals[j]
    return np.diff(integ, axis=0) / step_min


def network_profiles(net, start: pd.Timestamp, step_min: int, n_steps: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Base load and PV (static generator) active power per step.

    SimBench nets use their own absolute profiles; other nets scale each load's ``p_mw`` by the
    SimBench H0 household profile (peak 1) and each sgen's ``p_mw`` by the PV1 profile (peak 1).
    Scenario dates map onto the 2016 profile year by month, day and time of day (so weekdays are
    not aligned; multi-year horizons repeat the year).

    Args:
        net: pandapowerNet.
        start: first step's start (tz-aware is read as local wall-clock time).
        step_min: step length in minutes (> 0).
        n_steps: number of steps (> 0).

    Returns:
        ``(p_base_kw [n_steps, n_loads], p_pv_kw [n_steps, n_sgens])`` in net.load / net.sgen row
        order. Base load > 0 is drawn from the grid; PV is production (>= 0 for PV).
    """
    if step_min <= 0 or n_steps <= 0:
        raise ValueError(f"step_min and n_steps must be > 0; got {step_min}, {n_steps}")
    if is_simbench(net):
        load_year, sgen_year = _simbench_year(net)
    else:
        h0 = standard_profile("H0-A_pload")
        pv = standard_profile("PV1", "res")
        load_p = (net.load["p_mw"] * net.load.get("scaling", 1.0)).to_numpy(float) * 1e3
        sgen_p = (net.sgen["p_mw"] * net.sgen.get("scaling", 1.0)).to_numpy(float) * 1e3
        load_year = h0[:, None] * load_p[None, :]
        sgen_year = pv[:, None] * sgen_p[None, :]
    p_base = _resample(load_year, start, step_min, n_steps)
    p_pv = _resample(sgen_year, start, step_min, n_steps) if sgen_year.shape[1] else np.zeros((n_steps, 0))
    return p_base, p_pv


def _simbench_year(net) -> tuple[np.ndarray, np.ndarray]:
    """SimBench absolute p per load and sgen, kW, [35136, n_loads] and [35136, n_sgens]."""
    import simbench as sb

    # keyed on the profile table's identity; the entry holds a reference to it so the id
    # cannot be reused by another object while cached
    key = (id(net.profiles["load"]), len(net.load), len(net.sgen))
    hit = _ABS_CACHE.get(key)
    if hit is not None:
        return hit[1], hit[2]
    absval = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    load = absval[("load", "p_mw")].reindex(columns=net.load.index).to_numpy(float) * 1e3
    sgen = absval[("sgen", "p_mw")].reindex(columns=net.sgen.index).to_numpy(float) * 1e3
    _ABS_CACHE.clear()  # keep one entry: profiles are large
    _ABS_CACHE[key] = (net.profiles["load"], load, sgen)
    return load, sgen


_ABS_CACHE: dict = {}
