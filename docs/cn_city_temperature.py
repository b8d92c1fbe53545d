"""Regenerate v2gsim/data/cn_city_monthly_temperature.csv (run from the repository root).

Four sources, one row per city, source and period:

* ``chelsa``: CHELSA v2.1 climatological normals 1981-2010 (Karger et al. 2017) as shipped in
  the PyPI package ``world-temperature-data`` 0.1.0 (CC-BY-4.0). The package holds 270 cities
  worldwide but only five in mainland China (Beijing, Shanghai, Guangzhou, Shenzhen, Chengdu),
  so it cannot give the other provincial capitals. With the package installed
  (``pip install world-temperature-data==0.1.0``) the rows are read from it; without, the rows
  already in the CSV are kept.
* ``nbs``: National Bureau of Statistics of China, China Statistical Yearbook 2009 table 11-13
  (year 2008; stats.gov.cn/tjsj/ndsj/2009/html/L1113e.htm) and 2010 table 12-13 (year 2009;
  .../2010/html/L1213e.htm), "Monthly Average Temperature of Major Cities", one station per
  provincial capital. The rows below are those tables' rows (12 months and the published
  annual average); the copy read here ends after Guiyang (2008, Kunming cut after July) and
  after Kunming (2009, Lhasa cut after August), so Lhasa, Xi'an, Lanzhou, Xining, Yinchuan
  and Urumqi are missing. Every row's months are checked against its annual average below.
  A second search for the five missing capitals (other yearbook years, the Chinese tables,
  Wikipedia climate boxes, packages) found no usable table: docs/data.md lists what was tried.
* ``cma``: China Meteorological Administration station normals as reproduced in the Chinese
  Wikipedia template "Template:西安市气候数据" (daily mean, mean daily maximum and minimum per
  month; the template's header says 1981-2010, its reference names the CMA 1971-2000
  international-exchange-station data set). Only Xi'an was found in that form.
* ``gsod``: NOAA NCEI Global Surface Summary of the Day (GSOD, public domain), the daily mean
  temperature (``TEMP``, degF) of stations 51463099999 (WU LU MU QI, Urumqi), 52866099999
  (XINING) and 53614099999 (YINCHUAN), as stored verbatim in the repository
  yuruotao/District-power (``result/NCDC_weather_data/<year>/<station>.csv``, commit fd6edb4;
  the weather inputs of the Sci Data 2025 residential-load paper). That copy has 2022 for all
  three and 2023 for Yinchuan only, and no file for Lhasa (55591) or Lanzhou (52889). The daily
  values are transcribed to ``docs/cn_gsod_daily_temperature.csv`` (a few days are missing from
  the source files: the CSV has what they print); a row here is one station-year, each month the
  mean of its days in degC and the annual the mean of the twelve months. One or two recent years,
  not a 30-year normal: docs/data.md gives the cross-check against the CMA 1971-2000 normal.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
OUT = Path(__file__).resolve().parents[1] / "v2gsim" / "data" / "cn_city_monthly_temperature.csv"

# yearbook city name -> preset name (2009's table names the station for Chongqing and Chengdu)
CITY = {"Beijing": "beijing", "Tianjin": "tianjin", "Shijiazhuang": "shijiazhuang", "Taiyuan": "taiyuan",
        "Hohhot": "hohhot", "Shenyang": "shenyang", "Changchun": "changchun", "Harbin": "harbin",
        "Shanghai": "shanghai", "Nanjing": "nanjing", "Hangzhou": "hangzhou", "Hefei": "hefei",
        "Fuzhou": "fuzhou", "Nanchang": "nanchang", "Jinan": "jinan", "Zhengzhou": "zhengzhou",
        "Wuhan": "wuhan", "Changsha": "changsha", "Guangzhou": "guangzhou", "Nanning": "nanning",
        "Haikou": "haikou", "Chongqing": "chongqing", "Chongqing(Shapingba)": "chongqing",
        "Chengdu": "chengdu", "Chengdu(Wenjiang)": "chengdu", "Guiyang": "guiyang", "Kunming": "kunming"}

# city, Jan..Dec, annual average (degC), as printed
NBS = {
    2008: """
Beijing -3.0 0.6 9.1 15.8 20.3 23.4 27.2 26.0 21.0 14.5 6.3 -1.0 13.4
Tianjin -3.6 -0.7 8.6 15.8 20.8 23.4 27.0 26.5 21.5 14.7 6.4 -1.3 13.3
Shijiazhuang -2.0 2.5 10.6 16.3 22.2 24.4 27.5 26.1 21.4 16.0 8.0 1.6 14.6
Taiyuan -5.5 -3.3 7.1 13.1 18.9 21.6 24.9 23.5 17.8 11.5 3.9 -2.6 10.9
Hohhot -12.1 -9.3 3.4 11.4 16.4 20.3 23.6 20.0 15.9 8.2 -0.3 -8.9 7.4
Shenyang -12.6 -7.9 3.8 12.2 16.4 21.0 24.5 23.2 17.8 11.3 1.0 -7.0 8.6
Changchun -15.6 -9.4 3.0 12.1 15.1 21.3 23.5 22.4 16.5 9.5 -2.3 -9.6 7.2
Harbin -17.6 -10.5 2.7 11.3 14.4 22.5 24.4 23.2 16.4 8.3 -4.4 -11.6 6.6
Shanghai 4.2 4.0 11.4 15.9 21.6 24.0 30.2 28.4 25.6 20.7 13.1 7.5 17.2
Nanjing 1.5 2.5 11.3 15.6 22.2 23.4 29.0 27.0 24.4 19.0 11.4 5.7 16.1
Hangzhou 3.7 3.9 12.7 17.1 23.2 24.6 30.1 28.4 25.8 20.4 12.9 7.6 17.5
Hefei 1.0 2.7 12.5 16.8 23.5 24.2 28.7 27.3 24.5 18.9 11.3 5.9 16.4
Fuzhou 11.0 9.1 15.3 19.3 22.8 26.7 29.0 29.0 27.9 23.7 18.0 13.5 20.4
Nanchang 3.5 5.5 14.6 18.7 24.3 25.8 30.0 29.5 27.0 21.3 13.4 8.7 18.5
Jinan -2.0 1.0 10.3 16.3 22.3 25.0 26.0 25.6 21.6 17.2 9.1 2.4 14.6
Zhengzhou -0.7 2.8 12.1 16.9 23.7 26.0 26.6 26.8 21.6 17.2 10.7 3.8 15.6
Wuhan 1.2 4.9 14.4 18.5 24.7 26.4 29.3 28.4 25.1 19.1 12.4 7.3 17.6
Changsha 2.3 5.5 15.2 18.9 24.6 26.7 30.1 28.7 25.4 19.9 13.5 9.1 18.3
Guangzhou 12.8 11.6 20.1 23.2 25.6 27.0 29.1 29.3 28.6 26.1 19.9 15.6 22.4
Nanning 9.4 10.4 19.1 22.9 25.7 26.5 27.7 27.3 26.6 24.0 17.1 13.3 20.8
Haikou 16.9 13.3 20.9 25.3 26.6 27.4 28.0 27.6 27.4 25.8 22.7 19.2 23.4
Chongqing 6.2 7.3 15.5 19.0 23.8 25.8 29.1 26.3 25.6 19.6 14.2 9.4 18.5
Chengdu 3.7 5.4 13.4 17.2 22.1 24.4 25.7 24.1 22.2 18.1 12.2 7.1 16.3
Guiyang 1.0 2.2 11.8 15.7 18.8 21.0 22.7 22.0 20.9 16.5 10.4 6.3 14.1
""",
    2009: """
Beijing -3.0 1.0 7.0 15.9 22.9 26.2 27.0 25.7 21.1 15.3 2.2 -2.3 13.3
Tianjin -3.5 0.7 6.7 15.6 22.6 25.8 27.1 25.6 20.9 14.9 1.6 -2.8 12.9
Shijiazhuang -0.7 3.1 9.6 16.5 22.6 28.2 28.2 25.6 21.3 17.0 2.3 -0.5 14.4
Taiyuan -5.1 1.5 6.7 14.9 19.2 24.5 25.0 22.4 17.4 12.2 -0.9 -4.5 11.1
Hohhot -10.3 -2.8 1.3 12.0 17.2 22.0 23.8 21.7 16.3 8.6 -4.0 -10.1 8.0
Shenyang -11.0 -7.3 0.4 11.1 19.1 20.8 23.1 23.3 17.0 9.9 -3.4 -11.1 7.7
Changchun -13.0 -9.1 -2.0 10.2 18.2 19.0 22.3 23.0 16.2 8.4 -5.5 -14.3 6.1
Harbin -16.0 -11.5 -3.9 9.7 18.4 18.9 22.6 22.2 15.6 7.1 -7.0 -16.7 5.0
Shanghai 3.8 8.9 10.6 16.3 21.9 26.2 28.8 27.9 25.0 21.3 12.1 6.4 17.4
Nanjing 2.2 7.3 9.8 16.6 21.9 26.6 28.0 27.2 23.4 20.1 8.6 4.5 16.4
Hangzhou 4.4 9.5 11.1 17.6 22.9 26.8 29.6 28.4 25.5 20.6 10.8 6.7 17.8
Hefei 2.6 7.7 10.5 17.6 21.9 27.1 28.6 27.5 24.0 20.3 7.8 4.6 16.7
Fuzhou 10.7 15.5 14.2 18.8 23.1 26.3 29.4 29.3 28.1 23.2 17.3 12.7 20.7
Nanchang 5.1 10.8 12.1 18.7 23.5 27.8 29.7 29.4 26.9 22.5 11.2 7.3 18.8
Jinan -0.2 5.1 9.0 16.7 21.9 28.1 26.5 25.1 21.1 18.8 4.8 0.8 14.8
Zhengzhou 1.0 5.9 10.1 17.0 22.0 28.8 27.9 26.0 21.0 18.5 5.4 2.9 15.5
Wuhan 4.5 9.0 12.1 18.3 22.2 28.1 30.3 29.1 24.9 21.1 8.8 5.8 17.9
Changsha 5.1 10.5 12.7 18.5 22.5 28.4 29.8 29.4 25.8 21.4 10.6 7.1 18.5
Guangzhou 12.4 21.0 18.2 22.2 25.9 27.9 29.6 29.9 29.5 26.0 17.9 15.3 23.0
Nanning 11.3 20.3 17.9 22.2 25.0 27.8 28.3 28.8 27.9 24.0 17.2 15.4 22.2
Haikou 16.1 22.5 22.7 24.1 26.2 28.3 28.3 28.1 27.9 25.8 21.5 19.8 24.3
Chongqing(Shapingba) 7.7 13.0 14.8 18.8 21.9 25.4 28.9 28.4 26.9 19.6 12.9 9.9 19.0
Chengdu(Wenjiang) 5.7 10.8 12.5 17.5 21.1 24.6 24.9 25.0 22.7 17.7 10.7 7.9 16.8
Guiyang 3.8 10.4 11.3 14.5 18.6 21.5 22.7 23.6 21.5 15.8 9.3 5.5 14.9
Kunming 8.3 13.9 15.8 17.7 19.8 20.6 21.3 20.6 20.1 18.5 11.8 10.5 16.6
""",
}
# Xi'an, CMA normals via the Wikipedia template: Jan..Dec and the year, per row
CMA_XIAN = {
    "mean": [0.3, 3.6, 8.7, 15.4, 20.5, 25.3, 27.0, 25.1, 20.3, 14.1, 7.2, 1.5, 14.1],
    "max": [5.1, 8.9, 14.4, 21.5, 26.6, 31.4, 32.4, 30.3, 25.6, 19.3, 12.4, 6.3, 19.5],
    "min": [-3.3, -0.4, 4.1, 10.3, 15.1, 19.9, 22.3, 21.0, 16.5, 10.2, 3.2, -2.2, 9.7],
}
# the package's English names of its mainland cities
CHELSA_CITIES = {"Beijing": "beijing", "Shanghai": "shanghai", "Guangzhou": "guangzhou", "Shenzhen": "shenzhen",
                 "Chengdu": "chengdu"}
GSOD_DAILY = Path(__file__).resolve().parent / "cn_gsod_daily_temperature.csv"
# a month of the GSOD extract counts when most of its days are there (the copy misses 0 to 7 a month)
GSOD_MIN_DAYS_PER_MONTH = 20
# a printed annual average is the mean of the unrounded months: allow the rounding of 13 numbers
ANNUAL_TOLERANCE_DEGC = 0.1


def nbs_rows() -> list[dict]:
    rows = []
    for year, text in NBS.items():
        for line in text.strip().splitlines():
            name, *values = line.split()
            numbers = [float(v) for v in values]
            if len(numbers) != 13:
                raise SystemExit(f"NBS {year} {name}: {len(numbers)} numbers, not 12 months + annual")
            months, annual = numbers[:12], numbers[12]
            if abs(sum(months) / 12 - annual) > ANNUAL_TOLERANCE_DEGC:
                raise SystemExit(f"NBS {year} {name}: months average {sum(months) / 12:.2f}, table says {annual}")
            rows.append({"city": CITY[name], "source": "nbs", "period": str(year), **dict(zip(MONTHS, months)),
                         "annual": annual})
    return rows


def cma_rows() -> list[dict]:
    for what, values in CMA_XIAN.items():
        if abs(sum(values[:12]) / 12 - values[12]) > ANNUAL_TOLERANCE_DEGC:
            raise SystemExit(f"CMA Xi'an {what}: months average {sum(values[:12]) / 12:.2f}, table says {values[12]}")
    half = (CMA_XIAN["max"][12] - CMA_XIAN["min"][12]) / 2
    print(f"Xi'an diurnal half-range (annual mean max - mean min) / 2 = {half:.2f} degC", file=sys.stderr)
    mean = CMA_XIAN["mean"]
    return [{"city": "xian", "source": "cma", "period": "1981-2010", **dict(zip(MONTHS, mean[:12])), "annual": mean[12]}]


def gsod_rows() -> list[dict]:
    with GSOD_DAILY.open(newline="") as fh:
        days = list(csv.DictReader(fh))
    by_year_month: dict[tuple[str, str], list[list[float]]] = {}
    for d in days:
        year, month = d["date"][:4], int(d["date"][5:7])
        months = by_year_month.setdefault((d["city"], year), [[] for _ in MONTHS])
        months[month - 1].append((float(d["temp_f"]) - 32.0) / 1.8)
    rows = []
    for (city, year), months in by_year_month.items():
        if min(len(m) for m in months) < GSOD_MIN_DAYS_PER_MONTH:
            raise SystemExit(f"GSOD {city} {year}: a month has fewer than {GSOD_MIN_DAYS_PER_MONTH} days")
        means = [sum(m) / len(m) for m in months]
        rows.append({"city": city, "source": "gsod", "period": year, **{k: round(v, 1) for k, v in zip(MONTHS, means)},
                     "annual": round(sum(means) / 12, 1)})
    return rows


def chelsa_rows(existing: list[dict]) -> list[dict]:
    try:
        import world_temperature_data as wtd
    except ImportError:
        print("world-temperature-data not installed: keeping the CSV's chelsa rows", file=sys.stderr)
        return [r for r in existing if r["source"] == "chelsa"]
    rows = []
    for name, slug in CHELSA_CITIES.items():
        rec = wtd.by_city(name, "CN")
        rows.append({"city": slug, "source": "chelsa", "period": "1981-2010",
                     **{m: rec["monthly"][m] for m in MONTHS}, "annual": rec["annual_c"]})
    return rows


def main() -> None:
    with OUT.open(newline="") as fh:
        existing = list(csv.DictReader(fh))
    rows = chelsa_rows(existing) + nbs_rows() + cma_rows() + gsod_rows()
    with OUT.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["city", "source", "period", *MONTHS, "annual"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
