"""Figures and tables of docs/data.md, regenerated from the package data.

    python docs/data_figures.py     # writes docs/img/cn_*.png, prints the tables
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from v2gsim.data.cn_buildings import building_metadata, building_profile  # noqa: E402
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


# days of 2026 shown for the commercial profiles: (label, date, line style, colour)
BUILDING_DAYS = (("January Thursday", "2026-01-15", "-", "tab:blue"), ("January Sunday", "2026-01-18", "--", "tab:blue"),
                 ("April Thursday", "2026-04-16", "-", "tab:green"), ("July Thursday", "2026-07-16", "-", "tab:red"),
                 ("July Sunday", "2026-07-19", "--", "tab:red"))


def _day(name: str, date: str) -> np.ndarray:
    import pandas as pd

    return building_profile(name, 2026).reshape(-1, 24)[pd.Timestamp(date).dayofyear - 1]


def building_days_figure(path: Path) -> None:
    provinces = ("guangdong", "beijing")
    kinds = ("office", "mall", "hotel", "commercial")
    fig, axes = plt.subplots(len(provinces), len(kinds), figsize=(15, 6), sharey=True, sharex=True)
    hours = np.arange(24) + 0.5
    for row, province in zip(axes, provinces, strict=True):
        for ax, kind in zip(row, kinds, strict=True):
            for label, date, style, color in BUILDING_DAYS:
                ax.step(hours, _day(f"cn:{province}:{kind}", date), style, where="mid", color=color, label=label)
            ax.set_title(f"cn:{province}:{kind}", fontsize=9)
            ax.set_xticks(range(0, 25, 6))
            ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("load / mean of the year")
    for ax in axes[-1]:
        ax.set_xlabel("hour of day")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    fig.suptitle("Commercial profiles, days of 2026 (schedules: " + building_metadata()["source"] + "; AC model [C])", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def building_table() -> None:
    print("\n| profile | day (2026) | peak hour | peak / day mean | day mean / year mean |\n|---|---|---|---|---|")
    for name in ("cn:guangdong:commercial", "cn:beijing:commercial", "cn:heilongjiang:commercial", "cn:guangdong:mall",
                 "cn:guangdong:office", "cn:guangdong:hotel"):
        for label, date, _, _ in BUILDING_DAYS:
            v = _day(name, date)
            peak = f"{v.argmax():02d}:00" if v.max() > 0 else "-"
            ratio = f"{v.max() / v.mean():.2f}" if v.max() > 0 else "-"
            print(f"| {name} | {label} | {peak} | {ratio} | {v.mean():.2f} |")


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
    building_days_figure(HERE / "img" / "cn_commercial_days.png")
    shape_table()
    building_table()
    calibration_table()
