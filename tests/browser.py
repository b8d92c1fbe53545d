"""Debian's Chromium driven by Playwright for the browser tests (Playwright's own browser download
is not reachable here): one place for the executable, its flags and the failure sentences."""

from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# without the background-networking flags Chromium keeps calling home, and the closed network
# here refuses every one of those connections
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def chromium_context(tmp_path_factory, viewport: dict) -> Iterator:
    """A headless Chromium context with a fresh profile (yielded; closed after). Fails — never
    skips — when the browser or Playwright is missing: the README's test command installs both."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium package; run 'bash setup.sh test' "
                    "(it installs it) or 'apt-get install chromium'")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: install the dev extra (pip install -e '.[dev]')")
    with sync_playwright() as p:
        # a fresh profile each time: --user-data-dir is what launch_persistent_context takes
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=viewport)
        yield context
        context.close()
