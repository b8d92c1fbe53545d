"""A scenario fuzzer: mutate the bundled scenarios and check that v2gsim either runs them or
rejects them cleanly.

The contract (the reliability issue's "zero tracebacks"): every mutated scenario either
validates *and* runs one simulated day without an exception, or is rejected at validation with
a `ScenarioError` whose every problem names where it is (YAML path and file/line, or the data
file with row and column). A problem found only when the model is built counts as a failure:
`validate` said the file was fine.

Used by ``tests/test_fuzz.py`` (a fixed, derandomised set of examples in the suite) and by
``bench/fuzz.py`` (thousands of random ones, failure classes recorded in bench/README.md).
"""

from __future__ import annotations

import copy
import functools
import datetime as dt
import math
import traceback
from dataclasses import dataclass
from pathlib import Path

import yaml
from hypothesis import strategies as st

import v2gsim
from v2gsim.errors import ScenarioError
from v2gsim.scenario import bundled_scenarios, loader

# A scenario fed by a session file, so the CSV reader is fuzzed too (no bundled one has sessions).
SESSIONS_YAML = """\
name: sessions
seed: 3
time: {start: 2026-07-06T00:00, step_min: 15, horizon_days: 1, warmup_days: 0}
feeder: {transformer_kva: 50, households: 5}
tariff: {flat_cny_per_kwh: 0.5}
sites:
  - {id: lot, kind: public, p_max_kw: 7, chargers: 3}
  - {id: fast, kind: public, p_max_kw: 50, chargers: 1}
mobility_sessions: {csv: sessions.csv, default_site: lot}
"""
SESSIONS_CSV = [
    ["arrival", "departure", "energy_kwh", "site_id", "max_power_kw", "vehicle_id"],
    ["2026-07-06 07:00", "2026-07-06 09:00", "10", "lot", "", "a"],
    ["2026-07-06 08:00", "2026-07-06 12:30", "25.5", "lot", "3.6", "b"],
    ["2026-07-06 18:00", "2026-07-06 19:00", "30", "fast", "", "c"],
    ["2026-07-06 20:00", "2026-07-06 23:45", "8", "", "", "a"],
]

MAX_RUN_VEHICLES = 300  # runs are scaled down to this many generated vehicles (validation sees the original)

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_ODD_TEXT = st.sampled_from(["", " ", "深圳·莲花山 V2G 站", "🚗⚡", "a\x00b", "\u202eRTL", "x" * 100_000, "../../etc/passwd",
                             "~", "null", "true", "1e999", "2026-13-45T25:61", "NaN", "{a: 1}", "[1, 2"])
_NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 2, 0.5, -0.0, 1e-300, 1e300, 2**31, 2**63, -(2**63), 10**30, 3.0000001, 1440, 7.5]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**7),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXT, _ODD_TEXT,
                     st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)))
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3), st.dictionaries(_TEXT, _SCALARS, max_size=3))


@dataclass
class Case:
    """One fuzzed scenario on disk: the file to load and a label of what was done to it."""

    path: Path
    label: str


class Failure(AssertionError):
    """A fuzzed scenario broke the contract; ``kind`` groups failures into classes."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


@functools.cache
def seeds() -> dict[str, tuple[dict, str | None]]:
    """The raw data of every bundled scenario (extends resolved), plus the sessions scenario."""
    out = {}
    for name, path in bundled_scenarios().items():
        raw, _ = loader.resolve(path)
        out[name] = (raw, None)
    out["sessions"] = (yaml.safe_load(SESSIONS_YAML), "sessions")
    return out


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, prefix + (i,))


def _get(data, path):
    for p in path:
        data = data[p]
    return data


def _mutate_once(draw, raw):
    paths = [p for p in _paths(raw) if p]
    if not paths:
        return raw, "empty"
    path = draw(st.sampled_from(paths))
    parent = _get(raw, path[:-1])
    key = path[-1]
    old = parent[key]
    # nudges keep the type and often the validity, so that runs (not only the validator) are fuzzed
    op = draw(st.sampled_from(["drop", "replace", "nudge", "nudge", "nudge", "nudge", "duplicate", "rename_ref"]))
    where = ".".join(map(str, path))
    if op == "drop":
        if isinstance(parent, list):
            parent.pop(key)
        else:
            parent.pop(key)
        return raw, f"drop {where}"
    if op == "duplicate" and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(old))
        return raw, f"duplicate {where}"
    if op in ("nudge", "duplicate") and isinstance(old, (int, float)) and not isinstance(old, bool):
        factor = draw(st.sampled_from([0, -1, 0.5, 0.9, 1.1, 2, 3, 10, 1000, 1e-9, math.nan, math.inf]))
        new = old * factor
        parent[key] = int(new) if isinstance(old, int) and math.isfinite(new) and draw(st.booleans()) else new
        return raw, f"nudge {where} x{factor}"
    if op in ("nudge", "rename_ref") and isinstance(old, str):
        new = draw(st.sampled_from([old + "x", old[:-1], old.upper(), "", old + " ", "广州" + old]))
        parent[key] = new
        return raw, f"retext {where}"
    if op == "nudge" and isinstance(old, dt.datetime):
        parent[key] = draw(st.sampled_from([old.replace(tzinfo=dt.timezone.utc), old.replace(year=1900), old + dt.timedelta(minutes=7),
                                            old.isoformat() + "+08:00", old.isoformat() + "Z"]))
        return raw, f"retime {where}"
    parent[key] = draw(_VALUES)
    return raw, f"replace {where}"


def _mutate_csv(draw, rows):
    rows = [list(r) for r in rows]
    op = draw(st.sampled_from(["cell", "cell", "drop_row", "header_only", "empty", "dup_row", "tz", "outside", "huge"]))
    if op == "header_only":
        return rows[:1], op
    if op == "empty":
        return [], op
    if op == "drop_row" and len(rows) > 1:
        rows.pop(draw(st.integers(1, len(rows) - 1)))
        return rows, op
    if op == "dup_row" and len(rows) > 1:
        rows.append(list(rows[draw(st.integers(1, len(rows) - 1))]))
        return rows, op
    if op == "tz":
        for r in rows[1:]:
            r[0] += draw(st.sampled_from(["+08:00", "Z", "+00:00", "-05:00"]))
        return rows, op
    if op == "outside":
        for r in rows[1:]:
            r[0], r[1] = r[0].replace("2026", "2031"), r[1].replace("2026", "2031")
        return rows, op
    if op == "huge":
        rows[1][2] = draw(st.sampled_from(["1e9", "500", "-5", "nan", "inf"]))
        return rows, op
    i = draw(st.integers(0, len(rows) - 1))
    j = draw(st.integers(0, len(rows[i]) - 1))
    rows[i][j] = draw(st.one_of(_ODD_TEXT, st.sampled_from(["", "-1", "0", "2026-07-06 30:00", "2026-07-05 23:00", "lot", "fast", "nowhere"])))
    return rows, f"cell {i},{j}"


def _write_csv(path: Path, rows) -> None:
    path.write_text("".join(",".join(r) + "\n" for r in rows), encoding="utf-8", errors="surrogatepass")


@st.composite
def cases(draw, tmp: Path, names: list[str] | None = None) -> Case:
    """Draw one fuzzed scenario and write it (and its data files) under ``tmp``."""
    all_seeds = seeds()
    name = draw(st.sampled_from(sorted(names or all_seeds)))
    raw, kind = all_seeds[name]
    raw = copy.deepcopy(raw)
    labels = [name]
    for _ in range(draw(st.integers(1, 2))):
        raw, label = _mutate_once(draw, raw)
        labels.append(label)
    tmp.mkdir(parents=True, exist_ok=True)
    if kind == "sessions":
        rows, label = (_mutate_csv(draw, SESSIONS_CSV) if draw(st.booleans()) else (SESSIONS_CSV, "csv as is"))
        _write_csv(tmp / "sessions.csv", rows)
        labels.append(label)
    text = yaml.safe_dump(raw, allow_unicode=True, sort_keys=False) if isinstance(raw, (dict, list)) else str(raw)
    path = tmp / "scenario.yaml"
    if isinstance(raw, dict) and draw(st.integers(0, 5)) == 0:  # split into a parent and a child with extends
        keys = list(raw)
        cut = draw(st.integers(0, len(keys)))
        parent = {k: raw[k] for k in keys[:cut]}
        child = {k: raw[k] for k in keys[cut:]}
        target = draw(st.sampled_from(["parent.yaml", "parent.yaml", "missing.yaml", "scenario.yaml", tmp.name]))
        (tmp / "parent.yaml").write_text(yaml.safe_dump(parent, allow_unicode=True), encoding="utf-8")
        text = yaml.safe_dump({"extends": target, **child}, allow_unicode=True, sort_keys=False)
        labels.append(f"extends {target}")
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return Case(path, " | ".join(labels))


def _scaled(sc) -> dict:
    """Overrides for a one-day run of at most MAX_RUN_VEHICLES generated vehicles."""
    over: dict = {"time.horizon_days": 1}
    total = sum(g.count for g in sc.population)
    if total > MAX_RUN_VEHICLES:
        for i, g in enumerate(sc.population):
            over[f"population.{i}.count"] = max(1, g.count * MAX_RUN_VEHICLES // total)
    return over


def _where(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/v2gsim/" in f.filename]
    f = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    return f"{Path(f.filename).name}:{f.name}"


def check(case: Case, out_dir: Path | None = None) -> str:
    """Apply the contract to one case: ``"rejected"`` or ``"ran"``, else raise `Failure`."""
    try:
        sc = v2gsim.load_scenario(case.path)
    except ScenarioError as exc:
        if not exc.problems:
            raise Failure("empty-error", case.label) from exc
        for p in exc.problems:
            if not isinstance(p.path, str) or not (p.line is not None or p.file is not None):
                raise Failure("problem-without-place", f"{p!r} | {case.label}") from exc
        str(exc)  # formatting must not fail either
        return "rejected"
    except Exception as exc:  # noqa: BLE001 - every other exception is what we look for
        raise Failure(f"validate-crash {type(exc).__name__} at {_where(exc)}", f"{exc!s:.300} | {case.label}") from exc
    try:
        small = v2gsim.load_scenario(case.path, _scaled(sc))
    except ScenarioError as exc:
        raise Failure("scaling-rejected", f"{exc!s:.300} | {case.label}") from exc
    try:
        res = v2gsim.run(small)
        if out_dir is not None:
            res.save(out_dir, plots=False)
    except ScenarioError as exc:
        raise Failure(f"late-scenario-error at {_where(exc)}", f"{exc!s:.300} | {case.label}") from exc
    except Exception as exc:  # noqa: BLE001
        raise Failure(f"run-crash {type(exc).__name__} at {_where(exc)}", f"{exc!s:.300} | {case.label}") from exc
    return "ran"
