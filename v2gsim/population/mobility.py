"""Mobility as sorted event arrays, one day at a time.

Two sources feed the engine the same :class:`DayEvents`: :class:`GeneratedMobility` samples the
archetypes' trip chains (a day ahead, so that a driver arriving in the evening can state
tomorrow's departure), and :class:`SessionMobility` replays a CSV of real charging sessions.
The engine slices each day's arrays per step with precomputed bounds; there is no event heap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from v2gsim.data.cn_calendar import is_workday
from v2gsim.errors import Problem
from v2gsim.fields import WallClock, wall_clock
from v2gsim.population.archetypes import PLANNERS, DayPlan
from v2gsim.population.fleet import PUBLIC, Fleet, GroupSpec

STREAM_MOBILITY = 1
NO_SITE = -1


@dataclass
class DayEvents:
    """One day's departures and arrivals, each sorted by global step.

    Departures: ``dep_step``, ``dep_vehicle``, ``dep_trip_kwh`` and ``dep_km`` (the trip about
    to start, known to the driver before leaving; 0 for replayed sessions), ``dep_dest`` (the
    trip's destination, a location code), ``dep_travel_steps``
    (steps from this departure to the trip's arrival). Arrivals: ``arr_step``, ``arr_vehicle``,
    ``arr_loc`` (location code), ``arr_site`` (site index, -1 none), ``arr_trip_kwh`` (energy
    the trip used), ``arr_km``, ``arr_e_set_kwh`` (NaN, or the energy a replayed session
    arrives with), ``arr_p_max_kw`` (session power limit, inf if none),
    ``arr_depart_est_step`` (the departure the driver states) and ``arr_next_trip_kwh`` (the
    energy the driver's next trip will use, known on arrival like the departure; 0 if none is
    known). ``*_bounds[i]:*_bounds[i+1]`` is the slice of the day's i-th step.
    """

    dep_step: np.ndarray
    dep_vehicle: np.ndarray
    dep_trip_kwh: np.ndarray
    dep_km: np.ndarray
    dep_dest: np.ndarray
    dep_travel_steps: np.ndarray
    arr_step: np.ndarray
    arr_vehicle: np.ndarray
    arr_loc: np.ndarray
    arr_site: np.ndarray
    arr_trip_kwh: np.ndarray
    arr_km: np.ndarray
    arr_e_set_kwh: np.ndarray
    arr_p_max_kw: np.ndarray
    arr_depart_est_step: np.ndarray
    arr_next_trip_kwh: np.ndarray
    dep_bounds: np.ndarray
    arr_bounds: np.ndarray

    @staticmethod
    def build(day_start: int, steps_per_day: int, dep: dict | list[dict], arr: dict | list[dict], arr_fill: dict | None = None,
              cast: bool = False) -> DayEvents:
        """The day's events sorted by step (stable: same-step events keep their order).

        ``dep``, ``arr``: field -> array, or a list of such parts (the events in the order of the
        parts, as if concatenated); with ``cast`` each field is cast to its type in ``DEP_KEYS``
        / ``ARR_KEYS`` (a list of no parts needs it). ``arr_fill``: arrival fields whose every
        value is the one given (float64, e.g. NaN for ``e_set_kwh`` of generated trips); they are
        made in sorted order instead of sorted."""
        d, dep_bounds = _sorted(dep, day_start, steps_per_day, DEP_KEYS if cast else None, {})
        a, arr_bounds = _sorted(arr, day_start, steps_per_day, ARR_KEYS if cast else None, arr_fill or {})
        return DayEvents(**{"dep_" + k: x for k, x in d.items()}, **{"arr_" + k: x for k, x in a.items()}, dep_bounds=dep_bounds,
                         arr_bounds=arr_bounds)


def _sorted(parts: dict | list[dict], day_start: int, steps_per_day: int, keys: dict | None, fill: dict) -> tuple[dict, np.ndarray]:
    """The fields of ``parts`` (concatenated) sorted stably by ``step``, and the day's per-step bounds."""
    if isinstance(parts, dict):
        parts = [parts]
    names = list(keys if keys is not None else parts[0])
    if len(parts) == 1:
        step = parts[0]["step"]
    else:
        step = np.concatenate([p["step"] for p in parts]) if parts else np.empty(0, keys["step"])
    if keys is not None:
        step = step.astype(keys["step"], copy=False)
    order, sorted_step, bounds = _sort_day(step, day_start, steps_per_day)
    n = order.size
    out = {"step": sorted_step}
    if len(parts) > 1:
        # each part's values written to their sorted places: the same arrays as concatenating
        # the parts and gathering them in sorted order, without the concatenated copies
        inv = np.empty(n, np.intp)
        inv[order] = np.arange(n)
        ends = np.cumsum([p["step"].size for p in parts])
        at = [inv[e - p["step"].size:e] for p, e in zip(parts, ends, strict=True)]
    for k in names:
        if k == "step":
            continue
        if k in fill:
            out[k] = np.full(n, fill[k])
            continue
        t = keys[k] if keys is not None else np.result_type(*(p[k].dtype for p in parts))
        if len(parts) == 1:
            out[k] = parts[0][k].astype(t, copy=False).take(order)
        elif not parts:
            out[k] = np.empty(0, t)
        else:
            x = np.empty(n, t)
            for p, pos in zip(parts, at, strict=True):
                x[pos] = p[k]
            out[k] = x
    return out, bounds


def _sort_day(step: np.ndarray, day_start: int, steps_per_day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable sort order of a day's event steps, the sorted steps, and the bounds of each of the
    day's steps in them (``bounds[i]:bounds[i+1]``), shape (steps_per_day + 1,)."""
    rel = step - day_start
    if rel.size and rel.min() >= 0 and rel.max() < steps_per_day:
        # every event within the day (as every source makes them): the per-step counts give the
        # sorted steps and the bounds without a gather and a search; numpy's stable sort of small
        # integers is a radix sort, one pass per byte (a day of 15-minute steps fits one)
        counts = np.bincount(rel, minlength=steps_per_day)
        order = np.argsort(rel.astype(np.int8 if steps_per_day <= 127 else np.int16), kind="stable")
        bounds = np.zeros(steps_per_day + 1, np.int64)
        np.cumsum(counts, out=bounds[1:])
        return order, np.repeat(day_start + np.arange(steps_per_day, dtype=step.dtype), counts), bounds
    # steps within a day fit 16 bits, for which numpy's stable sort is a linear radix sort
    order = np.argsort(rel.astype(np.int16), kind="stable")
    s = step[order]
    return order, s, np.searchsorted(s, day_start + np.arange(steps_per_day + 1))


class GeneratedMobility:
    """Trip chains sampled per day from the archetypes, vectorised per population group.

    Day d's plan depends only on (seed, d, group), so any day can be regenerated alone.
    """

    def __init__(self, fleet: Fleet, blocks: list[GroupSpec], day0: pd.Timestamp, step_min: int, seed: int):
        self.fleet = fleet
        self.blocks = [b for b in blocks if b.archetype in PLANNERS]
        self.day0 = day0.normalize()
        self.offset_steps = int((day0 - self.day0) / pd.Timedelta(minutes=step_min))
        self.step_min = step_min
        self.steps_per_day = 1440 // step_min
        self.seed = seed
        self._plans: dict[int, list[tuple[GroupSpec, DayPlan, np.ndarray, np.ndarray]]] = {}

    def _plan(self, d: int):
        """Plans of calendar day d as step indices (relative to the day), ordered and clipped."""
        if d in self._plans:
            return self._plans[d]
        # a workday on China's official calendar: public holidays plan as days off, the weekend
        # days worked in exchange (调休) as workdays
        weekday = bool(is_workday([self.day0 + pd.Timedelta(days=d)])[0])
        spd = self.steps_per_day
        out = []
        for bi, b in enumerate(self.blocks):
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(STREAM_MOBILITY, d, bi)))
            plan = PLANNERS[b.archetype](rng, b.count, weekday, self.fleet.daily_km_scale[b.start : b.start + b.count])
            dep = np.floor(plan.dep_h * 60 / self.step_min).astype(np.int64)
            arr = np.floor(plan.arr_h * 60 / self.step_min).astype(np.int64)
            active = plan.active.copy(order="K")  # the plan's layout (column-major from the archetypes)
            last_arr = np.full(b.count, -1, np.int64)
            for k in range(dep.shape[1]):
                # Departures are applied before arrivals within a step, so a leg may not leave in
                # the step its predecessor arrives; legs pushed past midnight are dropped.
                dep[:, k] = np.maximum(dep[:, k], last_arr + 1)
                arr[:, k] = np.maximum(arr[:, k], dep[:, k])
                active[:, k] &= dep[:, k] <= spd - 1
                arr[:, k] = np.minimum(arr[:, k], spd - 1)
                last_arr = np.where(active[:, k], arr[:, k], last_arr)
            plan.active = active
            out.append((b, plan, dep, arr))
        self._plans = {k: v for k, v in self._plans.items() if k >= d - 1}
        self._plans[d] = out
        return out

    def day(self, d: int) -> DayEvents:
        spd = self.steps_per_day
        base = d * spd - self.offset_steps  # global step of this calendar day's midnight
        today, tomorrow = self._plan(d), self._plan(d + 1)
        deps, arrs = [], []
        for (b, plan, dep, arr), (_, plan2, dep2, _) in zip(today, tomorrow, strict=True):
            k_legs = dep.shape[1]
            # the driver knows the next trip: later today, else tomorrow's first, else (no trip
            # tomorrow) a departure stated in two days and no trip energy
            rows_all = np.arange(b.count)
            any_tomorrow = plan2.active.any(axis=1)
            first2 = plan2.active.argmax(axis=1)
            first_tomorrow = np.where(any_tomorrow, dep2[rows_all, first2] + spd, 2 * spd + dep[:, 0])
            next_dep = np.empty_like(dep)
            next_km = np.empty_like(plan.km)
            next_dep[:, k_legs - 1] = first_tomorrow
            next_km[:, k_legs - 1] = np.where(any_tomorrow, plan2.km[rows_all, first2], 0.0)
            for k in range(k_legs - 2, -1, -1):
                next_dep[:, k] = np.where(plan.active[:, k + 1], dep[:, k + 1], next_dep[:, k + 1])
                next_km[:, k] = np.where(plan.active[:, k + 1], plan.km[:, k + 1], next_km[:, k + 1])
            # the active legs as flat (row-major) indices: one 1-D take per array is cheaper than
            # a 2-D fancy index (rows, cols) per array, and gives the same elements in the same order
            flat = np.flatnonzero(plan.active)
            rows = flat // k_legs
            fpos = (flat - rows * k_legs) * b.count + rows  # the same legs in a column-major (n, K) array

            def legs(a):
                # a's legs of ``flat`` (row-major order) without copying a column-major ``a`` to rows first
                return a.ravel("F").take(fpos) if a.flags.f_contiguous and not a.flags.c_contiguous else a.ravel().take(flat)

            v = b.start + rows
            f = self.fleet
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(STREAM_MOBILITY, d, len(self.blocks) + b.start)))
            noise = np.rint(rng.normal(0.0, 1.0, rows.size) * f.departure_estimate_sd_h[v] * 60 / self.step_min)
            arr_s = legs(arr) + base
            est = np.maximum(legs(next_dep) + base + noise.astype(np.int64), arr_s + 1)
            km = legs(plan.km)
            loc = legs(plan.dest)
            dep_s = legs(dep) + base
            cons = f.consumption_kwh_per_km[v]  # gathered once for the three energies below
            trip_kwh = km * cons  # one array for the departure and the arrival (neither is written to)
            deps.append({"step": dep_s, "vehicle": v, "trip_kwh": trip_kwh, "km": km, "dest": loc, "travel_steps": arr_s - dep_s})
            arrs.append(
                {
                    "step": arr_s,
                    "vehicle": v,
                    "loc": loc,
                    "site": f.site_at[v, loc],
                    "trip_kwh": trip_kwh,
                    "km": km,
                    "depart_est_step": est,
                    "next_trip_kwh": legs(next_km) * cons,
                }
            )
        # generated trips: no replayed energy, no session power limit (made sorted by build)
        fill = {"e_set_kwh": np.nan, "p_max_kw": np.inf}
        return DayEvents.build(base, spd, deps, arrs, fill, cast=True)


DEP_KEYS = {"step": np.int64, "vehicle": np.int64, "trip_kwh": np.float64, "km": np.float64, "dest": np.int8, "travel_steps": np.int64}
ARR_KEYS = {
    "step": np.int64,
    "vehicle": np.int64,
    "loc": np.int8,
    "site": np.int32,
    "trip_kwh": np.float64,
    "km": np.float64,
    "e_set_kwh": np.float64,
    "p_max_kw": np.float64,
    "depart_est_step": np.int64,
    "next_trip_kwh": np.float64,
}


# --------------------------------------------------------------------------- sessions


SESSION_COLUMNS = ("arrival", "departure", "energy_kwh")
OPTIONAL_COLUMNS = ("site_id", "max_power_kw", "vehicle_id")
SESSION_FORMATS = ("csv", "acn_json", "elaad_csv")
MAX_ROW_PROBLEMS = 20
# ElaadNL's open transaction files (platform.elaad.io, "open_transactions"): one row per
# transaction; times in the columns named UTC..., energy in kWh, MaxPower in kW
ELAAD_COLUMNS = ("TransactionId", "ChargePoint", "Connector", "UTCTransactionStart", "UTCTransactionStop", "StartCard",
                 "ConnectedTime", "ChargeTime", "TotalEnergy", "MaxPower")
ELAAD_REQUIRED = ("ChargePoint", "UTCTransactionStart", "UTCTransactionStop", "TotalEnergy")
# ACN-Data (ev.caltech.edu) session documents, as the API returns them ({"_items": [...], "_meta": ...})
# and as its download page saves them: times are RFC 1123 strings in GMT ("Wed, 02 Jan 2019 14:57:25 GMT")
ACN_REQUIRED = ("connectionTime", "disconnectTime", "kWhDelivered")


@dataclass
class SessionTable:
    """A validated session file: one row per session, times as pandas Timestamps."""

    frame: pd.DataFrame
    n_vehicles: int
    vehicle_slot: np.ndarray  # (rows,) index of the session's vehicle among the session vehicles


@dataclass
class _Raw:
    """A session file read into the normalised columns, before the checks.

    ``df`` has the columns arrival, departure (WallClock, parsed by the file's rule), energy_kwh
    and optionally station, site, max_power_kw, vehicle_id (as given); ``field`` names each
    normalised column as the file calls it, and ``label(r)`` names row r the way a user finds it
    in the file ("row 5" of a CSV with its header as row 1, "item 3" of a JSON list).
    """

    df: pd.DataFrame
    arrival: WallClock
    departure: WallClock
    text: tuple[pd.Series, pd.Series]  # arrival and departure as the file writes them
    field: dict[str, str]
    label: Callable[[int], str]


def detect_format(path: Path) -> str:
    """``acn_json`` for a JSON document, ``elaad_csv`` for a CSV whose header has ElaadNL's
    ``UTCTransactionStart``, else ``csv`` (the normalised columns)."""
    with path.open("rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if head[:1] in ("{", "["):
        return "acn_json"
    return "elaad_csv" if "UTCTransactionStart" in head.split("\n", 1)[0] else "csv"


def _read_csv(path: Path, zone: str | None) -> tuple[_Raw | None, list[str]]:
    df = pd.read_csv(path, dtype={"site_id": str, "vehicle_id": str})
    missing = [c for c in SESSION_COLUMNS if c not in df.columns]
    if missing:
        return None, [f"missing column(s) {', '.join(missing)}",
                      f"required: {', '.join(SESSION_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)}"]
    cols = {"energy_kwh": df["energy_kwh"]}
    cols.update({c: df[c] for c in ("site_id", "max_power_kw", "vehicle_id") if c in df.columns})
    out = pd.DataFrame(cols).rename(columns={"site_id": "station"})
    field = {c: c for c in SESSION_COLUMNS + OPTIONAL_COLUMNS} | {"station": "site_id"}
    return _Raw(out, wall_clock(df["arrival"], zone), wall_clock(df["departure"], zone), (df["arrival"], df["departure"]), field,
                lambda r: f"row {r + 2}"), []


def _zoned(text: pd.Series, file_zone: str, zone: str | None) -> WallClock:
    """Times without an offset read as wall-clock times of ``file_zone`` (ISO, or day first
    where they are written d/m/Y as ElaadNL's files are), converted to the scenario's ``zone``;
    times with an offset follow the scenario's rule (:func:`~v2gsim.fields.wall_clock`)."""
    given = wall_clock(text, zone)
    aware = given.utc.notna().to_numpy()
    text = text.astype("string").str.strip()
    local = pd.to_datetime(text.where(~aware), errors="coerce", format="ISO8601")
    for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M"):
        rest = (local.isna() & text.notna()).to_numpy() & ~aware
        if not rest.any():
            break
        local[rest] = pd.to_datetime(text[rest], errors="coerce", format=fmt)
    utc = local.dt.tz_localize(file_zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    wall = utc.dt.tz_convert(zone or "UTC").dt.tz_localize(None)
    return WallClock(given.wall.where(aware, wall.astype("datetime64[ns]")), given.utc.where(aware, utc.astype("datetime64[ns, UTC]")))


def _read_elaad(path: Path, zone: str | None, file_zone: str | None) -> tuple[_Raw | None, list[str]]:
    with path.open(encoding="utf-8-sig") as fh:
        header = fh.readline()
    sep = ";" if header.count(";") > header.count(",") else ","
    # the semicolon files are written by Dutch spreadsheets: decimal comma
    df = pd.read_csv(path, sep=sep, decimal="," if sep == ";" else ".", dtype={"ChargePoint": str, "StartCard": str,
                     "TransactionId": str, "Connector": str}, encoding="utf-8-sig")
    missing = [c for c in ELAAD_REQUIRED if c not in df.columns]
    if missing:
        return None, [f"missing column(s) {', '.join(missing)} of ElaadNL's transaction file",
                      f"ElaadNL's columns: {', '.join(ELAAD_COLUMNS)}"]
    fz = file_zone or "UTC"
    out = pd.DataFrame({"energy_kwh": df["TotalEnergy"], "station": df["ChargePoint"]})
    if "MaxPower" in df.columns:
        out["max_power_kw"] = df["MaxPower"]
    field = {"arrival": "UTCTransactionStart", "departure": "UTCTransactionStop", "energy_kwh": "TotalEnergy",
             "station": "ChargePoint", "max_power_kw": "MaxPower"}
    start, stop = df["UTCTransactionStart"], df["UTCTransactionStop"]
    return _Raw(out, _zoned(start, fz, zone), _zoned(stop, fz, zone), (start, stop), field, lambda r: f"row {r + 2}"), []


def _read_acn(path: Path, zone: str | None) -> tuple[_Raw | None, list[str]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, [f"cannot be read as JSON ({exc})", "give the sessions as ACN-Data's API returns them"]
    items = doc.get("_items") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return None, ["is not an ACN-Data session document: expected {\"_items\": [sessions...]} or a list of sessions",
                      f"each session has {', '.join(ACN_REQUIRED)}, stationID, siteID, ..."]
    if not items:
        return None, ["has no sessions (its _items list is empty)", "give one JSON item per charging session"]
    df = pd.DataFrame(items)
    missing = [c for c in ACN_REQUIRED if c not in df.columns]
    if missing:
        return None, [f"no session has the field(s) {', '.join(missing)}", f"ACN-Data sessions have {', '.join(ACN_REQUIRED)}"]
    out = pd.DataFrame({"energy_kwh": df["kWhDelivered"]})
    for col, src in (("station", "stationID"), ("site", "siteID")):
        out[col] = df[src].astype(object) if src in df.columns else pd.Series(None, index=df.index, dtype=object)
    field = {"arrival": "connectionTime", "departure": "disconnectTime", "energy_kwh": "kWhDelivered", "station": "stationID",
             "site": "siteID"}
    ids = df["sessionID"].astype(str) if "sessionID" in df.columns else None

    def label(r: int) -> str:
        return f"item {r + 1}" + (f" (sessionID {ids.iloc[r]!r})" if ids is not None else "")

    # wall_clock reads the fields as text; a null (still connected) is not a time
    start, stop = df["connectionTime"].astype(object), df["disconnectTime"].astype(object)
    return _Raw(out, wall_clock(start, zone), wall_clock(stop, zone), (start, stop), field, label), []


def read_sessions(path: str | Path, site_ids: list[str], default_site: str | None, yaml_path: str, zone: str | None = None,
                  window: tuple[pd.Timestamp, pd.Timestamp] | None = None, *, fmt: str = "auto",
                  site_map: dict[str, str] | None = None, file_zone: str | None = None) -> tuple[SessionTable | None, list[Problem]]:
    """Read and check a session file; every bad row is named by file, row and field.

    Formats (``fmt``; ``auto`` detects them with :func:`detect_format`):

    - ``csv``: the normalised columns arrival, departure, energy_kwh[, site_id, max_power_kw,
      vehicle_id]; rows numbered as in a spreadsheet (header = row 1).
    - ``acn_json``: ACN-Data sessions as published (``{"_items": [...]}`` or a plain list):
      connectionTime, disconnectTime (RFC 1123, GMT), kWhDelivered, stationID, siteID. The
      delivered energy is the session's energy; items are numbered from 1.
    - ``elaad_csv``: ElaadNL's open transaction file: UTCTransactionStart, UTCTransactionStop,
      TotalEnergy (kWh), ChargePoint, MaxPower (kW, the session's power limit); comma- or
      semicolon-separated (the latter with decimal commas), times ISO or d/m/Y.

    Times follow the scenario's rule (:mod:`v2gsim.fields`): with a UTC offset they are converted
    to ``zone``; without one they are wall-clock times of ``file_zone`` (default: ``zone`` for
    csv, UTC for ElaadNL's columns named UTC...). Each session of a published file is its own
    vehicle. Its site is ``site_map[station id]``, else ``site_map[site id]`` (ACN siteID), else
    the station id itself if it names a scenario site, else ``default_site``; in a csv,
    ``site_map`` renames site_id values. With ``window`` = (first step, end of the clock), a file
    none of whose sessions arrives within it is a problem (sessions partly outside are dropped at
    run time and counted, see :class:`SessionMobility`).
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        return None, [Problem(yaml_path, f"session file {str(path)!r} does not exist", "check the path (relative to the scenario file)")]
    site_map = site_map or {}
    if fmt not in ("auto", *SESSION_FORMATS):
        return None, [Problem(yaml_path, f"unknown session file format {fmt!r}", f"one of auto, {', '.join(SESSION_FORMATS)}")]
    try:
        fmt = detect_format(path) if fmt == "auto" else fmt
        if fmt == "acn_json":
            raw, failure = _read_acn(path, zone)
        elif fmt == "elaad_csv":
            raw, failure = _read_elaad(path, zone, file_zone)
        else:
            raw, failure = _read_csv(path, zone)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, OSError) as exc:
        return None, [Problem(yaml_path, f"{name}: cannot be read as {fmt} ({exc})")]
    if raw is None:
        return None, [Problem(yaml_path, f"{name}: {failure[0]}", failure[1])]
    df = raw.df
    if df.empty:
        return None, [Problem(yaml_path, f"{name}: has a header but no sessions", "give one row per charging session")]
    problems: list[Problem] = []

    def bad(mask: np.ndarray, column: str, what: str, show: pd.Series | None = None):
        rows = np.flatnonzero(mask)
        values = show if show is not None else df[column]
        for r in rows[:MAX_ROW_PROBLEMS]:
            problems.append(Problem(yaml_path, f"{name} {raw.label(r)}, {_kind(fmt)} {raw.field[column]}: {what}; got {values.iloc[r]!r}"))
        if rows.size > MAX_ROW_PROBLEMS:
            problems.append(Problem(yaml_path, f"{name}: {rows.size - MAX_ROW_PROBLEMS} more rows with the same problem in "
                                               f"{_kind(fmt)} {raw.field[column]}"))

    arrival, departure = raw.arrival, raw.departure
    originals = raw.text
    energy = pd.to_numeric(df["energy_kwh"], errors="coerce")
    bad(arrival.bad, "arrival", "not a date-time like 2026-07-06 08:15", originals[0])
    bad(departure.bad, "departure", "not a date-time like 2026-07-06 17:30", originals[1])
    bad(energy.isna().to_numpy(), "energy_kwh", "not a number")
    bad((energy < 0).to_numpy(), "energy_kwh", "negative energy (kWh must be >= 0)")
    both = ~arrival.bad & ~departure.bad
    bad(both & ~departure.after(arrival), "departure", "not after the arrival (times out of order)", originals[1])
    p_max = pd.Series(np.inf, index=df.index)
    if "max_power_kw" in df.columns:
        given = df["max_power_kw"].notna()  # an empty cell means no limit
        p_max = pd.to_numeric(df["max_power_kw"], errors="coerce")
        bad((given & (p_max.isna() | (p_max <= 0))).to_numpy(), "max_power_kw", "must be a number > 0 (or empty)")
        p_max = p_max.fillna(np.inf)
    if "station" in df.columns:
        site = _sites(df, fmt, site_map, site_ids).fillna(default_site if default_site else "")
        hint = "" if fmt == "csv" else "; map the file's ids with mobility_sessions.site_map or set mobility_sessions.default_site"
        bad(~site.isin(site_ids).to_numpy(), "station", f"not a site of the scenario (sites: {', '.join(site_ids) or 'none'}{hint})")
    elif default_site is None:
        problems.append(Problem(yaml_path, f"{name}: no site_id column and no default_site", "add a site_id column or set mobility_sessions.default_site"))
        site = pd.Series("", index=df.index)
    else:
        site = pd.Series(default_site, index=df.index)
    if "vehicle_id" in df.columns:
        vid = df["vehicle_id"].fillna("").astype(str)
        codes, uniques = pd.factorize(vid)
        n_vehicles = len(uniques)
        order = np.lexsort((arrival.wall.to_numpy(), codes))
        same = codes[order][1:] == codes[order][:-1]
        overlap = same & departure.take(order[:-1]).after(arrival.take(order[1:]))
        bad(np.isin(np.arange(len(df)), order[1:][overlap]), "arrival",
            "this vehicle is still plugged in from its previous session (sessions overlap)", originals[0])
    else:
        codes = np.arange(len(df))
        n_vehicles = len(df)
    if window is not None and not problems:
        first, end = window
        inside = ((arrival.wall >= first) & (arrival.wall < end)).to_numpy()
        if not inside.any():
            problems.append(Problem(
                yaml_path, f"{name}, {_kind(fmt)} {raw.field['arrival']}: none of its {len(df)} sessions arrives within the run "
                           f"({first} to {end}, local time); they arrive from {arrival.wall.min()} to {arrival.wall.max()}",
                "check time.start, time.horizon_days and time.warmup_days, and the file's dates and time zone"))
    if problems:
        return None, problems
    frame = pd.DataFrame({"arrival": arrival.wall.to_numpy(), "departure": departure.wall.to_numpy(),
                          "energy_kwh": energy.to_numpy(float), "site_id": site.to_numpy(), "max_power_kw": p_max.to_numpy(float)})
    return SessionTable(frame, n_vehicles, np.asarray(codes, np.int64)), []


def read_sessions_config(ms, site_ids: list[str], zone: str | None,
                         window: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> tuple[SessionTable | None, list[Problem]]:
    """:func:`read_sessions` for a scenario's ``mobility_sessions`` section (a SessionsConfig or,
    at validation, its raw dict; a section whose own fields are invalid is left to pydantic)."""
    get = ms.get if isinstance(ms, dict) else lambda k, d=None: getattr(ms, k, d)
    key = "file" if get("file") is not None else "csv"
    path, fmt, site_map, file_zone = get(key), get("format", "auto"), get("site_map") or {}, get("file_timezone")
    if not isinstance(path, str) or fmt not in ("auto", *SESSION_FORMATS) or not isinstance(site_map, dict):
        return None, []
    return read_sessions(path, site_ids, get("default_site"), f"mobility_sessions.{key}", zone, window, fmt=fmt,
                         site_map={str(k): str(v) for k, v in site_map.items()},
                         file_zone=file_zone if isinstance(file_zone, str) else None)


def _kind(fmt: str) -> str:
    return "field" if fmt == "acn_json" else "column"


def _sites(df: pd.DataFrame, fmt: str, site_map: dict[str, str], site_ids: list[str]) -> pd.Series:
    """Scenario site of each session (NaN where none is found; the caller fills the default)."""
    station = df["station"].astype("object") if "station" in df.columns else pd.Series(np.nan, index=df.index, dtype=object)
    if fmt == "csv":
        return station.map(lambda s: site_map.get(s, s) if isinstance(s, str) else s)
    by_site = df["site"].astype("object").map(site_map) if "site" in df.columns else pd.Series(None, index=df.index, dtype=object)
    itself = station.where(station.isin(site_ids))
    found = station.map(site_map)
    for fallback in (by_site, itself):
        found = found.where(found.notna(), fallback)
    return found


class SessionMobility:
    """Replays imported sessions: each arrives with just enough room for its requested energy.

    Input the clock cannot replay is counted in ``stats`` (KPIs of the run):
    ``sessions_dropped_outside_horizon`` (arriving before the clock's first step, warm-up
    included, or after its end), ``sessions_energy_capped`` and ``session_energy_capped_kwh``
    (sessions asking more than the vehicle's battery takes, grid side: the car arrives empty and
    the request is cut to a full charge).
    """

    def __init__(self, table: SessionTable, fleet: Fleet, first_vehicle: int, start: pd.Timestamp, step_min: int, n_steps: int, site_index: dict[str, int]):
        fr = table.frame
        step = pd.Timedelta(minutes=step_min)
        a = np.floor((fr["arrival"] - start) / step).to_numpy().astype(np.int64)
        dsteps = np.floor((fr["departure"] - start) / step).to_numpy().astype(np.int64)
        dsteps = np.maximum(dsteps, a + 1)
        keep = (a >= 0) & (a < n_steps)
        v = first_vehicle + table.vehicle_slot[keep]
        e_req = fr["energy_kwh"].to_numpy()[keep]
        # sessions carry grid-side energy; the car arrives with room for it in its battery
        e_set = np.maximum(0.0, fleet.e_stop_kwh[v] - e_req * fleet.eta_charge[v])
        capped_kwh = np.maximum(0.0, e_req - fleet.e_stop_kwh[v] / fleet.eta_charge[v])
        self.stats = {
            "sessions_dropped_outside_horizon": float((~keep).sum()),
            "sessions_energy_capped": float((capped_kwh > 1e-9).sum()),
            "session_energy_capped_kwh": float(capped_kwh.sum()),
        }
        self.steps_per_day = 1440 // step_min
        self.offset_steps = int((start - start.normalize()) / step)
        self.dep = {"step": dsteps[keep], "vehicle": v, "trip_kwh": np.zeros(v.size), "km": np.zeros(v.size),
                    "dest": np.full(v.size, PUBLIC, np.int8), "travel_steps": np.zeros(v.size, np.int64)}  # sessions carry no trips
        self.arr = {
            "step": a[keep],
            "vehicle": v,
            "loc": np.full(v.size, PUBLIC, np.int8),
            "site": fr["site_id"].map(site_index).to_numpy()[keep].astype(np.int32),
            "trip_kwh": np.zeros(v.size),
            "km": np.zeros(v.size),
            "e_set_kwh": e_set,
            "p_max_kw": fr["max_power_kw"].to_numpy()[keep],
            "depart_est_step": dsteps[keep],
            "next_trip_kwh": np.zeros(v.size),  # sessions carry no trips
        }

    def day(self, d: int) -> DayEvents:
        spd = self.steps_per_day
        base = d * spd - self.offset_steps
        dm = (self.dep["step"] >= base) & (self.dep["step"] < base + spd)
        am = (self.arr["step"] >= base) & (self.arr["step"] < base + spd)
        return DayEvents.build(base, spd, {k: x[dm] for k, x in self.dep.items()}, {k: x[am] for k, x in self.arr.items()})


def merge_days(a: DayEvents, b: DayEvents, day_start: int, steps_per_day: int) -> DayEvents:
    """Combine two sources' events of the same day."""
    dep = {k: np.concatenate([getattr(a, "dep_" + k), getattr(b, "dep_" + k)]) for k in DEP_KEYS if k != "step"}
    dep["step"] = np.concatenate([a.dep_step, b.dep_step])
    arr = {k: np.concatenate([getattr(a, "arr_" + k), getattr(b, "arr_" + k)]) for k in ARR_KEYS if k != "step"}
    arr["step"] = np.concatenate([a.arr_step, b.arr_step])
    return DayEvents.build(day_start, steps_per_day, dep, arr)
