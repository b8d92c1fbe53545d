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
from v2gsim.market.driver_money import add_driver_money
from v2gsim.market.settlement import empty_table as _empty_ledger
from v2gsim.metrics import base_net_kw, compute_kpis, swap_kpis, swap_pack_wear_kpis, wear_kpis
from v2gsim.operators import add_operator_results
from v2gsim.recorder import SOC_BINS, Recording
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
    per driver at a swap station) with battery swapping; with business models, ``site_service`` and
    ``operator_service`` (site ownership, sessions, unmet energy and drivers served, as the engine
    recorded them) and the per-operator accounting of :mod:`v2gsim.operators`: ``operators`` (one
    row per business model) and ``operator_requests`` (each grid request window, asked vs
    delivered)"""
    ledger: pd.DataFrame = field(default_factory=_empty_ledger)
    """every money transfer (:mod:`v2gsim.market.settlement`): step, time, payer, payee, reason,
    energy_kwh, amount_cny; aggregated per step and (payer, payee, reason)"""

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
        """The results of a model's run so far (finishing it): ``from_recording(*model.recording())``."""
        return cls.from_recording(*model.recording())

    @classmethod
    def from_recording(cls, recording: Recording, metadata: dict) -> Results:
        """Build the tables and KPIs from what a run recorded (:class:`~v2gsim.recorder.Recording`)
        and its ``metadata`` (scenario as resolved, its hash, seed, version, wall time, n_steps,
        n_vehicles, transformer_kva). Never sees the model; changes neither argument."""
        rec = recording
        times = rec.times
        meta = dict(metadata)
        feeder = meta["scenario"]["feeder"]
        system = pd.DataFrame({c: a.copy() for c, a in rec.system.items()}, index=pd.Index(times, name="time"))
        system.insert(1, "base_net_kw", base_net_kw(system))
        extra = dict(rec.tables)
        site_ids = list(rec.site_ids)
        sites = pd.DataFrame(
            {
                "time": np.repeat(times.values, len(site_ids)),
                "site_id": pd.Categorical(np.tile(site_ids, len(times)), categories=site_ids),
                "p_kw": rec.site_p_kw.ravel(),
            }
        )
        vehicles = pd.DataFrame(rec.vehicles)
        s = rec.sessions
        if s:
            clock = rec.clock.values
            step_time = lambda k: pd.DatetimeIndex(np.where(k >= 0, clock[np.clip(k, 0, len(clock) - 1)], np.datetime64("NaT")))  # noqa: E731
            stated = s["stated_departure_step"]
            sessions = pd.DataFrame(
                {
                    "vehicle": s["vehicle"],
                    "site_id": pd.Categorical.from_codes(s["site"], categories=site_ids),
                    "arrival": step_time(s["arrival_step"]),
                    "departure": step_time(s["departure_step"]),
                    "stated_departure": rec.clock[0] + pd.to_timedelta(stated * rec.dt_h, unit="h"),
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
        departure_soc = pd.DataFrame({"soc_lo": SOC_BINS[:-1], "soc_hi": SOC_BINS[1:], "departures": rec.departure_soc_counts.copy()})
        bus_voltages = None
        if rec.bus_vm_pu is not None:
            labels = rec.bus_labels
            bus_voltages = pd.DataFrame(
                {
                    "time": np.repeat(times.values, labels.size),
                    "bus": np.tile(labels, len(times)),
                    "vm_pu": rec.bus_vm_pu.ravel(),
                }
            )
        kpis = compute_kpis(system, vehicles, rec.dt_h, meta["transformer_kva"], v_band_pu=(feeder["v_min_pu"], feeder["v_max_pu"]),
                            loading_limit_pct=feeder["loading_limit_pct"])
        kpis.update(rec.kpis)  # session counts, each strategy's counters (<operator>_<name>), wear counters
        if "wear" in extra:  # battery ageing: per-vehicle and retired-pack tables
            kpis.update(wear_kpis(extra["wear"], extra["wear_packs"]))
        if "swap_pack_wear" in extra:
            kpis.update(swap_pack_wear_kpis(extra["swap_pack_wear"]))
        if "stations" in extra:
            kpis.update(swap_kpis(extra["stations"], extra["swaps"], rec.dt_h))
        # wall-clock figures (e.g. centralized_solve_time_s) differ between two runs of one seed:
        # they describe the run, not its results, so they go to the metadata
        meta["timings"] = {k: kpis.pop(k) for k in [k for k in kpis if k.endswith("_time_s")]}
        ledger = rec.ledger.copy() if rec.ledger is not None else _empty_ledger()
        res = cls(system, sites, vehicles, sessions, traces, departure_soc, kpis, meta, bus_voltages, extra, ledger)
        # tariff bills (two-part charges) and the pilot notice's tests: pure functions of the results
        res.kpis.update(two_part_kpis(res))
        res.kpis.update(compliance_kpis(res))
        add_operator_results(res)  # per-operator table, its requests and KPIs <operator_id>_*
        add_driver_money(res)  # per-driver money (drivers_money), KPIs with contracts
        meta["extra_tables"] = list(extra)
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
        self.ledger.to_parquet(folder / "ledger.parquet", index=False)
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
        lg = directory / "ledger.parquet"  # results saved before the ledger have none
        return cls(**tables, kpis=kpis, metadata=meta, bus_voltages=pd.read_parquet(bv) if bv.is_file() else None, extra=extra,
                   ledger=pd.read_parquet(lg) if lg.is_file() else _empty_ledger())
