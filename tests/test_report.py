"""The HTML report: one self-contained page per run (and per comparison), every figure embedded,
nothing fetched from elsewhere, written safely into result folders."""

from __future__ import annotations

import base64
import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import scenario
from v2gsim.cli import main
from v2gsim.plotting import plot_swap_stations, save_standard_plots
from v2gsim.report import build_compare_report, build_report, write_report
from v2gsim.report.html import number
from v2gsim.report.kpis import grouped, topic, unit
from v2gsim.operators import actor_money as ledger_by_actor
from v2gsim.errors import SimulationError
from v2gsim.results import Results
from v2gsim.runner import run_scenario

CHINESE = "混合城区：三种 V2G 商业模式"
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Every element with its attributes, the figures (data-plot) and the text of <h1>/<title>."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.figures: list[dict] = []
        self.texts: dict[str, str] = {}
        self._open: str | None = None
        self.html = text
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "figure":
            self.figures.append(a)
        if tag in ("h1", "title"):
            self._open = tag

    def handle_endtag(self, tag):
        if tag == self._open:
            self._open = None

    def handle_data(self, data):
        if self._open:
            self.texts[self._open] = self.texts.get(self._open, "") + data

    def of(self, tag):
        return [a for t, a in self.elements if t == tag]


def check_self_contained(page: Page) -> None:
    """Every image is an embedded PNG; no src or href anywhere points to the network or a file."""
    imgs = page.of("img")
    assert imgs, "no images"
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,"), a["src"][:80]
        assert base64.b64decode(a["src"].split(",", 1)[1])[:8] == PNG
    for tag, a in page.elements:
        for attr in ("src", "href"):
            if attr in a:
                assert a[attr].startswith("data:"), f"<{tag} {attr}={a[attr][:80]!r}> loads something from outside the page"
    assert not page.of("script") and not page.of("link"), "the page needs no scripts or linked style sheets"
    assert page.of("meta")[0] == {"charset": "utf-8"}, "UTF-8 must be declared first"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """mixed_city over one day, under a Chinese name, saved as a result folder."""
    out = tmp_path_factory.mktemp("mixed") / "mixed_city"
    assert main(["run", "mixed_city", "--set", "time.horizon_days=1", "--set", f"name={CHINESE}", "-o", str(out),
                 "--no-progress", "--no-plots"]) == 0
    return out


@pytest.fixture(scope="module")
def grid_wear(tmp_path_factory):
    """A small run with a pandapower network and battery wear: every optional plot but stations."""
    sc = scenario(feeder={"network": "cigre_lv", "base_load": {"from": "network_profiles"}},
                  time={"start": "2026-07-06T00:00", "step_min": 15, "horizon_days": 1, "warmup_days": 0},
                  wear={"model": "auto"})
    out = tmp_path_factory.mktemp("grid") / "grid"
    run_scenario(sc).save(out, plots=False)
    return out


def fresh_copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------------------ the page


def test_mixed_city_report_embeds_every_plot_and_loads_nothing(mixed, tmp_path, capsys):
    run = fresh_copy(mixed, tmp_path)
    assert main(["report", str(run)]) == 0
    assert str(run / "report.html") in capsys.readouterr().out
    raw = (run / "report.html").read_bytes()
    page = Page(raw.decode("utf-8"))
    check_self_contained(page)
    # three standard plots, the swap station's (mixed_city has one station), the operators' and
    # the drivers' money (its drivers feed back)
    assert sorted(f["data-plot"] for f in page.figures) == ["daily_envelope", "drivers_money", "load_curve", "operators", "soc_distribution",
                                                            "swap_stations"]
    assert len(page.of("img")) == 6
    assert page.texts["h1"] == CHINESE and CHINESE in page.texts["title"]


def test_network_and_wear_runs_get_their_plots(grid_wear, tmp_path):
    r = Results.load(grid_wear)
    page = Page(build_report(r))
    check_self_contained(page)
    assert sorted(f["data-plot"] for f in page.figures) == sorted(
        ["load_curve", "daily_envelope", "soc_distribution", "voltage_envelope", "loading_duration", "fade_distribution", "fade_vs_v2g",
             "operators"])
    assert "Battery wear" in page.html and "Network" in page.html


def test_every_kpi_is_shown_once_with_its_unit(mixed):
    r = Results.load(mixed)
    text = build_report(r)
    for name in r.kpis:
        shown = name.removeprefix("distributed_").removeprefix("centralized_").removeprefix("battery_swap_")
        assert f"<td>{shown}</td>" in text, name
    # the operators' own KPIs are listed under their operator, not again among the key figures
    assert "<td>distributed_invitations</td>" not in text and "<td>invitations</td>" in text
    assert '<td class="unit">kWh</td>' in text and '<td class="unit">%</td>' in text


def test_names_are_text_never_markup(mixed):
    r = Results.load(mixed)
    r.metadata["scenario"]["name"] = '<script src="https://example.com/x.js"></script> & <img src=x>'
    page = Page(build_report(r))
    check_self_contained(page)  # no script, and the only images are the embedded plots
    assert page.texts["h1"] == r.metadata["scenario"]["name"]


def test_swap_station_plot_is_a_standard_plot_of_runs_with_stations(mixed, tmp_path):
    r = Results.load(mixed)
    names = [p.name for p in save_standard_plots(r, tmp_path)]
    assert names[-1] == "swap_stations.png" and (tmp_path / "swap_stations.png").stat().st_size > 10_000
    axes = plot_swap_stations(r).axes
    assert [a.get_ylabel().split("\n")[0] for a in axes] == ["packs ready", "drivers waiting", "power (kW)"]
    # one line per station on each axis, holding the recorded values
    ready = r.extra["stations"]["packs_ready"].to_numpy()
    assert len(axes[0].lines) == 1 and list(axes[0].lines[0].get_ydata()) == list(ready)


def test_report_of_the_same_result_is_the_same_page(mixed):
    r = Results.load(mixed)
    assert build_report(r) == build_report(Results.load(mixed))


def test_units_and_topics_from_names():
    assert unit("peak_load_kw") == "kW" and unit("energy_charged_kwh") == "kWh" and unit("peak_increase_pct") == "%"
    assert unit("price_cny_per_kwh") == "CNY/kWh" and unit("charging_cost_cny") == "CNY" and unit("min_voltage_pu") == "p.u."
    assert unit("swap_wait_mean_min") == "min" and unit("transformer_overload_h") == "h"
    assert unit("swap_packs_ready_min") == "packs"  # the fewest packs, not minutes
    assert unit("departures_below_min_soc") == "" and unit("mean_final_soc") == "0–1"
    assert topic("swap_pack_fade_mean_pct") == "Battery wear" and topic("swap_wait_mean_min") == "Swap stations"
    assert topic("voltage_violation_h") == "Network" and topic("peak_reduction_pct") == "Load and transformer"
    assert topic("a_kpi_nobody_knows") == "Other"
    assert list(grouped(["x_new", "peak_load_kw"])) == ["Load and transformer", "Other"]
    assert [number(v) for v in (float("nan"), 4000.0, 1237.66, 3.14159, 0.54123, -32.139)] == ["n/a", "4,000", "1,237.7", "3.14", "0.541", "-32.14"]


# ------------------------------------------------------------------------------ money per actor


def test_ledger_is_summarised_per_actor_when_the_result_has_one(mixed, tmp_path):
    r = Results.load(mixed)
    page = build_report(r)  # every run has its ledger: the grid company, the drivers, the operators
    assert "Money per actor" in page and "<td>grid_company</td>" in page and "<td>drivers</td>" in page
    r.ledger = r.ledger.iloc[:0]  # a result saved before the ledger existed has none
    assert "Money per actor" not in build_report(r)
    r.extra["ledger"] = pd.DataFrame({
        "step": [0, 0, 1, 1],
        "time": pd.to_datetime(["2026-07-06 00:00"] * 2 + ["2026-07-06 00:15"] * 2),
        "payer": ["drivers", "operator", "drivers", "grid"],
        "payee": ["operator", "grid", "operator", "operator"],
        "reason": ["charging", "energy", "charging", "v2g"],
        "energy_kwh": [10.0, 10.0, 5.0, 2.0],
        "amount_cny": [8.0, 4.0, 4.0, 1.5],
    })
    out = tmp_path / "with_ledger"
    r.save(out, plots=False)
    assert (out / "ledger.parquet").is_file()
    write_report(out)
    html = (out / "report.html").read_text("utf-8")
    assert "Money per actor" in html
    # operator: paid 4 to the grid, received 8 + 4 + 1.5 from drivers and the grid
    row = html[html.index("<td>operator</td>"):].split("</tr>")[0]
    assert [c.split(">")[-1] for c in row.split("</td>")[1:4]] == ["4", "13.50", "9.50"]


def test_ledger_file_beside_the_tables_is_found_too(mixed, tmp_path):
    run = fresh_copy(mixed, tmp_path)
    ledger = pd.DataFrame({"step": [3], "payer": ["grid"], "payee": ["aggregator"], "reason": ["v2g"],
                           "energy_kwh": [12.0], "amount_cny": [6.25]})
    ledger.to_parquet(run / "ledger.parquet")  # the run's own ledger file, replaced by another one
    write_report(run)
    html = (run / "report.html").read_text("utf-8")
    assert "Money per actor" in html and "<td>aggregator</td>" in html and ">6.25<" in html


ACTORS = st.sampled_from(["grid", "drivers", "op1", "op2", "pack_owner"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(ACTORS, ACTORS, st.floats(-1e4, 1e4), st.floats(0, 1e3)), min_size=1, max_size=30))
def test_ledger_nets_add_up_to_zero_and_match_each_side(entries):
    entries = [e for e in entries if e[0] != e[1]]  # an actor never pays itself (the Ledger refuses it)
    ledger = pd.DataFrame(entries, columns=["payer", "payee", "amount_cny", "energy_kwh"]).assign(reason="x", step=0)
    a = ledger_by_actor(ledger)
    scale = 1 + ledger["amount_cny"].abs().sum()
    assert abs(a["net_cny"].sum()) <= 1e-9 * scale
    for actor, row in a.iterrows():
        assert math.isclose(row["cost_cny"], ledger.loc[ledger.payer == actor, "amount_cny"].sum(), abs_tol=1e-9 * scale)
        assert math.isclose(row["revenue_cny"], ledger.loc[ledger.payee == actor, "amount_cny"].sum(), abs_tol=1e-9 * scale)


def test_ledger_without_its_columns_is_named():
    with pytest.raises(ValueError, match="amount_cny"):
        ledger_by_actor(pd.DataFrame({"step": [0], "payer": ["a"], "payee": ["b"], "reason": ["r"], "energy_kwh": [1.0]}))


@pytest.mark.parametrize("payer, payee, amount", [("a", "a", 1.0), (None, "b", 1.0), ("a", "b", float("nan"))])
def test_a_ledger_that_cannot_balance_is_refused_by_name(payer, payee, amount):
    ledger = pd.DataFrame({"step": [0, 1], "payer": ["x", payer], "payee": ["y", payee], "reason": ["charging"] * 2,
                           "energy_kwh": [1.0, 1.0], "amount_cny": [2.0, amount]})
    with pytest.raises(SimulationError, match="does not balance: entry 1"):
        ledger_by_actor(ledger)


# ------------------------------------------------------------------------------ files


def test_report_in_a_result_folder_is_listed_so_the_result_can_still_be_overwritten(mixed, tmp_path, capsys):
    run = fresh_copy(mixed, tmp_path)
    assert main(["report", str(run)]) == 0
    meta = json.loads((run / "metadata.json").read_text())
    assert "report.html" in meta["files"]
    assert sorted(meta["files"]) == sorted(p.name for p in run.iterdir())
    assert not [p for p in run.iterdir() if p.name.startswith(".")], "no temporary folder left behind"
    # the folder still holds nothing but a v2gsim result, so it can be replaced as a whole
    assert main(["run", "smoke", "--set", "time.horizon_days=1", "-o", str(run), "--overwrite", "--no-progress", "--no-plots"]) == 0
    assert not (run / "report.html").exists()


def test_report_in_a_result_of_the_version_before_the_file_list(mixed, tmp_path, capsys):
    run = fresh_copy(mixed, tmp_path)
    meta = json.loads((run / "metadata.json").read_text())
    del meta["files"]
    (run / "metadata.json").write_text(json.dumps(meta))
    assert main(["report", str(run)]) == 0
    files = json.loads((run / "metadata.json").read_text())["files"]
    assert {"report.html", "kpis.json", "stations.parquet", "metadata.json"} <= set(files)
    assert main(["run", "smoke", "--set", "time.horizon_days=1", "-o", str(run), "--overwrite", "--no-progress", "--no-plots"]) == 0


def test_existing_report_is_replaced_only_with_overwrite(mixed, tmp_path, capsys):
    run = fresh_copy(mixed, tmp_path)
    mine = tmp_path / "mine.html"
    mine.write_text("my own page")
    assert main(["report", str(run), "-o", str(mine)]) == 2
    assert "already exists" in capsys.readouterr().err and mine.read_text() == "my own page"
    assert main(["report", str(run), "-o", str(mine), "--overwrite"]) == 0
    assert mine.read_text("utf-8").startswith("<!DOCTYPE html>")
    # a page outside the result folder leaves its metadata alone
    assert "mine.html" not in json.loads((run / "metadata.json").read_text())["files"]


def test_the_results_tables_and_metadata_are_never_replaced(mixed, tmp_path, capsys):
    run = fresh_copy(mixed, tmp_path)
    before = (run / "kpis.json").read_bytes()
    assert main(["report", str(run), "-o", str(run / "kpis.json"), "--overwrite"]) == 2
    assert "tables or metadata" in capsys.readouterr().err and (run / "kpis.json").read_bytes() == before
    assert main(["report", str(run), "-o", str(run)]) == 2  # a folder, not a file
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_a_failing_page_leaves_folder_and_metadata_as_they_were(mixed, tmp_path, monkeypatch):
    run = fresh_copy(mixed, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("v2gsim.report.page.figures", boom)
    with pytest.raises(RuntimeError):
        write_report(run)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_run_with_report_writes_it_with_the_result(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "smoke", "--set", "time.horizon_days=1", "-o", str(out), "--no-progress", "--no-plots", "--report"]) == 0
    assert f"report:   {out / 'report.html'}" in capsys.readouterr().out
    page = Page((out / "report.html").read_text("utf-8"))
    check_self_contained(page)
    assert len(page.figures) == 4  # smoke: no network, wear or stations; its one operator
    # smoke is uncontrolled: its comparison with its reference is a key figure, not the operator's
    html = page.html
    assert "<td>reference_peak_kw</td>" in html and "<td>peak_kw</td>" not in html
    assert "report.html" in json.loads((out / "metadata.json").read_text())["files"]


# ------------------------------------------------------------------------------ comparison


def test_compare_report_shows_runs_side_by_side(mixed, grid_wear, tmp_path, capsys):
    dest = tmp_path / "cmp.html"
    dest.write_text("mine")
    # refused before anything runs
    assert main(["compare", str(mixed), str(grid_wear), "--report", str(dest)]) == 2
    assert dest.read_text() == "mine"
    assert main(["compare", str(mixed), str(grid_wear), "--report", str(dest), "--overwrite"]) == 0
    page = Page(dest.read_text("utf-8"))
    check_self_contained(page)
    # overlaid load curves, then each run's load curve and daily profile
    assert len(page.figures) == 1 + 2 * 2
    assert [f.get("data-run") for f in page.figures] == [None, "mixed_city", "grid", "mixed_city", "grid"]
    html = page.html
    assert "Battery wear" in html and CHINESE in html


def test_compare_report_labels_each_run(mixed):
    r = Results.load(mixed)
    page = Page(build_compare_report({"one": r, "two": r}))
    assert [f.get("data-run") for f in page.figures] == [None, "one", "two", "one", "two"]
    assert "<th>one</th>" in page.html and "<th>two</th>" in page.html
