"""The pieces of a self-contained HTML page: escaped text, tables, embedded figures.

Nothing here reaches outside the page: figures are PNG data URIs, the style sheet is inline,
there are no scripts, fonts or links to other files, so a report opens offline and can be
mailed as one file.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Sequence
from html import escape

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGURE_DPI = 100

# System fonts only (no web fonts: the page must open offline); the CJK families come after the
# Latin ones so that Chinese names use the first of them the reader's system has.
CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, "Segoe UI", "Noto Sans", "DejaVu Sans", "Noto Sans CJK SC", "PingFang SC",
       "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 1.5rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
p.lead { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .2rem .55rem; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.unit { color: #57606a; white-space: nowrap; }
.kpi-groups, .side { display: flex; flex-wrap: wrap; gap: 0 1.5rem; align-items: flex-start; }
.side > * { flex: 1 1 420px; min-width: 0; }
figure { margin: .8rem 0 1.4rem; break-inside: avoid; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { font-size: .85rem; color: #57606a; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; font-size: .8rem; }
details summary { cursor: pointer; font-weight: 600; }
.note { color: #57606a; font-size: .9rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; }
  table, figure { break-inside: avoid; }
}
"""


def text(value) -> str:
    """``value`` as escaped HTML text."""
    return escape(str(value), quote=True)


def number(value) -> str:
    """A KPI value for people: thousands separated, a few significant digits, n/a for NaN."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.1f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.3g}"


def table(header: Sequence[str], rows: Iterable[Sequence], *, numeric: Sequence[bool] | None = None,
          units: int | None = None) -> str:
    """An HTML table; ``numeric[j]`` columns are formatted with `number` and right-aligned,
    column ``units`` is styled as a unit."""
    numeric = numeric or [False] * len(header)
    head = "".join(f"<th>{text(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for j, v in enumerate(row):
            if numeric[j]:
                cells.append(f'<td class="num">{text(number(v))}</td>')
            elif j == units:
                cells.append(f'<td class="unit">{text(v)}</td>')
            else:
                cells.append(f"<td>{text(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def frame(df, index_label: str, labels: Sequence[str] | None = None) -> str:
    """A DataFrame as a table: its index first (headed ``index_label``), then its columns
    (headed ``labels``, default their names with spaces); numeric columns right-aligned."""
    from pandas.api.types import is_numeric_dtype

    header = [index_label, *(labels or [str(c).replace("_", " ") for c in df.columns])]
    numeric = [False, *(is_numeric_dtype(df[c]) for c in df.columns)]
    rows = ((i, *r) for i, r in zip(df.index, df.itertuples(index=False, name=None)))
    return table(header, rows, numeric=numeric)


def key_values(rows: Iterable[tuple[str, object]]) -> str:
    """A two-column table of labels and values (values as given, escaped)."""
    return "<table>" + "".join(f"<tr><th>{text(k)}</th><td>{text(v)}</td></tr>" for k, v in rows) + "</table>"


def png_data_uri(fig: Figure) -> tuple[str, int, int]:
    """The figure as a PNG data URI and its size in pixels."""
    if fig.canvas is None or not hasattr(fig.canvas, "print_png"):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # no metadata: the same result gives the same page, byte for byte
    fig.savefig(buf, format="png", dpi=FIGURE_DPI, metadata={"Software": None})
    w, h = (round(x) for x in fig.get_size_inches() * FIGURE_DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), w, h


def figure(fig: Figure, name: str, caption: str, run: str | None = None) -> str:
    """A ``<figure>`` holding ``fig`` embedded as PNG; ``name`` goes into ``data-plot`` (and
    ``run``, in a comparison, into ``data-run``)."""
    uri, w, h = png_data_uri(fig)
    of_run = f' data-run="{text(run)}"' if run is not None else ""
    return (f'<figure class="plot" data-plot="{text(name)}"{of_run}><img src="{uri}" width="{w}" height="{h}" alt="{text(caption)}">'
            f"<figcaption>{text(caption)}</figcaption></figure>")


def details(summary: str, body_html: str) -> str:
    """A collapsed section (open it to read)."""
    return f"<details><summary>{text(summary)}</summary>{body_html}</details>"


def page(title: str, body_html: str) -> str:
    """A whole HTML document: UTF-8, inline style sheet, nothing loaded from elsewhere."""
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="v2gsim"><title>{text(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n{body_html}\n</body></html>\n")
