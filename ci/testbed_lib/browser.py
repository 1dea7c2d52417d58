"""A headless browser for the report page's screenshot test: Debian's Chromium, installed on the host.

The test renders a report and has Chromium draw it (``--headless=new --screenshot``): only a browser shows whether
the inline plotly.js really draws the plots.
"""

from __future__ import annotations

import shutil

from testbed_lib.common import TestbedError, apt_install, log

NAMES = ("chromium", "chromium-browser", "google-chrome")  # Debian's name first; others where a machine has them


def find_browser() -> str | None:
    """The path of a Chromium on PATH, or None."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_browser() -> str:
    """The path of Chromium, installed with apt when missing."""
    if not find_browser():
        apt_install(["chromium"])
    found = find_browser()
    if not found:
        raise TestbedError("headless browser", "chromium is installed but no chromium program is on PATH", [])
    log(f"  chromium: {found}")
    return found
