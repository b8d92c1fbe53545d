"""The ``v2gsim`` command: run | validate | schema | scenarios | compare | sweep | report | viz.

Logging is configured here and only here. Scenario problems and an output folder v2gsim refuses
to write into exit with status 2 and a plain message, never a traceback; other failures exit
with 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import types
import typing
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_SCENARIO = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="v2gsim", description="Agent-based simulation of EVs, V2G and the distribution grid.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a scenario and write its tables, KPIs and plots")
    r.add_argument("file", help="scenario YAML file, or the name of a bundled scenario")
    r.add_argument("-o", "--out", required=True, help="output folder: new, empty, or (with --overwrite) a previous result; written atomically")
    r.add_argument("--overwrite", action="store_true", help="replace a previous v2gsim result in the output folder (never other files)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help="override a field, e.g. --set population.0.count=500 (repeatable)")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    r.add_argument("--report", action="store_true", help="also write the HTML report (report.html) into the output folder")
    _plugins_flag(r)

    v = sub.add_parser("validate", help="check a scenario file and report every problem")
    v.add_argument("file")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    _plugins_flag(v)

    s = sub.add_parser("schema", help="print the scenario field reference (units, ranges, defaults)")
    s.add_argument("--format", choices=("text", "markdown"), default="text")
    s.add_argument("--plugins", nargs="+", default=[], metavar="MODULE",
                   help="import these plugin modules (my_model.py or a module name) first: their business models, "
                   "wear models and network sources are listed too")

    sub.add_parser("scenarios", help="list the bundled scenario files")

    c = sub.add_parser("compare", help="KPIs side by side and overlaid load curves of runs or scenarios")
    c.add_argument("items", nargs="+", metavar="DIR_OR_SCENARIO", help="result folders (v2gsim run -o DIR) or scenarios to run")
    c.add_argument("-o", "--out", help="write the KPI table (CSV) and the overlaid plot (PNG) into this folder")
    c.add_argument("--kpis", help="comma-separated KPI names to show (default: all)")
    c.add_argument("--report", metavar="FILE", help="write a self-contained HTML page comparing the runs side by side")
    c.add_argument("--overwrite", action="store_true", help="replace kpis.csv and load_curves.png in the -o folder and the --report file")

    h = sub.add_parser("report", help="write the self-contained HTML report of a result folder")
    h.add_argument("dir", metavar="DIR", help="result folder (v2gsim run -o DIR)")
    h.add_argument("-o", "--out", metavar="FILE", help="where to write the page (default DIR/report.html, listed with the result)")
    h.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _plugins_flag(c)

    z = sub.add_parser("viz", help="start the live app in the browser: step a scenario and watch its load, SOC, stations and voltages")
    z.add_argument("file", nargs="?", help="scenario YAML file or bundled name to start with (default: mixed_city)")
    z.add_argument("--port", type=int, help="port to listen on (default 8765; 0: any free port)")
    z.add_argument("--host", default="localhost", help="host to listen on (default localhost; 0.0.0.0 for every interface)")
    z.add_argument("--no-browser", action="store_true", help="do not open a browser tab")

    w = sub.add_parser("sweep", help="run a parameter sweep (local processes or Dask)")
    w.add_argument("file", help="sweep YAML file")
    w.add_argument("-o", "--out", required=True, help="output folder (a sweep resumes where it stopped)")
    w.add_argument("--workers", type=int, help="embedded Dask LocalCluster with N workers")
    w.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    w.add_argument("--keep-results", action="store_true", help="also keep every run's result folder")
    w.add_argument("--max-runs", type=int, metavar="N", help="refuse sweeps with more runs than N (default 100000)")
    w.add_argument("--extend", action="store_true", help="add this sweep's runs to a folder holding a different sweep")
    w.add_argument("--no-progress", action="store_true")
    _plugins_flag(w)
    return p


def _plugins_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugins", action="store_true",
                   help="allow scenarios to import the modules their plugins: key names (this runs their code)")


def trips_line(k: dict) -> str:
    """The drivers' side of a run in one line: the issue-15 measure of service, unserved trips
    (cancelled + stranded) as a share of departures, and what drivers did to avoid them."""
    trips = k["departures"]
    unserved = k["trips_cancelled"] + k["stranded_trips"]
    share = f"{100 * unserved / trips:.3f} %" if trips else "n/a"
    return (f"trips {trips:,.0f}: unserved {share} (cancelled {k['trips_cancelled']:,.0f}, stranded {k['stranded_trips']:,.0f}), "
            f"shortened {k['trips_shortened']:,.0f}, delayed {k['delayed_departures']:,.0f}, detours {k['detours']:,.0f}, "
            f"queued at public {k['queued_at_public']:,.0f} ({k['queue_left']:,.0f} left)")


def operator_lines(results) -> list[str]:
    """One short line per operator (business model) of a run: energy, share of the feeder's
    peak, V2G in its requests, money (CNY)."""
    import math

    table = results.extra.get("operators")
    if table is None:
        return []
    out = []
    for _, r in table.iterrows():
        v2g = (f", V2G {r['energy_fed_back_kwh']:,.0f} kWh ({r['v2g_delivered_in_requests_kwh']:,.0f} in {int(r['v2g_requests'])} request(s))"
               if r["energy_fed_back_kwh"] > 0 or r["v2g_requests"] > 0 else "")
        share = f"{r['feeder_peak_share_pct']:.0f} % of the feeder peak" if math.isfinite(r["feeder_peak_share_pct"]) else "no feeder peak"
        out.append(f"{r['operator_id']}: drew {r['energy_drawn_kwh']:,.0f} kWh{v2g}, {share}, "
                   f"net {round(r['net_cny']):,} CNY (paid {r['cost_cny']:,.0f}, paid to it {r['revenue_cny']:,.0f})")
    return out


def _steps(tc) -> str:
    """Steps simulated (what the progress bar counts) and how many of them were recorded."""
    n, days = tc.n_steps, tc.warmup_days
    if not days:
        return f"{n} steps"
    return f"{n + days * tc.steps_per_day} steps ({n} recorded after {days} warm-up day{'s' if days != 1 else ''})"


def _cmd_run(args) -> int:
    import math

    import v2gsim
    from v2gsim.result_folder import check_result_folder
    from v2gsim.runner import run_scenario

    scenario = v2gsim.load_scenario(args.file, args.overrides)
    if args.seed is not None and args.seed < 0:
        print("v2gsim: --seed must be >= 0", file=sys.stderr)
        return EXIT_SCENARIO
    check_result_folder(args.out, overwrite=args.overwrite)  # before the run, not after it
    results = run_scenario(scenario, seed=args.seed, progress=not args.no_progress)
    out = results.save(args.out, plots=scenario.outputs.plots and not args.no_plots, overwrite=args.overwrite)
    k = results.kpis
    print(f"{scenario.name}: {int(k['n_vehicles'])} vehicles, {_steps(scenario.time)} "
          f"in {results.metadata['wall_time_s']:.1f} s")
    # signed percentages in words, so that a negative one never reads "reduced by -5 %" or "+-3 %"
    cut, rise = k.get("peak_reduction_pct", 0.0), k["peak_increase_pct"]
    if cut != 0 and math.isfinite(cut):
        print(f"  peak {'reduced' if cut > 0 else 'raised'} by {abs(cut):.1f} % against its reference ({k['reference_peak_kw']:.1f} kW, {results.metadata['reference']})")
    over_base = f" ({abs(rise):.1f} % {'above' if rise >= 0 else 'below'} the peak before EVs)" if math.isfinite(rise) else ""
    print(f"  peak {k['peak_load_kw']:.1f} kW{over_base}, max transformer loading {k['max_transformer_loading_pct']:.1f} %, overload {k['transformer_overload_h']:.2f} h")
    print(f"  charged {k['energy_charged_kwh']:.0f} kWh, unmet {k['unmet_energy_kwh']:.1f} kWh, stranded trips {int(k['stranded_trips'])}")
    print("  " + trips_line(k))
    for line in operator_lines(results):
        print("  " + line)
    warnings = [text for n, text in (
        (k["sessions_dropped_outside_horizon"], f"{k['sessions_dropped_outside_horizon']:.0f} session(s) dropped: they arrive outside the run"),
        (k["sessions_energy_capped"], f"{k['sessions_energy_capped']:.0f} session(s) asked more than the battery takes ({k['session_energy_capped_kwh']:.1f} kWh cut)"),
        (k["sessions_turned_away"], f"{k['sessions_turned_away']:.0f} session(s) turned away, no free charger ({k['unmet_energy_turned_away_kwh']:.1f} kWh unmet)"),
    ) if n]
    if warnings:
        print("  warning: " + "; ".join(warnings))
    if "voltage_violation_h" in k:
        print(f"  voltage {k['min_voltage_pu']:.3f}-{k['max_voltage_pu']:.3f} pu, outside band {k['voltage_violation_h']:.2f} h, "
              f"max line loading {k['max_line_loading_pct']:.1f} %, line overload {k['line_overload_h']:.2f} h, "
              f"losses {k['losses_kwh']:.0f} kWh, non-converged steps {int(k['nonconverged_steps'])}, "
              f"unsolved buses (max per step) {int(k['max_unsolved_buses'])}")
    print(f"tables:   {out}/*.parquet")
    print(f"KPIs:     {out / 'kpis.json'}")
    print(f"metadata: {out / 'metadata.json'}")
    pngs = sorted(out.glob("*.png"))
    if pngs:
        print("plots:    " + ", ".join(str(p) for p in pngs))
    if args.report:
        from v2gsim.report import write_report

        print(f"report:   {write_report(out)}")
    return EXIT_OK


def _cmd_validate(args) -> int:
    import v2gsim

    sc = v2gsim.load_scenario(args.file, args.overrides)
    n = sum(g.count for g in sc.population)
    print(f"{args.file}: valid — {sc.name!r}, {len(sc.population)} population group(s), {n} vehicles, {sc.time.horizon_days:g} days at {sc.time.step_min} min")
    return EXIT_OK


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"list[{', '.join(_type_name(a) for a in typing.get_args(tp))}]"
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _range(field) -> str:
    parts = []
    meta = list(field.metadata)
    ann = field.annotation
    for a in typing.get_args(ann) if typing.get_origin(ann) in (typing.Union, types.UnionType) else (ann,):
        if typing.get_origin(a) is typing.Annotated:
            for m in typing.get_args(a)[1:]:
                meta += list(getattr(m, "metadata", [])) or [m]
    for m in meta:
        for attr, sym in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            val = getattr(m, attr, None)
            if val is not None:
                parts.append(f"{sym} {val:g}" if isinstance(val, float) else f"{sym} {val}")
    return ", ".join(dict.fromkeys(parts))


def _models_in(tp):
    from pydantic import BaseModel

    out = []
    for a in typing.get_args(tp) or ():
        out += _models_in(a)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        out.append(tp)
    return out


def _yaml_default(value) -> str:
    """A default as it would be written in YAML (models: their fields that differ from their
    own defaults, ``(defaults)`` when none do)."""
    import yaml
    from pydantic import BaseModel

    def plain(v):
        if isinstance(v, BaseModel):
            d = v.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            return {"kind": v.kind, **d} if "kind" in type(v).model_fields else d
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    if isinstance(value, BaseModel) and not plain(value):
        return "(defaults)"
    v = plain(value)
    if isinstance(v, str):  # a bare word reads better than its quoted repr; '' stays visible
        return v or "''"
    return yaml.safe_dump(v, default_flow_style=True, width=10**6, sort_keys=False).strip().removesuffix("...").strip()


# `extends:` is read by the loader (it is not a field of the scenario), so it is listed here
EXTENDS_ROW = ("extends", "str | null", "null", "", "parent scenario file (relative to this one), deep-merged: this file's values win")


def schema_rows(model_cls, prefix: str = ""):
    """(path, type, default, range, description) for every field, depth first; a field with
    an alias is listed under its YAML name (``feeder.base_load.from``)."""
    rows = []
    for name, f in model_cls.model_fields.items():
        path = f"{prefix}{f.alias or name}"
        default = "required" if f.is_required() else _yaml_default(f.get_default(call_default_factory=True))
        rows.append((path, _type_name(f.annotation), default, _range(f), f.description or ""))
        is_list = typing.get_origin(f.annotation) is list
        for sub in dict.fromkeys(_models_in(f.annotation)):
            kind = sub.model_fields.get("kind")
            # label the members of a union told apart by `kind` (business models), not a plain `kind` field
            label = f" ({kind.default})" if kind is not None and not kind.is_required() else ""
            rows += schema_rows(sub, f"{path}{'[]' if is_list else ''}{label}.")
    return rows


def _registered_rows():
    """Names registered for what the scenario names by string rather than by field."""
    from v2gsim.physics.networks import NETWORK_SOURCES
    from v2gsim.physics.wear import WEAR_MODELS
    from v2gsim.strategies.base import STRATEGIES

    return [(r.what + "s", ", ".join(r.names(*extra)), r.group)
            for r, extra in ((STRATEGIES, ()), (WEAR_MODELS, ("auto", "off")), (NETWORK_SOURCES, ()))]


def _cmd_schema(args) -> int:
    from v2gsim.plugins import load_plugin
    from v2gsim.scenario.schema import scenario_model

    for module in args.plugins:  # named on the command line: the user's own choice to import them
        load_plugin(module)
    rows = [EXTENDS_ROW, *schema_rows(scenario_model())]
    registered = _registered_rows()
    if args.format == "markdown":
        print("| field | type | default | range | meaning |\n|---|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
        print("\n| registered | names | entry-point group |\n|---|---|---|")
        for r in registered:
            print("| " + " | ".join(r) + " |")
    else:
        w = max(len(r[0]) for r in rows)
        for path, tp, default, rng, desc in rows:
            extra = "; ".join(x for x in (f"default {default}", rng, desc) if x)
            print(f"{path:<{w}}  {tp}  — {extra}")
        print()
        for what, names, group in registered:
            print(f"registered {what}: {names}  (entry points: {group})")
    print("\nUnits are in the names: _kw, _kwh, _kva, _km, _h, _min, _pct, soc (0-1), _cny_per_kwh. Power > 0 charges, < 0 is V2G.")
    return EXIT_OK


def _cmd_scenarios(args) -> int:
    import yaml

    from v2gsim.scenario import bundled_scenarios

    found = bundled_scenarios()
    if not found:
        print("no bundled scenarios found (they live in the repository's scenarios/ folder)")
        return EXIT_OK
    w = max(len(k) for k in found)
    for name, path in found.items():
        try:
            doc = yaml.safe_load(path.read_text()) or {}
            line = doc.get("description") or doc.get("name") or ""
        except yaml.YAMLError:
            line = "(not valid YAML)"
        print(f"{name:<{w}}  {line}   [{path}]")
    return EXIT_OK


def _cmd_compare(args) -> int:
    import shutil

    from v2gsim.errors import OutputError

    from v2gsim.compare import format_kpi_table, kpi_table, load_or_run, plot_compare
    from v2gsim.result_folder import check_file, write_file

    files = ("kpis.csv", "load_curves.png")
    if args.out:  # before any scenario runs: never replace a user's files silently
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise OutputError(f"{args.out} is a file, not a folder; choose another -o")
        taken = [f for f in files if (out / f).exists()]
        if taken and not args.overwrite:
            raise OutputError(f"{args.out} already holds {', '.join(taken)}; replace them with --overwrite or choose another folder")
    if args.report:
        check_file(args.report, overwrite=args.overwrite)
    runs = dict(load_or_run(item) for item in args.items)
    if len(runs) < len(args.items):
        print("v2gsim: two items have the same name; rename a result folder", file=sys.stderr)
        return EXIT_FAIL
    table = kpi_table(runs)
    if args.kpis:
        wanted = [k.strip() for k in args.kpis.split(",")]
        unknown = [k for k in wanted if k not in table.index]
        if unknown:
            print(f"v2gsim: unknown KPI(s) {', '.join(unknown)}; known: {', '.join(table.index)}", file=sys.stderr)
            return EXIT_FAIL
        table = table.loc[wanted]
    print(format_kpi_table(table, shutil.get_terminal_size((120, 24)).columns))
    if args.out:
        for name, write in zip(files, (table.to_csv, lambda p: plot_compare(runs).savefig(p, dpi=110, format="png"))):
            write_file(out / name, write, overwrite=True)  # checked above, before the runs
        print(f"table: {out / 'kpis.csv'}\nplot:  {out / 'load_curves.png'}")
    if args.report:
        from v2gsim.report import write_compare_report

        print(f"report: {write_compare_report(runs, args.report, overwrite=args.overwrite)}")
    return EXIT_OK


def _cmd_report(args) -> int:
    from v2gsim.report import write_report

    if not (Path(args.dir) / "metadata.json").is_file():
        print(f"v2gsim: {args.dir} holds no v2gsim result (no metadata.json); give a folder written by 'v2gsim run -o'", file=sys.stderr)
        return EXIT_SCENARIO
    print(f"report: {write_report(args.dir, args.out, overwrite=args.overwrite)}")
    return EXIT_OK


def _cmd_viz(args) -> int:
    try:
        from v2gsim.viz.server import serve
    except ImportError as exc:  # solara (mesa[viz]) not installed
        print(f"v2gsim: the live app needs Mesa's visualisation (pip install 'mesa[viz]'): {exc}", file=sys.stderr)
        return EXIT_FAIL
    if args.port is not None and not 0 <= args.port <= 65535:
        print(f"v2gsim: --port must be between 0 and 65535; got {args.port}", file=sys.stderr)
        return EXIT_SCENARIO
    return serve(args.file, port=args.port, host=args.host, open_browser=not args.no_browser)


def _cmd_sweep(args) -> int:
    try:
        from v2gsim.sweeps import cli_main
    except ImportError as exc:  # pragma: no cover - the sweep module is optional until it lands
        print(f"v2gsim: sweeps are not available in this build ({exc})", file=sys.stderr)
        return EXIT_FAIL
    args.progress = not args.no_progress
    return cli_main(args)


COMMANDS = {
    "run": _cmd_run,
    "validate": _cmd_validate,
    "schema": _cmd_schema,
    "scenarios": _cmd_scenarios,
    "compare": _cmd_compare,
    "sweep": _cmd_sweep,
    "report": _cmd_report,
    "viz": _cmd_viz,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from v2gsim.errors import OutputError, ScenarioError, SimulationError
    from v2gsim.plugins import PluginError, allow_plugins

    try:
        with allow_plugins() if getattr(args, "plugins", None) is True else contextlib.nullcontext():
            return COMMANDS[args.command](args)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_SCENARIO
    except PluginError as exc:  # a module named on the command line (v2gsim schema --plugins)
        print(f"v2gsim: {exc}", file=sys.stderr)
        return EXIT_SCENARIO
    except OutputError as exc:  # the output folder: refused (a usage problem) or not writable
        print(f"v2gsim: {exc}", file=sys.stderr)
        return EXIT_SCENARIO if exc.refused else EXIT_FAIL
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except (SimulationError, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"v2gsim: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("v2gsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "schema_rows"]
