"""The report in a real browser: headless Chromium (Debian's package) driven by Playwright.

Playwright cannot download its own browser here, so it drives ``/usr/bin/chromium``; the
README's test command (``bash setup.sh test``) installs it. Without it this test FAILS (it does
not skip): a report nobody has seen render is not tested.

Set ``V2GSIM_SCREENSHOT=docs/report_screenshot.png`` to refresh the screenshot in the docs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from browser import chromium_context
from v2gsim.cli import main

NAME = "混合城区：三种 V2G 商业模式（一天）"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    yield from chromium_context(tmp_path_factory, viewport={"width": 1280, "height": 2400})


def open_page(context, path: Path):
    """Load ``path`` and collect console errors, page errors and every request it makes."""
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, requests


def images_ok(page) -> list:
    return page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")


def test_mixed_city_report_renders_in_chromium(browser, tmp_path, capsys):
    out = tmp_path / "mixed_city"
    assert main(["run", "mixed_city", "--set", "time.horizon_days=1", "--set", f"name={NAME}", "-o", str(out),
                 "--no-progress", "--no-plots", "--report"]) == 0
    page, errors, requests = open_page(browser, out / "report.html")
    assert errors == []
    # the page itself and nothing else: images are data: URIs, which are not requests
    assert [u for u in requests if not u.startswith("data:")] == [(out / "report.html").as_uri()]
    imgs = images_ok(page)
    assert len(imgs) == 6 and all(done and w > 0 and h > 0 for done, w, h in imgs), imgs  # with the operators' and drivers' money plots
    assert page.locator("figure.plot").count() == 6
    assert page.inner_text("h1") == NAME and NAME in page.title()  # UTF-8 decoded as such by the browser
    # the scenario as resolved is there, folded until opened
    assert not page.is_visible("details pre") or page.locator("details[open]").count() > 0
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1280, "height": 2400})
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("V2GSIM_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["V2GSIM_SCREENSHOT"])


def test_compare_report_renders_in_chromium(browser, tmp_path, capsys):
    a, b = tmp_path / "smoke_a", tmp_path / "smoke_b"
    for folder, count in ((a, 12), (b, 30)):
        assert main(["run", "smoke", "--set", "time.horizon_days=1", "--set", f"population.0.count={count}", "-o", str(folder),
                     "--no-progress", "--no-plots"]) == 0
    dest = tmp_path / "compare.html"
    assert main(["compare", str(a), str(b), "--report", str(dest)]) == 0
    page, errors, requests = open_page(browser, dest)
    assert errors == [] and [u for u in requests if not u.startswith("data:")] == [dest.as_uri()]
    imgs = images_ok(page)
    assert len(imgs) == 5 and all(done and w > 0 for done, w, _ in imgs), imgs
