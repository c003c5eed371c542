"""Headless Chromium for browser tests: Debian's `chromium` driven by Playwright.

Playwright cannot download its own browser here, so it drives the system Chromium through
`executable_path`. `make test` installs the `chromium` package (see `scripts/browser-deps.sh`).
Use the `browser` fixture (tests/conftest.py) and `new_page(browser)`; save screenshots with
`screenshot(page, name)` into `$GROWTH_STACK_SCREENSHOTS` (default: the test's tmp folder is not kept).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Without these, Chromium tries Google's hosts at start and on a closed network that fails noisily.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    """The system Chromium, or a RuntimeError that says how to install it."""
    path = os.environ.get("GROWTH_STACK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium is not installed: run `apt-get install chromium` (make test does it) "
                           "or point GROWTH_STACK_CHROMIUM at a Chromium binary.")
    return path


def launch(playwright):
    """A headless Chromium browser from a started `sync_playwright()`."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)


def new_page(browser, width: int = 1280, height: int = 800):
    """A page in a fresh context (no shared cookies or storage) at the given viewport."""
    context = browser.new_context(viewport={"width": width, "height": height})
    return context.new_page()


def screenshot(page, name: str) -> Path | None:
    """Save a PNG of the page as `<name>.png` under `$GROWTH_STACK_SCREENSHOTS`, if that is set."""
    folder = os.environ.get("GROWTH_STACK_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=False)
    return path
