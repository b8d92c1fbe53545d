"""The Solara page of ``v2gsim viz``: Mesa's SolaraViz around a `LiveRun`.

Run it with ``v2gsim viz [FILE]`` (which sets ``V2GSIM_VIZ_FILE``), or directly with
``solara run v2gsim.viz.app``. Each browser session gets its own model. The knobs are the
keyword arguments of `LiveRun`; Mesa's Reset builds a new `LiveRun` from them, so a changed knob
takes effect on Reset (as in every SolaraViz app).
"""

from __future__ import annotations

import os

import solara
from mesa.visualization import SolaraViz

from v2gsim.viz.components import PANELS
from v2gsim.viz.live import DEFAULT_SCENARIO, LiveRun
from v2gsim.viz.params import AS_IN_SCENARIO, BUSINESS_MODELS, REWARDS_CNY_PER_KWH, scenario_choices

FILE_ENV = "V2GSIM_VIZ_FILE"
# a tick advances RENDER_INTERVAL recorded steps and redraws the panels, which takes most of a
# second: mixed_city played at about 4 steps/s here, a week at 15 min (672 steps) in about three
# minutes. Odd, because Mesa's
# slider for it runs 1, 3, 5, ... and the browser snaps an even value to the next odd one.
PLAY_INTERVAL_MS = 50
RENDER_INTERVAL = 5


def model_params(file: str | None = None) -> dict:
    """SolaraViz's knobs. Zero and "as in the scenario" keep the scenario file's own values."""
    choices = scenario_choices(file)
    return {
        "scenario_name": {"type": "Select", "value": file or DEFAULT_SCENARIO, "values": choices, "label": "scenario"},
        "ev_count": {"type": "SliderInt", "value": 0, "min": 0, "max": 3000, "step": 10, "label": "EV count (0: as in the scenario)"},
        "business_model": {"type": "Select", "value": AS_IN_SCENARIO, "values": list(BUSINESS_MODELS),
                           "label": "business model (swap stations stay)"},
        "reward": {"type": "Select", "value": AS_IN_SCENARIO, "values": list(REWARDS_CNY_PER_KWH),
                   "label": "invitation reward (CNY/kWh)"},
        "transformer_kva": {"type": "SliderInt", "value": 0, "min": 0, "max": 10000, "step": 50,
                            "label": "transformer rating, kVA (0: as in the scenario)"},
    }


@solara.component
def Page():
    file = os.environ.get(FILE_ENV) or None
    model = solara.use_memo(lambda: LiveRun(scenario_name=file or DEFAULT_SCENARIO), [])
    return SolaraViz(model, components=list(PANELS), model_params=model_params(file), name="v2gsim live",
                     play_interval=PLAY_INTERVAL_MS, render_interval=RENDER_INTERVAL)
