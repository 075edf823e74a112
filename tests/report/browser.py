"""The HTML run report as a user's browser shows it: Debian's Chromium, headless, via playwright.

Playwright's own browser download is never used; scripts/services/chromium.sh installs
/usr/bin/chromium (Debian's package).
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
# What works on this machine (closed network: background connections are refused).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass(frozen=True)
class Page:
    console_errors: list[str]
    bars: int  # timeline bars (one per job)
    table_rows: int
    colours: int  # distinct colours in the screenshot
    first_row_after_sort: str  # the job column's first cell after a click on the "ran" column


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = "Debian's chromium is not installed (sudo bash scripts/services/chromium.sh)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def open_report(path: Path) -> Page:
    """Load the file offline (every other request is refused) and read what it shows."""
    require_chromium()
    from PIL import Image
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                   else route.abort())
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        bars = page.locator("#timeline g.bar").count()
        rows = page.locator("table.jobs tbody tr").count()
        shot = page.screenshot(full_page=False)
        page.locator("table.jobs th", has_text="ran").first.click()
        page.locator("table.jobs th", has_text="ran").first.click()  # descending: the longest first
        first = page.locator("table.jobs tbody tr").first.locator("td").first.inner_text()
        context.close()
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    return Page(errors, bars, rows, len(colours), first)
