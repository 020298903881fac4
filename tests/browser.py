"""Headless Debian Chromium driven by Selenium, as the browser tests' user.

``make setup`` installs ``chromium`` and ``chromium-driver`` from Debian; nothing is downloaded
at test time (Selenium Manager is never asked, the driver's path is given).
"""

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

# Flags for a closed network: no background fetches, no first-run pages, no sync.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def _find(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{names[0]} is not installed: run `make setup` (it installs Debian's chromium and "
        "chromium-driver) or `apt-get install chromium chromium-driver`."
    )


@contextmanager
def chromium(width: int = 1600, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _find("chromium", "chromium-browser")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(_find("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, timeout: float = 60, what: str = "the page"):
    """``condition(driver)`` once it is truthy; fails naming ``what`` after ``timeout`` s."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition(driver)
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException):
            pass  # the single-page app re-rendered under us: look again
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout:.0f} s waiting for {what} ({driver.current_url})"
            )
        time.sleep(0.3)


def screenshot_folder(tmp_path_factory) -> Path:
    """Where screenshots go: ``$LOSSEARCH_SCREENSHOTS`` (``make screenshots``) or a temp folder."""
    folder = os.environ.get("LOSSEARCH_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
