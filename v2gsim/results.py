"""Results: tidy tables with units in their column names, saved atomically as Parquet."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata as _md
from pathlib import Path

import numpy as np
import pandas as pd

from v2gsim.market.bills import two_part_kpis
from v2gsim.market.compliance import compliance_kpis
from v2gsim.metrics import base_net_kw, compute_kpis, swap_kpis, swap_pack_wear_kpis, wear_kpis
from v2gsim.population.fleet import ARCHETYPES
from v2gsim.recorder import SOC_BINS
from v2gsim.result_folder import write_result_folder

TABLES = ("system", "sites", "vehicles", "sessions", "traces", "departure_soc")


def package_version() -> str:
    try:
        return _md.version("v2gsim")
    except _md.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def scenario_hash(scenario_json: dict) -> str:
    """SHA-256 of the resolved scenario in canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(scenario_json, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Results:
    """Everything a finished run produced.

    Attributes:
        system: one row per step (index ``time``): base_load_kw (the load without EVs),
            base_net_kw (base load − PV: the base KPIs compare with), ev_charge_kw,
            v2g_discharge_kw, net_load_kw, transformer_loading_pct, price_cny_per_kwh, ...
        sites: long table time, site_id, p_kw.
        vehicles: one row per vehicle: energies (kWh), distance, unmet energy, money (CNY).
        sessions: sessions of the sampled vehicles (``outputs.session_sample``).
        traces: long table time, vehicle, soc for ``outputs.trace_sample`` vehicles.
        departure_soc: histogram of state of charge at every departure.
        kpis: flat name -> number.
        metadata: scenario as resolved, its hash, seed, package version, wall time and the
            strategies' wall-clock figures (``timings``, e.g. ``centralized_solve_time_s``).
    """

    system: pd.DataFrame
    sites: pd.DataFrame
    vehicles: pd.DataFrame
    sessions: pd.DataFrame
    traces: pd.DataFrame
    departure_soc: pd.DataFrame
    kpis: dict[str, float]
    metadata: dict = field(default_factory=dict)
    bus_voltages: pd.DataFrame | None = None
    """long table time, bus, vm_pu (``outputs.bus_voltages`` with a feeder.network), else None"""
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    """tables of business models with agents of their own: ``stations`` (long: time, station_id,
    p_kw, charge_kw, discharge_kw, packs_ready, queue, swaps, left, ...) and ``swaps`` (one row
    per driver at a swap station) with battery swapping"""

    @property
    def dt_h(self) -> float:
        return self.metadata["scenario"]["time"]["step_min"] / 60.0

    @property
    def transformer_kva(self) -> float:
        kva = self.metadata.get("transformer_kva")  # the network's rating when it has one
        return float(kva if kva is not None else self.metadata["scenario"]["feeder"]["transformer_kva"])

    # ------------------------------------------------------------------ building

    @classmethod
    def from_model(cls, model) -> Results:
        f = model.fleet
        times = model.times
        rec = model.recorder
        model.finish()  # sessions still open at the horizon are counted (once)
        system = pd.DataFrame(rec.cols, index=pd.Index(times, name="time"))
        system.insert(1, "base_net_kw", base_net_kw(system))
        extra: dict[str, pd.DataFrame] = {}
        for h in getattr(model, "hooks", ()):  # swap stations: system columns and their own tables
            for c, a in h.system_columns().items():
                system[c] = system[c] + a if c in system else a
            for name, t in h.tables(times, model.clock).items():
                extra[name] = pd.concat([extra[name], t], ignore_index=True) if name in extra else t
        site_ids = [s.id for s in model.config.sites]
        sites = pd.DataFrame(
            {
                "time": np.repeat(times.values, len(site_ids)),
                "site_id": pd.Categorical(np.tile(site_ids, len(times)), categories=site_ids),
                "p_kw": rec.site_p_kw.ravel(),
            }
        )
        group_names = [b.group.archetype + f"#{i}" if b.group else "sessions" for i, b in enumerate(model.blocks)]
        vehicles = pd.DataFrame(
            {
                "vehicle": np.arange(f.n),
                "group": pd.Categorical.from_codes(f.group, categories=group_names),
                "archetype": pd.Categorical.from_codes(f.archetype, categories=list(ARCHETYPES)),
                "vehicle_model": pd.Categorical.from_codes(f.vehicle_model, categories=model.vehicle_models),
                "capacity_kwh": f.capacity_kwh,
                "e_charged_kwh": f.e_charged_kwh,
                "e_discharged_kwh": f.e_discharged_kwh,
                "e_loss_kwh": f.e_loss_kwh,
                "e_driven_kwh": f.e_driven_kwh,
                "distance_km": f.distance_km,
                "unmet_kwh": f.unmet_kwh,
                "stranded_trips": f.stranded_trips,
                "stranded_kwh": f.stranded_kwh,
                "sessions": f.n_sessions,
                "departures": f.n_departures,
                "departures_below_min": f.departures_below_min,
                "no_charger_events": f.no_charger_events,
                "sessions_turned_away": f.sessions_turned_away,
                "unmet_turned_away_kwh": f.unmet_turned_away_kwh,
                "plugged_at_end": f.plugged.copy(),
                "pending_kwh": np.where(f.plugged, np.maximum(0.0, f.session_e_request_kwh - f.session_grid_kwh), 0.0),
                "cost_cny": f.cost_cny,
                "revenue_cny": f.revenue_cny,
                "soc_final": f.e_kwh / f.capacity_kwh,
            }
        )
        s = rec.sessions()
        if s:
            clock = model.clock.values
            step_time = lambda k: pd.DatetimeIndex(np.where(k >= 0, clock[np.clip(k, 0, len(clock) - 1)], np.datetime64("NaT")))  # noqa: E731
            stated = s["stated_departure_step"]
            sessions = pd.DataFrame(
                {
                    "vehicle": s["vehicle"],
                    "site_id": pd.Categorical.from_codes(s["site"], categories=site_ids),
                    "arrival": step_time(s["arrival_step"]),
                    "departure": step_time(s["departure_step"]),
                    "stated_departure": model.clock[0] + pd.to_timedelta(stated * model.dt_h, unit="h"),
                    "soc_arrival": s["e_arrival_kwh"] / s["capacity_kwh"],
                    "soc_departure": s["e_departure_kwh"] / s["capacity_kwh"],
                    "e_request_kwh": s["e_request_kwh"],
                    "e_delivered_kwh": s["e_delivered_kwh"],
                    "unmet_kwh": s["unmet_kwh"],
                }
            ).sort_values(["arrival", "vehicle"], kind="stable", ignore_index=True)
        else:
            sessions = pd.DataFrame(columns=["vehicle", "site_id", "arrival", "departure", "stated_departure", "soc_arrival", "soc_departure", "e_request_kwh", "e_delivered_kwh", "unmet_kwh"])
        ti = rec.trace_idx
        traces = pd.DataFrame(
            {
                "time": np.repeat(times.values, ti.size),
                "vehicle": np.tile(ti, len(times)),
                "soc": rec.traces_soc.ravel(),
            }
        )
        departure_soc = pd.DataFrame({"soc_lo": SOC_BINS[:-1], "soc_hi": SOC_BINS[1:], "departures": rec.departure_soc_counts})
        sc = model.config
        scenario_json = sc.model_dump(mode="json")
        scenario_json["seed"] = model.seed_value
        meta = {
            "scenario": scenario_json,
            "scenario_hash": scenario_hash(scenario_json),
            "seed": model.seed_value,
            "version": package_version(),
            "wall_time_s": model.wall_time_s,
            "n_steps": model.n_steps,
            "n_vehicles": f.n,
        }
        kva = model.feeder.transformer_kva
        meta["transformer_kva"] = kva
        bus_voltages = None
        if getattr(rec, "bus_vm_pu", None) is not None:
            labels = model.feeder.net.bus.index.to_numpy()
            bus_voltages = pd.DataFrame(
                {
                    "time": np.repeat(times.values, labels.size),
                    "bus": np.tile(labels, len(times)),
                    "vm_pu": rec.bus_vm_pu.ravel(),
                }
            )
        kpis = compute_kpis(system, vehicles, model.dt_h, kva, v_band_pu=(sc.feeder.v_min_pu, sc.feeder.v_max_pu),
                            loading_limit_pct=sc.feeder.loading_limit_pct)
        kpis.update(model.session_stats)
        kinds = [agg.kind for agg in model.aggregators]
        for k, agg in enumerate(model.aggregators):  # each strategy's own counters, as <kind>_<name>
            prefix = agg.kind if kinds.count(agg.kind) == 1 else f"{agg.kind}{k}"
            kpis.update({f"{prefix}_{name}": float(v) for name, v in agg.strategy.kpis().items()})
        if getattr(model, "wear", None) is not None:  # battery ageing: per-vehicle and retired-pack tables
            model.wear.finish(model.step_index)
            extra["wear"], extra["wear_packs"] = model.wear.vehicle_table(), model.wear.pack_table()
            kpis.update(wear_kpis(extra["wear"], extra["wear_packs"]))
            kpis.update(model.wear.kpis())
            for c, a in model.wear.system_columns().items():  # second-life storage on the feeder (in net_load_kw)
                system[c] = a
            sp = model.wear.swap_pack_table()
            if sp is not None:
                extra["swap_pack_wear"] = sp
                kpis.update(swap_pack_wear_kpis(sp))
        if "stations" in extra:
            kpis.update(swap_kpis(extra["stations"], extra["swaps"], model.dt_h))
        meta["extra_tables"] = list(extra)
        # wall-clock figures (e.g. centralized_solve_time_s) differ between two runs of one seed:
        # they describe the run, not its results, so they go to the metadata
        meta["timings"] = {k: kpis.pop(k) for k in [k for k in kpis if k.endswith("_time_s")]}
        res = cls(system, sites, vehicles, sessions, traces, departure_soc, kpis, meta, bus_voltages, extra)
        # tariff bills (two-part charges) and the pilot notice's tests: pure functions of the results
        res.kpis.update(two_part_kpis(res))
        res.kpis.update(compliance_kpis(res))
        return res

    # ------------------------------------------------------------------ files

    def save(self, directory: str | Path, *, plots: bool = True, overwrite: bool = False) -> Path:
        """Write Parquet tables, kpis.json, metadata.json (and PNG plots) into ``directory``.

        The folder may be new, empty, or, with ``overwrite``, hold a previous v2gsim result and
        nothing else; v2gsim never deletes files it did not write. The result appears
        atomically: a crash never leaves half of it (see :mod:`v2gsim.result_folder`).
        ``metadata.json`` lists the files written (``files``).

        Raises:
            v2gsim.errors.OutputError: the folder holds other files, is a file, holds a previous
                result and ``overwrite`` is False, or cannot be written.
        """
        return write_result_folder(directory, lambda folder: self._write_files(folder, plots), overwrite=overwrite)

    def _write_files(self, folder: Path, plots: bool) -> None:
        for name in TABLES:
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=(name == "system"))
        if self.bus_voltages is not None:
            self.bus_voltages.to_parquet(folder / "bus_voltages.parquet", index=False)
        for name, t in self.extra.items():
            t.to_parquet(folder / f"{name}.parquet", index=False)
        (folder / "kpis.json").write_text(json.dumps(self.kpis, indent=2, allow_nan=True))
        if plots:
            from v2gsim.plotting import save_standard_plots

            save_standard_plots(self, folder)
        files = sorted([*os.listdir(folder), "metadata.json"])
        (folder / "metadata.json").write_text(json.dumps({**self.metadata, "files": files}, indent=2, default=str))

    @classmethod
    def load(cls, directory: str | Path) -> Results:
        directory = Path(directory)
        if not (directory / "metadata.json").is_file():
            raise FileNotFoundError(f"{directory} holds no v2gsim results (no metadata.json)")
        tables = {name: pd.read_parquet(directory / f"{name}.parquet") for name in TABLES}
        kpis = json.loads((directory / "kpis.json").read_text())
        meta = json.loads((directory / "metadata.json").read_text())
        bv = directory / "bus_voltages.parquet"
        extra = {name: pd.read_parquet(directory / f"{name}.parquet") for name in meta.get("extra_tables", [])}
        return cls(**tables, kpis=kpis, metadata=meta, bus_voltages=pd.read_parquet(bv) if bv.is_file() else None, extra=extra)
