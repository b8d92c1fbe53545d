"""Self-contained HTML reports: one page per run (`v2gsim report DIR`, `v2gsim run --report`)
and one page comparing runs side by side (`v2gsim compare A B --report FILE`).

A page holds everything it shows: figures are embedded PNG images, the style sheet is inline,
nothing is fetched from the network, so it opens offline and can be mailed as one file. Pages
are built from Results only (a saved result folder or a finished run), never from a model.
"""

from __future__ import annotations

import os
from pathlib import Path

from v2gsim.report.compare import build_compare_report
from v2gsim.report.page import build_report, find_ledger
from v2gsim.result_folder import write_file

__all__ = ["REPORT_FILE", "build_compare_report", "build_report", "write_compare_report", "write_report"]

REPORT_FILE = "report.html"


def _write_text(path: str | os.PathLike, text: str, overwrite: bool) -> Path:
    return write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite)


def write_report(directory: str | os.PathLike, out: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
    """Write the report of the result in ``directory`` to ``out`` (default ``directory/report.html``).

    A report inside a result folder becomes one of its files (listed in its metadata.json).
    An existing file is replaced only with ``overwrite``; the page appears in one rename.

    Raises:
        FileNotFoundError: ``directory`` holds no v2gsim result.
        v2gsim.errors.OutputError: ``out`` exists (without ``overwrite``), is a folder, or cannot be written.
    """
    from v2gsim.result_folder import check_file
    from v2gsim.results import Results

    target = Path(out) if out is not None else Path(directory) / REPORT_FILE
    results = Results.load(directory)
    check_file(target, overwrite=overwrite)  # before the figures are drawn
    return _write_text(target, build_report(results, ledger=find_ledger(results, directory)), overwrite)


def write_compare_report(runs: dict, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the side-by-side report of ``runs`` (label -> Results) to ``out``."""
    return _write_text(out, build_compare_report(runs), overwrite)
