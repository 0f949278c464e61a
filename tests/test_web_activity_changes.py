"""An activity's changes in the web console over HTTP on SQLite and PostgreSQL: edit and cancel with the
chat's notices, no-shows on the roster, the roster's downloads — and each refused to another station's
coordinator, a volunteer and a form without its CSRF token, writing nothing."""

from __future__ import annotations

import io
import json

from sqlmodel import select

from models import Activity, Delivery, Signup
from models.activity_changes import ActivityChange
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.test_web_console import options, two_orgs, web  # noqa: F401 - the console's fixtures

EDIT = {"title": "社区敬老院探访", "place": "幸福敬老院", "capacity": "10", "description": "陪老人聊天、读报"}


async def _edit_form(browser, activity_id: int) -> dict[str, str]:  # noqa: ANN001
    _status, body = await browser.get(f"/admin/activities/{activity_id}")
    start = body.split('name="start" value="', 1)[1].split('"', 1)[0]
    end = body.split('name="end" value="', 1)[1].split('"', 1)[0]
    return {**EDIT, "start": start, "end": end}


async def _changes(sessions, activity_id: int) -> list[ActivityChange]:  # noqa: ANN001
    async with sessions() as session:
        return list(await session.exec(select(ActivityChange).where(ActivityChange.activity_id == activity_id)))


async def _notices(sessions) -> list[str]:  # noqa: ANN001
    async with sessions() as session:
        rows = await session.exec(select(Delivery).where(Delivery.source == "activity_change"))
        return [json.dumps(row.message, ensure_ascii=False) for row in rows]


async def test_an_activity_is_edited_with_the_chats_rules_and_notices(web, two_orgs, sessions) -> None:  # noqa: ANN001, F811
    browser = await web.signed_in("console", "coord_a")
    activity, _record = two_orgs["acts"][two_orgs["a"]]
    form = await _edit_form(browser, activity.id)
    for changes, words in (({}, "没有修改任何一项"), ({"title": "x"}, "名称"), ({"capacity": "abc"}, "数字"),
                           ({"start": "2020-01-01T09:00"}, "开始时间已经过去了"),
                           ({"end": form["start"]}, "结束时间要晚于开始时间"),
                           ({"capacity": "0"}, "数字")):
        status, body = await browser.post(f"/admin/activities/{activity.id}/edit", {**form, **changes})
        assert status == 400 and words in body, (changes, body[:300])
    assert await _changes(sessions, activity.id) == [] and await _notices(sessions) == []
    status, where = await browser.post(f"/admin/activities/{activity.id}/edit",
                                       {**form, "title": "敬老院读报", "place": "幸福敬老院二楼", "capacity": "12"})
    assert (status, where) == (303, f"/admin/activities/{activity.id}?ok=activity_edited")
    async with sessions() as session:
        changed = await session.get(Activity, activity.id)
        assert (changed.title, changed.place, changed.capacity) == ("敬老院读报", "幸福敬老院二楼", 12)
    assert sorted(c.field for c in await _changes(sessions, activity.id)) == ["capacity", "place", "title"]
    assert len(await _notices(sessions)) == 3  # one notice per change, to alice, as from the chat


async def test_an_activity_is_cancelled_with_a_reason(web, two_orgs, sessions) -> None:  # noqa: ANN001, F811
    browser = await web.signed_in("console", "coord_a")
    activity, _record = two_orgs["acts"][two_orgs["a"]]
    await browser.get(f"/admin/activities/{activity.id}")
    status, body = await browser.post(f"/admin/activities/{activity.id}/cancel", {"reason": "x"})
    assert status == 400 and "原因需要 2–200 个字" in body
    status, where = await browser.post(f"/admin/activities/{activity.id}/cancel", {"reason": "暴雨预警"})
    assert (status, where) == (303, f"/admin/activities/{activity.id}?ok=activity_cancelled")
    [notice] = await _notices(sessions)
    assert "已取消" in notice and "暴雨预警" in notice
    status, body = await browser.post(f"/admin/activities/{activity.id}/cancel", {"reason": "暴雨预警"})
    assert status == 409 and "已经取消了" in body


async def test_no_shows_are_marked_and_the_roster_downloads(web, two_orgs, sessions, clock) -> None:  # noqa: ANN001, F811
    import openpyxl

    browser = await web.signed_in("console", "coord_a")
    activity, _record = two_orgs["acts"][two_orgs["a"]]
    alice = two_orgs["alice"].id
    await browser.get(f"/admin/activities/{activity.id}")
    status, body = await browser.post(f"/admin/activities/{activity.id}/noshow", {"noshow": f"{alice}:1"})
    assert status == 409 and "活动还没开始" in body
    clock.advance(days=2, hours=1)  # the activity has begun (and the session of two days ago expired)
    browser = await web.signed_in("console", "coord_a")
    status, body = await browser.get(f"/admin/activities/{activity.id}")
    assert f'data-no-show="{alice}"' in body
    status, where = await browser.post(f"/admin/activities/{activity.id}/noshow", {"noshow": f"{alice}:1"})
    assert (status, where) == (303, f"/admin/activities/{activity.id}?ok=no_show")
    async with sessions() as session:
        signup = (await session.exec(select(Signup).where(Signup.activity_id == activity.id))).one()
        assert signup.no_show_at is not None
    assert (await browser.post(f"/admin/activities/{activity.id}/noshow", {"noshow": f"{alice}:0"}))[0] == 303
    async with browser.http.get(web.base + f"/admin/activities/{activity.id}/roster.xlsx") as response:
        assert response.status == 200 and response.headers["Content-Type"] == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        assert response.headers["Content-Disposition"] == f'attachment; filename="roster-{activity.id}.xlsx"'
        rows = list(openpyxl.load_workbook(io.BytesIO(await response.read())).active.iter_rows(values_only=True))
    assert any("王小丽" in row and "138****8000" in row for row in rows)
    status, text = await browser.get(f"/admin/activities/{activity.id}/roster.csv")
    assert status == 200 and "王小丽" in text and "13800138000" not in text


async def test_changes_refuse_other_stations_volunteers_and_forged_forms(web, two_orgs, sessions, clock) -> None:  # noqa: ANN001, F811
    clock.advance(days=2, hours=1)  # begun: a no-show could be marked
    coordinator = await web.signed_in("console", "coord_a")
    volunteer = await web.signed_in("console", "alice")
    own, _r = two_orgs["acts"][two_orgs["a"]]
    other, _r = two_orgs["acts"][two_orgs["b"]]
    form = await _edit_form(coordinator, own.id)
    alice = two_orgs["alice"].id
    posts = [("edit", {**form, "title": "改掉的名称"}), ("cancel", {"reason": "暴雨预警"}),
             ("noshow", {"noshow": f"{alice}:1"})]
    for action, data in posts:
        assert (await coordinator.post(f"/admin/activities/{other.id}/{action}", data))[0] == 403, action
        assert (await volunteer.post(f"/admin/activities/{own.id}/{action}", data))[0] == 403, action
        assert (await coordinator.post(f"/admin/activities/{own.id}/{action}", data, csrf=False))[0] == 403, action
    for fmt in ("xlsx", "csv"):
        assert (await coordinator.get(f"/admin/activities/{other.id}/roster.{fmt}"))[0] == 403
        assert (await volunteer.get(f"/admin/activities/{own.id}/roster.{fmt}"))[0] == 403
    async with sessions() as session:
        for activity in (own, other):
            stored = await session.get(Activity, activity.id)
            assert (stored.title, stored.status) == (activity.title, "open")
        assert all(s.no_show_at is None for s in await session.exec(select(Signup)))
    assert await _notices(sessions) == []


async def test_a_printable_poster_shows_the_qr_codes_that_exist(web, two_orgs) -> None:  # noqa: ANN001, F811
    coordinator = await web.signed_in("console", "coord_a")
    own, _r = two_orgs["acts"][two_orgs["a"]]
    other, _r = two_orgs["acts"][two_orgs["b"]]
    status, body = await coordinator.get(f"/admin/activities/{own.id}/poster")
    assert status == 200 and own.title in body and 'id="no-wechat"' in body and 'id="no-telegram"' in body
    assert "data-qr=" not in body
    web.settings.telegram_bot_username = "vb_bot"
    status, body = await coordinator.get(f"/admin/activities/{own.id}/poster")
    assert 'data-qr="telegram-checkin"' in body and 'data-qr="telegram-checkout"' in body
    assert 'src="data:image/png;base64,' in body and 'id="no-wechat"' in body and 'id="no-telegram"' not in body
    assert (await coordinator.get(f"/admin/activities/{other.id}/poster"))[0] == 403
    assert (await (await web.signed_in("console", "alice")).get(f"/admin/activities/{own.id}/poster"))[0] == 403


async def test_garbage_in_the_change_forms_is_never_a_5xx(web, two_orgs) -> None:  # noqa: ANN001, F811
    browser = await web.signed_in("console", "coord_a")
    activity, _record = two_orgs["acts"][two_orgs["a"]]
    await browser.get(f"/admin/activities/{activity.id}")
    for action, forms in {"edit": [{}, {"title": "好" * 500, "start": "2026-13-40T99:99", "capacity": "9" * 40},
                                   {"description": "x" * 5000, "end": "garbage"}],
                          "cancel": [{}, {"reason": "好" * 5000}],
                          "noshow": [{}, {"noshow": "abc"}, {"noshow": "9" * 30 + ":1"}, {"noshow": "1:2"}]}.items():
        for form in forms:
            status, _body = await browser.post(f"/admin/activities/{activity.id}/{action}", form)
            assert 200 <= status < 500, (action, form, status)
    for path in ("/admin/activities/abc/edit", "/admin/activities/99999999/cancel"):
        assert 200 <= (await browser.post(path, {"reason": "暴雨预警"}))[0] < 500
    assert (await browser.get("/admin/activities/99999999/roster.xlsx"))[0] == 404


async def test_the_poster_draws_wechat_codes_made_through_the_api_and_says_so_when_it_refuses(web, two_orgs) -> None:  # noqa: ANN001, F811
    coordinator = await web.signed_in("console", "coord_a")
    own, _r = two_orgs["acts"][two_orgs["a"]]
    async with FakeWeChatAPI() as api:
        web.settings.wechat_app_id, web.settings.wechat_app_secret = api.app_id, api.secret
        web.settings.wechat_api_base = web.settings.wechat_mp_base = api.base_url
        status, body = await coordinator.get(f"/admin/activities/{own.id}/poster")
        assert status == 200 and 'data-qr="wechat-checkin"' in body and 'data-qr="wechat-checkout"' in body
        assert 'id="no-wechat"' not in body
        scenes = sorted(call.body["action_info"]["scene"]["scene_str"] for call in api.calls_to("qrcode/create"))
        assert scenes == [f"checkin_{own.checkin_code}", f"checkout_{own.checkin_code}"]
        # valid until a while after the activity ends, within WeChat's 30-day limit for temporary codes
        assert all(0 < call.body["expire_seconds"] <= 2592000 for call in api.calls_to("qrcode/create"))

        api.fail("qrcode/create", 45009, times=None)  # the daily API quota is used up
        status, body = await coordinator.get(f"/admin/activities/{own.id}/poster")
        assert status == 200 and 'id="no-wechat"' in body and 'data-qr="wechat-checkin"' not in body
