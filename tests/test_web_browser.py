"""The web console in a real headless Chromium (SQLite): sign in through a link, create an activity,
record hours for its roster, approve a pending hour record and a volunteer's correction, download the xlsx, and read a notice on a
phone-sized screen. ``WEB_SCREENSHOTS=DIR`` also saves the pictures shown in docs/."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from common.i18n import _
from models import HourRecord
from models.corrections import HourCorrection
from services.activities import join_activity
from services.corrections import request_correction
from services.hours_review import add_hours
from services.notice_links import sign_notice
from services.notify import notify_person
from services.people import get_or_create_identity
from tests.browser import off_loop, require_chromium, start_chromium
from tests.conftest import TEST_KEY
from tests.helpers import make_coordinator, person_of, register
from tests.web_harness import WebHarness

SHOTS = os.environ.get("WEB_SCREENSHOTS")


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:  # the browser tests run on SQLite only
    import shutil

    path = tmp_path / "volunteer.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def chrome(tmp_path: Path) -> AsyncIterator[object]:
    require_chromium()
    (tmp_path / "downloads").mkdir()
    driver = await off_loop(start_chromium, tmp_path / "profile", tmp_path / "downloads")
    yield driver
    await off_loop(driver.quit)


def shot(driver, name: str) -> None:  # noqa: ANN001
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


async def test_a_coordinators_afternoon_in_the_browser(chrome, core, sessions, console, clock, tmp_path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chrome
    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    await register(console("alice"), "王小丽")
    alice = await person_of(sessions, "console", "alice")
    async with sessions() as session:
        pending = await add_hours(session, person_id=alice.id, hours=1.5, served_on=date(2026, 2, 27),
                                  organization_id=org, source="visit", note="入户探访", recorded_by=alice.id,
                                  now=clock.now)
        await session.commit()

    async with WebHarness(core, sessions) as web:
        def fill_activity_form() -> str:
            driver.get(web.base + "/admin/activities")
            driver.find_element(By.ID, "new-activity").click()
            form = driver.find_element(By.ID, "activity-form")
            form.find_element(By.NAME, "title").send_keys("社区环境整治")
            form.find_element(By.NAME, "place").send_keys("花家地北里")
            form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            WebDriverWait(driver, 10).until(lambda d: "ok=created" in d.current_url)
            return driver.current_url

        # sign in through a link: the cookie is set and the dashboard shows
        await off_loop(driver.get, web.base + await web.login_link("console", "coord"))
        assert driver.current_url == web.base + "/admin/"
        assert "入户探访" not in driver.page_source and "王小丽" in driver.page_source  # the pending card
        activity_url = await off_loop(fill_activity_form)
        activity_id = int(activity_url.split("/")[-1].split("?")[0])
        async with sessions() as session:
            await join_activity(session, activity_id=activity_id, person_id=alice.id, now=clock.now)
            await session.commit()

        def record_roster() -> str:
            driver.get(web.base + f"/admin/activities/{activity_id}")
            shot(driver, "roster")
            driver.find_element(By.ID, "record-hours").click()
            WebDriverWait(driver, 10).until(lambda d: "ok=hours_recorded" in d.current_url)
            return driver.page_source

        assert "✓" in await off_loop(record_roster)
        async with sessions() as session:  # alice left early: she asks for 1.5 h instead of 2
            recorded = (await session.exec(select(HourRecord).where(HourRecord.activity_id == activity_id))).one()
            correction = await request_correction(session, record_id=recorded.id, person_id=alice.id, hours=1.5,
                                                  reason="提前离开了", now=clock.now)
            await session.commit()

        def approve_and_download() -> Path:
            driver.get(web.base + "/admin/ledger?from=2026-01-01&to=2026-12-31")
            driver.find_element(By.CSS_SELECTOR, f"button[data-review='{pending.id}']").click()
            WebDriverWait(driver, 10).until(lambda d: "ok=approved" in d.current_url)
            driver.find_element(By.CSS_SELECTOR, f"button[data-correction='{correction.id}']").click()
            WebDriverWait(driver, 10).until(lambda d: "ok=correction_approve" in d.current_url)
            driver.get(web.base + "/admin/ledger?from=2026-01-01&to=2026-12-31&q=王")
            driver.find_element(By.ID, "download-xlsx").click()
            downloads = tmp_path / "downloads"
            WebDriverWait(driver, 20).until(lambda _d: any(p.suffix == ".xlsx" for p in downloads.iterdir()))
            return next(p for p in downloads.iterdir() if p.suffix == ".xlsx")

        xlsx_file = await off_loop(approve_and_download)
        async with sessions() as session:
            assert (await session.get(HourRecord, pending.id)).approved is True
            assert (await session.get(HourCorrection, correction.id)).status == "approved"
        assert recorded.hours == 2
        import openpyxl

        rows = [row for row in openpyxl.load_workbook(xlsx_file).active.iter_rows(values_only=True)]
        activity_row = next(row for row in rows if "社区环境整治" in row)
        assert activity_row[1] == "王小丽" and activity_row[6] == 1.5 and "提前离开了" in activity_row
        assert not any("13800138000" in str(cell) for row in rows for cell in row)

        def dashboard() -> str:
            driver.get(web.base + "/admin/")
            shot(driver, "dashboard")
            return driver.page_source

        assert "<svg" in await off_loop(dashboard)

        # a notice opened from a WeChat template message, on a phone-sized screen
        async with sessions() as session:
            identity, _person = await get_or_create_identity(session, channel="wechat", external_id="o_alice",
                                                             now=clock.now)
            identity.person_id = alice.id
            session.add(identity)
            [row] = await notify_person(session, person_id=alice.id, now=clock.now, identity_ids=[identity.id],
                                        message=_("你 {day} 的 {hours} 小时志愿时长已通过审核，已计入累计时长。",
                                                  day="2026-02-27", hours="1.5"))
            await session.commit()

        def phone_notice() -> tuple[str, int, int]:
            driver.set_window_size(390, 844)
            driver.get(web.base + "/n/" + sign_notice(row.id, secret=TEST_KEY, now=clock.now))
            shot(driver, "notice")
            return (driver.find_element(By.TAG_NAME, "main").text,
                    driver.execute_script("return document.documentElement.scrollWidth"),
                    driver.execute_script("return window.innerWidth"))

        text, scroll_width, width = await off_loop(phone_notice)
        assert "你 2026-02-27 的 1.5 小时志愿时长已通过审核，已计入累计时长。" in text
        assert scroll_width <= width  # nothing sticks out sideways on a phone
