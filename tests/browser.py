"""Open a page in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium) and
report what a person would see: which figures rendered, and what the console complained about."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Everything on the page that is a figure: inlined PNGs (the report) and Vega embeds (dvc plots).
_PROBE = """
const imgs = Array.from(document.querySelectorAll('img'));
// DVC writes one <div id=...> per plot under <body>; vega-embed replaces its content with the chart
const vegas = Array.from(document.querySelectorAll('body > div[id]'));
return {
  images: imgs.map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0, width: i.naturalWidth})),
  vega: vegas.map(d => ({id: d.id, ok: !!d.querySelector('svg, canvas') &&
                         d.getBoundingClientRect().height > 20})),
  title: document.title,
};
"""


@dataclass
class Rendered:
    images: list[dict]
    vega: list[dict]
    console_errors: list[str]
    title: str

    @property
    def figures(self) -> list[dict]:
        return self.images + self.vega

    @property
    def broken(self) -> list[str]:
        return [f.get("alt") or f.get("id") for f in self.figures if not f["ok"]]


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def require() -> None:
    if not available():
        pytest.skip("Debian chromium and chromium-driver are not installed (.ci/run installs them)")


def render(page: Path, settle_s: float = 3.0) -> Rendered:
    """Load `page` (a local file) in headless Chromium, wait for its figures, and probe them."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # No network here: keep Chromium from reaching out (each refused connection is console noise).
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1600,1200", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(120)
        driver.get(page.resolve().as_uri())

        def settled(d):
            state = d.execute_script(_PROBE)
            return state if all(f["ok"] for f in state["images"] + state["vega"]) else False

        try:
            state = WebDriverWait(driver, settle_s * 10, poll_frequency=0.5).until(settled)
        except Exception:  # timed out: report what did render
            state = driver.execute_script(_PROBE)
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        return Rendered(state["images"], state["vega"], errors, state["title"])
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
