"""Figures and tables of docs/data.md, regenerated from the package data.

    python docs/data_figures.py     # writes docs/img/cn_province_typical_days.png, prints the tables
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from v2gsim.data.cn_load import _typical_days, cn_metadata  # noqa: E402
from v2gsim.population import archetypes as arch  # noqa: E402

HERE = Path(__file__).resolve().parent
SHOWN = {"GD": "Guangdong", "SH": "Shanghai", "BJ": "Beijing"}


def typical_days_figure(path: Path) -> None:
    days = _typical_days()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    hours = np.arange(24) + 0.5
    for ax, (code, name) in zip(axes, SHOWN.items(), strict=True):
        year_mean = np.mean([d[code].mean() for d in days.values()])
        for (season, kind), d in sorted(days.items()):
            style = "-" if kind == "workday" else "--"
            color = {"winter": "tab:blue", "transition": "tab:green", "summer": "tab:red"}[season]
            ax.plot(hours, d[code] / year_mean, style, color=color, label=f"{season} {kind.replace('_', ' ')}")
        ax.set_title(f"{name} (whole province)")
        ax.set_xlabel("hour of day")
        ax.set_xticks(range(0, 25, 6))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("load / mean of the six days")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Typical days of cn:<province>:province (source: " + cn_metadata()["source"] + ")", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def shape_table() -> None:
    days = _typical_days()
    print("| province | day | peak hour | peak / day mean | min / day mean | day mean / six-day mean |\n|---|---|---|---|---|---|")
    for code, name in SHOWN.items():
        six = np.mean([d[code].mean() for d in days.values()])
        for (season, kind), d in sorted(days.items()):
            v = d[code].to_numpy()
            print(f"| {name} | {season} {kind.replace('_', ' ')} | {v.argmax():02d}:00 | {v.max() / v.mean():.2f} | "
                  f"{v.min() / v.mean():.2f} | {v.mean() / six:.2f} |")


def calibration_table(n: int = 200_000, seed: int = 7) -> None:
    print("\n| archetype | mean trip km | mean trip h | drivers with mean trip < 0.5 h | km per driving day |\n|---|---|---|---|---|")
    print(f"| published (national platform 2020) [A] | {arch.CN_TRIP_KM_MEAN} | {arch.CN_TRIP_H_MEAN} | "
          f"{arch.CN_SHARE_UNDER_HALF_HOUR:.1%} | - |")
    for name in ("private_car_cn", "private_commuter"):
        p = arch.PLANNERS[name](np.random.default_rng(seed), n, True, np.ones(n))
        a = p.active
        h = np.where(a, p.arr_h - p.dep_h, 0.0)
        per_driver = h.sum(1) / np.maximum(a.sum(1), 1)
        drives = a.any(1)
        print(f"| {name} (simulated, weekday, n = {n:,}) | {p.km[a].mean():.2f} | {(p.arr_h - p.dep_h)[a].mean():.3f} | "
              f"{(per_driver[drives] < 0.5).mean():.1%} | {np.where(a, p.km, 0).sum(1)[drives].mean():.1f} |")


if __name__ == "__main__":
    typical_days_figure(HERE / "img" / "cn_province_typical_days.png")
    shape_table()
    calibration_table()
