"""The live app in a real browser: ``v2gsim viz FILE`` as a server, headless Chromium as the user.

As in tests/test_browser_report.py, Playwright drives Debian's ``/usr/bin/chromium`` (Playwright
cannot download its own browser here; ``bash setup.sh test`` installs the package) and the test
FAILS, never skips, when the browser is missing. It installs nothing itself.

The page must load nothing from outside the server (Solara's CDN files come from the
solara-assets package). Set ``V2GSIM_VIZ_SCREENSHOT=docs/viz_screenshot.png`` to refresh the
screenshot in the docs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from browser import chromium_context
from v2gsim.scenario import bundled_scenarios

NAME = "混合城区：三种 V2G 商业模式（实时）"
START_TIMEOUT_S = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``v2gsim viz`` on a free port, serving mixed_city under a Chinese name (a FILE, as users give one)."""
    folder = tmp_path_factory.mktemp("viz")
    scenario = folder / "mixed_city_cn.yaml"
    scenario.write_text(f"extends: {bundled_scenarios()['mixed_city']}\nname: {NAME}\n", encoding="utf-8")
    port = _free_port()
    log = open(folder / "server.log", "w+")
    # its own session: the test ends the server and Solara's process under it together
    proc = subprocess.Popen([sys.executable, "-m", "v2gsim.cli", "viz", str(scenario), "--port", str(port), "--host", "127.0.0.1",
                             "--no-browser"], stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"v2gsim viz did not serve {url} within {START_TIMEOUT_S} s:\n{log.read()}")
                time.sleep(0.3)
        log.seek(0)
        assert f" at {url} " in log.read()  # the URL it printed is the one that serves
        yield url, folder / "server.log"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    yield from chromium_context(tmp_path_factory, viewport={"width": 1600, "height": 1300})


def _step_text(page) -> str:
    return page.inner_text(".v2g-step")


def _steps_done(page) -> int:
    return int(_step_text(page).split()[1])  # "step 12 of 672"


def _settled(page, quiet_s: float = 3.0, timeout_s: float = 20.0) -> int:
    """The step count once it has not changed for ``quiet_s``."""
    last, since, end = _steps_done(page), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < end:
        time.sleep(0.2)
        now = _steps_done(page)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
    raise AssertionError(f"the step count kept changing after pause (at {last})")


def test_live_app_steps_plays_and_resets_in_chromium(server, browser, tmp_path):
    url, log = server
    t0 = time.monotonic()
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    step, play = page.get_by_role("button", name="Step"), page.get_by_role("button", name="▶")
    step.wait_for(timeout=30_000)
    page.locator(".v2g-step", has_text="step 0 of 672").wait_for(timeout=15_000)
    assert page.inner_text(".v2g-status h3") == NAME  # UTF-8 all the way from the YAML to the page

    step.click()  # one click: one render interval (5 steps)
    page.locator(".v2g-step", has_text="step 5 of 672").wait_for(timeout=15_000)
    curve = page.locator(".v2g-load-curve img")
    curve.wait_for(timeout=15_000)
    before = curve.screenshot()
    src_before = curve.get_attribute("src")
    assert page.locator(".v2g-soc img").count() == 1 and page.locator(".v2g-stations img").count() == 1
    assert "no feeder network" in page.inner_text(".v2g-voltages")  # mixed_city has a single transformer

    # refreshing the docs' screenshot plays a day (96 steps) so that it shows a day's curve
    target = 100 if os.environ.get("V2GSIM_VIZ_SCREENSHOT") else 25
    play.click()
    page.wait_for_function("() => /step (\\d+) of/.test(document.querySelector('.v2g-step')?.textContent || '') && "
                           "parseInt(document.querySelector('.v2g-step').textContent.match(/step (\\d+) of/)[1]) >= " + str(target),
                           timeout=30_000 if target == 25 else 180_000)
    page.get_by_role("button", name="❚❚").click()
    play.wait_for(timeout=10_000)  # paused: the ▶ button is back
    done = _settled(page)  # the tick in flight when pause was pressed may still land
    assert done >= target  # (pause may stop a tick between its 5 steps)
    time.sleep(2.0)  # paused means paused
    assert _steps_done(page) == done
    after = curve.screenshot()
    assert after != before and curve.get_attribute("src") != src_before  # the load curve grew
    w, h = curve.evaluate("e => [e.naturalWidth, e.naturalHeight]")
    assert w > 300 and h > 100

    shot = tmp_path / "viz.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("V2GSIM_VIZ_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["V2GSIM_VIZ_SCREENSHOT"])

    page.get_by_role("button", name="Reset").click()
    page.locator(".v2g-step", has_text="step 0 of 672").wait_for(timeout=15_000)
    assert page.locator(".v2g-load-curve img").count() == 0  # a new run: nothing recorded yet

    assert errors == [], errors
    host = url.rstrip("/")
    assert [u for u in requests if not (u.startswith(host) or u.startswith("data:") or u.startswith("blob:"))] == []
    assert time.monotonic() - t0 < 60
