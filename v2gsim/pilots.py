"""China's V2G pilots as scenarios with their published figures (``scenarios/pilots/``).

Each pilot names a bundled scenario and the figures published about it; each figure has a
source, a band the simulation must land in, and a function that measures it from the run's
Results. `pilot_table` runs them and returns published against simulated;
``tests/test_pilots.py`` checks every band and ``docs/validation.md`` prints the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from v2gsim.results import Results
from v2gsim.strategies.distributed import SHENZHEN_2024_DISCHARGED, SHENZHEN_2024_ENROLLED

NIO_GEN3_SWAPS_PER_DAY = 408  # [A] DOMAIN.md "Swap stations"
NIO_GEN3_STATION_KW = 500  # [A] "~500 kW"
JIANGSU_2024_EVS, JIANGSU_2024_MW, JIANGSU_2024_MWH = 1277, 12.0, 17.0  # Aug 2024, 482 stations [A] DOMAIN.md "Distributed"


@dataclass(frozen=True)
class PilotFigure:
    """One published figure of a pilot.

    Attributes:
        name: what is measured, with its unit.
        published: the published value.
        source: where it was published, with the DOMAIN.md confidence tag.
        band: (low, high) the simulated value must lie in.
        measure: the simulated value from the pilot's Results.
    """

    name: str
    published: float
    source: str
    band: tuple[float, float]
    measure: Callable[[Results], float]


@dataclass(frozen=True)
class Pilot:
    scenario: str  # bundled scenario name (pilots/<stem>)
    title: str
    figures: tuple[PilotFigure, ...]


def _binomial_band(n: int, k: int, sds: float = 3.0) -> tuple[float, float]:
    p = k / n
    sd = float(np.sqrt(n * p * (1 - p)))
    return k - sds * sd, k + sds * sd


def _busiest_hour_swaps(res: Results) -> float:
    return float(res.extra["stations"].set_index("time")["swaps"].resample("1h").sum().max())


def _released_mw(res: Results) -> float:
    """Largest reduction below the baseline in the settled window, MW."""
    from v2gsim.market.events import event_table

    return float(event_table(res)["delivered_kw"].max()) / 1000.0


def _cut_mwh(res: Results) -> float:
    """Energy delivered against the baseline over the window, MWh."""
    return float(res.extra["grid_settlement"]["delivered_kwh"].sum()) / 1000.0


def _v2g_price_spread(res: Results, when: str) -> float:
    """Guangdong's V2G price at ``when`` minus at 03:00 that day, both rounded to 0.001 CNY as published."""
    from v2gsim.market.tariffs import Tariff
    from v2gsim.scenario.schema import TariffConfig

    tariff = Tariff.from_config(TariffConfig.model_validate(res.metadata["scenario"]["tariff"]))
    t = pd.Timestamp(when)
    hi, lo = np.asarray(tariff.v2g_price_cny_per_kwh(pd.DatetimeIndex([t, t.normalize() + pd.Timedelta(hours=3)])))
    return round(float(hi), 3) - round(float(lo), 3)


PILOTS: dict[str, Pilot] = {
    "shenzhen_2024_05_15": Pilot(
        "pilots/shenzhen_2024_05_15", "Shenzhen invitation event, 15 May 2024", (
            PilotFigure("drivers discharging", SHENZHEN_2024_DISCHARGED,
                        "Shenzhen, 15 May 2024: 1,473 enrolled, 53 discharged, 4 CNY/kWh [A, DOMAIN.md]",
                        _binomial_band(SHENZHEN_2024_ENROLLED, SHENZHEN_2024_DISCHARGED),
                        lambda r: r.kpis["distributed_drivers_responding"]),
            PilotFigure("drivers enrolled", SHENZHEN_2024_ENROLLED, "as above [A]",
                        (SHENZHEN_2024_ENROLLED, SHENZHEN_2024_ENROLLED),
                        lambda r: r.kpis["distributed_enrolled_drivers"]),
        )),
    "nio_gen3_station": Pilot(
        "pilots/nio_gen3_station", "NIO Power Swap Station 3.0, a busy day", (
            PilotFigure("swaps in the busiest hour (408 a day / 24)", NIO_GEN3_SWAPS_PER_DAY / 24,
                        "NIO Gen 3: up to 408 swaps a day [A, DOMAIN.md]", (NIO_GEN3_SWAPS_PER_DAY / 24, NIO_GEN3_SWAPS_PER_DAY / 24),
                        _busiest_hour_swaps),
            PilotFigure("station peak, kW", NIO_GEN3_STATION_KW, "NIO Gen 3: ~500 kW station [A, DOMAIN.md]",
                        (0.95 * NIO_GEN3_STATION_KW, NIO_GEN3_STATION_KW + 1e-6),
                        lambda r: r.kpis["swap_station_peak_kw"]),
        )),
    "jiangsu_2024_08": Pilot(
        "pilots/jiangsu_2024_08", "Jiangsu demand-response event, August 2024", (
            PilotFigure("power released against the baseline, MW", JIANGSU_2024_MW,
                        "Jiangsu, Aug 2024: 1,277 EVs at 482 stations released 12 MW [A, DOMAIN.md]; the grid asks the "
                        "published 12 MW (assumed [C]), so this checks the fleet can give it at that hour",
                        (0.9 * JIANGSU_2024_MW, 1.1 * JIANGSU_2024_MW), _released_mw),
            PilotFigure("peak energy cut against the baseline, MWh", JIANGSU_2024_MWH,
                        "as above, 17 MWh [A]; window 1.5 h assumed [C] (17 MWh / 12 MW = 1.4 h): +6 % from the "
                        "window, and the cut counts the midday charging the baseline expected in it",
                        (0.85 * JIANGSU_2024_MWH, 1.15 * JIANGSU_2024_MWH), _cut_mwh),
        )),
    "guangdong_discharge_price": Pilot(
        "pilots/shenzhen_2024_05_15", "Guangdong discharge-price arithmetic (tariff preset guangdong)", (
            PilotFigure("peak - valley V2G price, CNY/kWh", 0.598,
                        "Guangdong V2G price 0.453 x TOU ratios: 0.770 - 0.172 [A, DOMAIN.md]", (0.598 - 1e-9, 0.598 + 1e-9),
                        lambda r: _v2g_price_spread(r, "2026-07-08 10:30")),
            PilotFigure("critical peak - valley V2G price, CNY/kWh", 0.791,
                        "critical peak = peak x 1.25 (Jul-Sep): 0.963 - 0.172 [A, DOMAIN.md]", (0.791 - 1e-9, 0.791 + 1e-9),
                        lambda r: _v2g_price_spread(r, "2026-07-08 15:30")),
        )),
}


def run_pilot(name: str, *, seed: int | None = None) -> tuple[Results, pd.DataFrame]:
    """Run pilot ``name`` (a key of `PILOTS`) and compare it with its published figures.

    Returns the run's Results and a table with one row per figure: pilot, figure, published,
    simulated, ratio (simulated / published), band_low, band_high, within, source.
    """
    import v2gsim

    if name not in PILOTS:
        raise KeyError(f"unknown pilot {name!r}; known: {', '.join(PILOTS)}")
    pilot = PILOTS[name]
    res = v2gsim.run(pilot.scenario, seed=seed, baseline=False)
    rows = []
    for f in pilot.figures:
        sim = float(f.measure(res))
        rows.append({"pilot": pilot.title, "figure": f.name, "published": float(f.published), "simulated": sim,
                     "ratio": sim / f.published if f.published else float("nan"),
                     "band_low": f.band[0], "band_high": f.band[1], "within": f.band[0] <= sim <= f.band[1], "source": f.source})
    return res, pd.DataFrame(rows)


def pilot_table(names: Iterable[str] | None = None) -> pd.DataFrame:
    """`run_pilot` for every pilot (or ``names``), the rows of all of them."""
    return pd.concat([run_pilot(n)[1] for n in (names or PILOTS)], ignore_index=True)


# --- Shenzhen Lianhua Hill V2G station (scenarios/pilots/lianhua_hill.yaml) ------------------
LIANHUA_DAY_KWH = 13_000  # "over 13,000 kWh" in one day, 28 Mar 2025 [A] DOMAIN.md "Centralized"; eyeshenzhen.com 3 Apr 2025
LIANHUA_MAX_KW = 2_160  # 36 guns x 60 kW, the published maximum discharge [A]


def _v2g_day_kwh(res: Results) -> float:
    """Energy fed back over the recorded day, kWh (the scenario's home piles are charge-only, so
    all of it at the station; tests/test_pilots.py checks that)."""
    dt_h = res.metadata["scenario"]["time"]["step_min"] / 60.0
    return float(res.system["v2g_discharge_kw"].sum() * dt_h)


PILOTS["lianhua_hill"] = Pilot(
    "pilots/lianhua_hill", "Shenzhen Lianhua Hill V2G station, 28 Mar 2025", (
        # the published figure is a floor ("over 13,000 kWh"): the band runs from it to 1.5x
        PilotFigure("energy discharged in the day, kWh", LIANHUA_DAY_KWH,
                    "Lianhua Hill: 36 guns x 60 kW, 2,160 kW, over 13,000 kWh on 28 Mar 2025 [A, DOMAIN.md; eyeshenzhen.com]",
                    (LIANHUA_DAY_KWH, 1.5 * LIANHUA_DAY_KWH), _v2g_day_kwh),
    ))
