"""The Figure every v2gsim plot returns: built without pyplot, shown inline by Jupyter, able to
draw Chinese text.

- Jupyter displays an object through its ``_repr_png_``; a bare ``matplotlib.figure.Figure``
  only gets one when pyplot's inline backend is active, so notebooks printed
  ``<Figure size 1000x400 with 1 Axes>``. `V2GFigure` renders itself with the Agg canvas.
- Scenario names, site and station ids may be Chinese. Matplotlib's default font (DejaVu Sans)
  has no CJK glyphs, so every text of a `V2GFigure` falls back to Noto Sans CJK SC (shipped by
  the ``mplfonts`` package, SIL Open Font License) for the glyphs its own family lacks. The font
  file is registered with matplotlib's font manager on first draw; rcParams stay untouched.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

CJK_FAMILY = "Noto Sans CJK SC"
_CJK_FILE = "NotoSansCJKsc-Regular.otf"


@functools.cache
def cjk_font_file() -> Path | None:
    """The Noto Sans CJK SC font file shipped by ``mplfonts`` (found without importing it), or None."""
    spec = importlib.util.find_spec("mplfonts")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "fonts" / _CJK_FILE
        if path.is_file():
            return path
    return None


@functools.cache
def cjk_family() -> str | None:
    """Register the CJK font with matplotlib once; its family name, or None without the font."""
    path = cjk_font_file()
    if path is None:
        return None
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(path))
    return CJK_FAMILY


class V2GFigure(Figure):
    """A matplotlib Figure that draws CJK text and shows itself in Jupyter without pyplot."""

    def draw(self, renderer):
        family = cjk_family()
        if family is not None:  # per-glyph fallback: the text's own font first, then CJK
            for text in self.findobj(Text):
                families = list(text.get_fontfamily())
                if family not in families:
                    text.set_fontfamily([*families, family])
        return super().draw(renderer)

    def _repr_png_(self) -> bytes:
        if self.canvas is None or not hasattr(self.canvas, "print_png"):
            FigureCanvasAgg(self)
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100)
        return buf.getvalue()


def new_figure(figsize: tuple[float, float]) -> V2GFigure:
    """An empty `V2GFigure` with constrained layout."""
    return V2GFigure(figsize=figsize, layout="constrained")
