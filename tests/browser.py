"""A headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium, for the few
browser tests; they skip, saying why, where it is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")
T = TypeVar("T")


def require_chromium() -> None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(f"no headless browser: {CHROMIUM} and chromedriver are needed "
                    "(apt-get install chromium chromium-driver; .ci/run does it)")


def start_chromium(profile: Path, downloads: Path, *, width: int = 1280, height: int = 900) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


async def off_loop(func: Callable[..., T], *args: Any) -> T:
    """Selenium blocks: it runs in a thread while the event loop serves the pages it asks for."""
    return await asyncio.to_thread(func, *args)
