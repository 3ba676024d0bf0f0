"""A real Chromium (Debian's, driven by Playwright) for the web client's tests, at a phone's
viewport and a desktop's, with screenshots kept when a test fails (and always, for
`make screenshots`), under test-output/screenshots/."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Headless as root, and quiet: this machine's network is closed, so nothing may call home.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORTS: dict[str, dict[str, Any]] = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
# What every page records for the tests: layout shifts not caused by input, and Content-
# Security-Policy violations (an injected script would be one).
WATCH = """
window.__cls = 0;
window.__violations = [];
new PerformanceObserver((list) => {
  for (const shift of list.getEntries()) if (!shift.hadRecentInput) window.__cls += shift.value;
}).observe({ type: "layout-shift", buffered: true });
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
"""


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make test`, which installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class Browse:
    """Opens pages of one system in fresh browser contexts (each its own cookies: a person)."""

    def __init__(self, browser: Browser, viewport: str, test: str) -> None:
        self.browser, self.viewport, self.test = browser, viewport, re.sub(r"\W+", "-", test).strip("-")
        self.pages: list[Page] = []
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def __call__(self, url: str, **options: Any) -> Page:
        context = self.browser.new_context(base_url=url, **VIEWPORTS[self.viewport], **options)
        context.add_init_script(WATCH)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.contexts.append(context)
        self.pages.append(page)
        return page

    def shot(self, page: Page, name: str, always: bool = False) -> None:
        """Keep a screenshot of `page` when screenshots are asked for (`make screenshots`)."""
        if always or os.environ.get("SCREENSHOTS"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"{self.viewport}-{name}.png", full_page=True)

    def close(self, failed: bool) -> None:
        for i, page in enumerate(self.pages):
            if failed and not page.is_closed():
                try:
                    self.shot(page, f"FAILED-{self.test}-{i}", always=True)
                except Exception:  # a page that cannot draw any more: its screenshot is not the point
                    pass
        for context in self.contexts:
            context.close()


def browse_fixture(request: pytest.FixtureRequest, chromium: Browser, viewport: str) -> Iterator[Browse]:
    browse = Browse(chromium, viewport, request.node.name)
    yield browse
    report = getattr(request.node, "rep_call", None)
    violations = [page.evaluate("window.__violations") for page in browse.pages if not page.is_closed()]
    browse.close(failed=report is None or report.failed)
    assert browse.errors == [], f"uncaught errors in the page: {browse.errors}"
    assert not any(violations), f"Content-Security-Policy violations: {violations}"
