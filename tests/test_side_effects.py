"""v2gsim leaves the process as it found it, and Chinese names work end to end, plots included.

demandlib 0.2.2 turns every warning into an error for the whole process while it builds a BDEW
profile: afterwards a missing glyph in a plot, or ``np.array([1.]) / 0`` in a notebook, raised.
The check runs in a fresh interpreter, because the profile is cached per process.
"""

import json
import subprocess
import sys
import warnings

import numpy as np

import v2gsim
from v2gsim.plotting import plot_load_curve, save_standard_plots
from v2gsim.plotting.figure import V2GFigure, cjk_font_file

CHILD = r"""
import json, logging, sys, warnings
import numpy as np
import matplotlib

def state():
    root = logging.getLogger()
    return {"filters": [repr(f) for f in warnings.filters], "np_err": np.geterr(),
            "log_level": root.level, "log_handlers": len(root.handlers),
            "rc": {k: repr(v) for k, v in matplotlib.rcParams.items()}}

# imports may register their libraries' own filters; a run must add or change nothing
import v2gsim, v2gsim.runner, v2gsim.plotting, demandlib.bdew, lightsim2grid, mesa, pandapower, simbench
before = state()
sc = v2gsim.load_scenario("smoke", {"name": "深圳社区 V2G 试点", "time.horizon_days": 1})
res = v2gsim.run(sc)
res.save(sys.argv[1], plots=True)
after = state()
with np.errstate(all="warn"), warnings.catch_warnings(record=True):
    warnings.simplefilter("default")
np.array([1.0]) / 0  # raised after a run while demandlib's filter leaked
print(json.dumps({"same": before == after, "diff": [k for k in before if before[k] != after[k]]}))
"""


def test_a_run_leaves_warning_filters_numpy_logging_and_rcparams_alone(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    verdict = json.loads(out.stdout.strip().splitlines()[-1])
    assert verdict["same"], f"process state changed by a run: {verdict['diff']}"
    assert sorted(p.name for p in (tmp_path / "run").glob("*.png")) == ["daily_envelope.png", "load_curve.png", "operators.png",
                                                                        "soc_distribution.png"]


def test_bdew_profile_restores_the_callers_filters():
    from v2gsim.data.profiles import bdew_profile

    bdew_profile.cache_clear()
    before = list(warnings.filters)
    bdew_profile("h0", 2031)
    assert warnings.filters == before


def test_chinese_name_and_site_ids_plot_without_missing_glyphs(tmp_path):
    assert cjk_font_file() is not None, "the CJK font (package mplfonts) is not installed"
    sc = v2gsim.load_scenario("smoke", {"name": "广州社区：分布式 V2G 一周", "time.horizon_days": 1})
    res = v2gsim.run(sc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = save_standard_plots(res, tmp_path)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing
    assert all(p.stat().st_size > 5_000 for p in paths)


def test_figures_show_inline_in_jupyter_without_pyplot():
    res = v2gsim.run(v2gsim.load_scenario("smoke", {"time.horizon_days": 1}))
    fig = plot_load_curve(res)
    assert isinstance(fig, V2GFigure)
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
    # a user's own axes on a plain figure still work
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert plot_load_curve(res, ax=ax) is ax.figure
    np.testing.assert_array_equal(res.system.index.size, 96)
