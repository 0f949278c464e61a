"""The web console over HTTP on SQLite and PostgreSQL: sign-in by one-time link, sessions, CSRF, and
every page refusing another organization's coordinator, a volunteer, an expired session."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from sqlmodel import select

from handlers.context import CoreOptions
from models import HourRecord, Signup
from models.corrections import HourCorrection
from models.requests import ServiceRequest
from models.web import WebLoginLink, WebSession
from services.activities import join_activity
from services.corrections import request_correction
from services.hours_review import add_hours
from services.web_auth import token_hash
from services.web_reads import roster_hours
from tests.conftest import TEST_KEY
from tests.helpers import add_activity, adult_id, make_coordinator, person_of, register
from tests.web_harness import WebHarness

PAGES = ("/admin/", "/admin/activities", "/admin/activities/new", "/admin/ledger", "/admin/ledger.csv", "/admin/ledger.xlsx",
         "/admin/volunteers", "/admin/requests", "/admin/broadcasts", "/admin/observances")


@pytest.fixture
def options() -> CoreOptions:
    return CoreOptions(encryption_key=TEST_KEY, admins=frozenset({"console:root"}), page_size=3,
                       public_base_url="https://vb.example.org")


@pytest.fixture
async def web(core, sessions) -> AsyncIterator[WebHarness]:  # noqa: ANN001
    async with WebHarness(core, sessions, base_url="http://127.0.0.1") as harness:
        yield harness


@pytest.fixture
async def two_orgs(sessions, console, clock):  # noqa: ANN001, ANN201
    """Two stations with a coordinator each, an activity each with alice signed up, a pending record each."""
    org_a = await make_coordinator(sessions, channel="console", user="coord_a", org="花家地社区")
    org_b = await make_coordinator(sessions, channel="console", user="coord_b", org="望京社区")
    await register(console("alice"), "王小丽")
    alice = await person_of(sessions, "console", "alice")
    acts = {}
    activities = {org: await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2))
                  for org in (org_a, org_b)}
    async with sessions() as session:
        for org, activity in activities.items():
            await join_activity(session, activity_id=activity.id, person_id=alice.id, now=clock.now)
            record = await add_hours(session, person_id=alice.id, hours=2, served_on=date(2026, 2, 20),
                                     organization_id=org, source="visit", note="探访", recorded_by=alice.id,
                                     now=clock.now)
            session.add(ServiceRequest(resident_id=alice.id, category="elderly", description="陪聊",
                                       community="x", organization_id=org, created_at=clock.now))
            acts[org] = (activity, record.id)
        await session.commit()
    return {"a": org_a, "b": org_b, "alice": alice, "acts": acts}


async def test_a_link_signs_in_once_and_sets_a_safe_cookie(web, two_orgs, sessions, core) -> None:  # noqa: ANN001
    async with WebHarness(core, sessions, base_url="https://vb.example.org") as behind_https:
        browser = behind_https.browser()
        async with browser.http.get(behind_https.base + await behind_https.login_link("console", "coord_a"),
                                    allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/admin/"
            assert "Secure" in response.headers["Set-Cookie"]  # https base URL
    link = await web.login_link("console", "coord_a")
    async with web.browser().http.get(web.base + link, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/admin/"
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    token = link.rsplit("/", 1)[1]
    async with sessions() as session:  # only hashes are stored
        assert (await session.get(WebLoginLink, token_hash(token))) is not None
        assert token not in str([row.token_hash for row in await session.exec(select(WebSession))])
    status, body = await web.browser().get(link)  # a second use
    assert status == 410 and "已经用过了" in body


async def test_an_expired_link_and_an_expired_session_are_refused(web, two_orgs, clock) -> None:  # noqa: ANN001
    link = await web.login_link("console", "coord_a")
    browser = await web.signed_in("console", "coord_a")
    assert (await browser.get("/admin/"))[0] == 200
    clock.advance(minutes=11)
    status, body = await web.browser().get(link)
    assert status == 410 and "已过期" in body
    clock.advance(hours=8)
    for path in PAGES:
        assert await browser.get(path) == (303, "/admin/signin"), path
    status, _body = await browser.post("/admin/broadcasts", {"organization_id": two_orgs["a"], "kind": "org",
                                                             "text": "hi", "step": "send"})
    assert status == 403
    status, body = await web.browser().get("/admin/signin")
    assert status == 401 and "管理后台" in body


async def test_sign_out_ends_the_session(web, two_orgs) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    assert await browser.post("/admin/logout", {}) == (303, "/admin/signed-out")
    assert await browser.get("/admin/") == (303, "/admin/signin")


async def test_every_page_answers_its_coordinator_and_refuses_a_volunteer(web, two_orgs) -> None:  # noqa: ANN001
    coordinator = await web.signed_in("console", "coord_a")
    for path in PAGES:
        status, body = await coordinator.get(path)
        assert status == 200, (path, body[:300])
    volunteer = await web.signed_in("console", "alice")
    for path in PAGES:
        assert (await volunteer.get(path))[0] == 403, path
    activity, record_id = two_orgs["acts"][two_orgs["a"]]
    for path, data in (("/admin/activities/new", {"title": "x"}), (f"/admin/ledger/review/{record_id}",
                       {"decision": "approve"}), ("/admin/broadcasts", {"organization_id": two_orgs["a"]})):
        assert (await volunteer.post(path, data))[0] == 403, path


async def test_another_organizations_things_are_refused(web, two_orgs, sessions) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    other, other_record = two_orgs["acts"][two_orgs["b"]]
    _status, listing = await browser.get("/admin/activities")
    assert f"/admin/activities/{two_orgs['acts'][two_orgs['a']][0].id}" in listing
    assert f"/admin/activities/{other.id}\"" not in listing
    assert (await browser.get(f"/admin/activities/{other.id}"))[0] == 403
    alice = two_orgs["alice"].id
    refused = [
        (f"/admin/activities/{other.id}/hours", [("person", str(alice)), (f"hours_{alice}", "2")]),
        (f"/admin/ledger/review/{other_record}", {"decision": "approve"}),
        ("/admin/broadcasts", {"organization_id": two_orgs["b"], "kind": "org", "text": "hi", "step": "send"}),
    ]
    async with sessions() as session:
        request_b = (await session.exec(select(ServiceRequest).where(
            ServiceRequest.organization_id == two_orgs["b"]))).one()
    refused.append((f"/admin/requests/{request_b.id}", {"action": "reject", "reason": "no"}))
    for path, data in refused:
        assert (await browser.post(path, data))[0] == 403, path
    _status, ledger = await browser.get("/admin/ledger.csv?from=2026-01-01&to=2026-12-31")
    assert "望京社区" not in ledger
    async with sessions() as session:
        assert (await session.get(HourRecord, other_record)).reviewed_at is None
        assert (await session.get(ServiceRequest, request_b.id)).status == "pending_review"


async def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(web, two_orgs, sessions) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    _activity, record_id = two_orgs["acts"][two_orgs["a"]]
    assert (await browser.post(f"/admin/ledger/review/{record_id}", {"decision": "approve"}, csrf=False))[0] == 403
    assert (await browser.post(f"/admin/ledger/review/{record_id}", {"decision": "approve", "csrf": "forged"},
                               csrf=False))[0] == 403
    async with sessions() as session:
        assert (await session.get(HourRecord, record_id)).reviewed_at is None
    status, where = await browser.post(f"/admin/ledger/review/{record_id}", {"decision": "approve"})
    assert status == 303 and where.startswith("/admin/ledger?ok=approved")
    async with sessions() as session:
        assert (await session.get(HourRecord, record_id)).approved is True


async def test_create_an_activity_with_the_chats_rules_then_record_the_roster(web, two_orgs, sessions, clock) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    await browser.get("/admin/activities/new")
    form = {"title": "植树", "description": "", "category": "environment", "place": "朝阳公园",
            "start": "2026-02-01T09:00", "end": "2026-02-01T11:00", "capacity": "5", "organization_id": two_orgs["a"]}
    status, body = await browser.post("/admin/activities/new", form)
    assert status == 200 and "开始时间已经过去了" in body  # the chat's own words
    form.update(start="2026-03-08T09:00", end="2026-03-08T11:30", organization_id=two_orgs["b"])
    status, body = await browser.post("/admin/activities/new", form)
    assert status == 200 and "只有该组织的协调员或管理员" in body
    form["organization_id"] = two_orgs["a"]
    status, where = await browser.post("/admin/activities/new", form)
    assert status == 303 and where.endswith("?ok=created")
    activity_id = int(where.split("/")[-1].split("?")[0])
    assert f"/admin/activities/{activity_id}\"" in (await browser.get("/admin/activities?category=environment"))[1]
    assert f"/admin/activities/{activity_id}\"" not in (await browser.get("/admin/activities?category=elderly"))[1]
    alice = two_orgs["alice"].id
    async with sessions() as session:
        await join_activity(session, activity_id=activity_id, person_id=alice, now=clock.now)
        await session.commit()
    status, body = await browser.get(f"/admin/activities/{activity_id}")
    assert status == 200 and "王小丽" in body and "138****8000" in body and "13800138000" not in body
    hours = [("person", str(alice)), (f"hours_{alice}", "3")]
    status, body = await browser.post(f"/admin/activities/{activity_id}/hours", hours)
    assert status == 200 and "2.5" in body  # over the activity's length: refused, nothing written
    hours[1] = (f"hours_{alice}", "2.5")
    assert (await browser.post(f"/admin/activities/{activity_id}/hours", hours))[0] == 303
    async with sessions() as session:
        record = (await session.exec(select(HourRecord).where(HourRecord.activity_id == activity_id))).one()
        assert record.hours == 2.5 and record.served_on == date(2026, 3, 8)
        assert (await session.exec(select(Signup).where(Signup.activity_id == activity_id))).one()


async def test_the_ledger_filters_sorts_pages_and_downloads(web, two_orgs, sessions) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    activity, _record = two_orgs["acts"][two_orgs["a"]]
    alice = two_orgs["alice"].id
    await browser.get(f"/admin/activities/{activity.id}")
    assert (await browser.post(f"/admin/activities/{activity.id}/hours",
                               [("person", str(alice)), (f"hours_{alice}", "2")]))[0] == 303
    status, body = await browser.get("/admin/ledger?from=2026-01-01&to=2026-12-31&sort=-hours&q=王")
    assert status == 200 and "王小丽" in body and "社区敬老院探访" in body and "1233" in body and adult_id() not in body
    status, body = await browser.get("/admin/ledger?from=2026-01-01&to=2026-12-31&q=张")
    assert "社区敬老院探访" not in body
    for wildcard in ("%", "_", "王%"):  # the name filter runs in SQL: LIKE wildcards are literal characters
        status, body = await browser.get(f"/admin/ledger?from=2026-01-01&to=2026-12-31&q={quote(wildcard)}")
        assert status == 200 and "社区敬老院探访" not in body
    status, data = await browser.get("/admin/ledger.csv?from=2026-01-01&to=2026-12-31")
    rows = list(csv.reader(io.StringIO(data.lstrip("\ufeff"))))
    assert rows[0][0] == "日期" and rows[1][1] == "王小丽" and rows[-1][0] == "合计" and rows[-1][6] == "2"
    assert (await browser.get("/admin/ledger?page=999&sort=nonsense&from=garbage"))[0] == 200
    assert (await browser.get("/admin/volunteers?page=abc&sort=-name"))[0] == 200
    status, body = await browser.get("/admin/volunteers")
    assert "王小丽" in body and "138****8000" in body and "13800138000" not in body


async def test_requests_are_reviewed_with_the_chats_services(web, two_orgs, sessions) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest).where(
            ServiceRequest.organization_id == two_orgs["a"]))).one()
    status, body = await browser.get("/admin/requests")
    assert status == 200 and f'id="r{request.id}"' in body
    assert (await browser.post(f"/admin/requests/{request.id}", {"action": "reject", "reason": ""}))[0] == 409
    assert (await browser.post(f"/admin/requests/{request.id}", {"action": "category", "category": "health"}))[0] == 303
    assert (await browser.post(f"/admin/requests/{request.id}", {"action": "reject", "reason": "重复"}))[0] == 303
    async with sessions() as session:
        request = await session.get(ServiceRequest, request.id)
        assert (request.status, request.reason, request.category) == ("rejected", "重复", "health")


async def test_a_broadcast_shows_its_count_before_it_is_sent(web, two_orgs) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    await browser.get("/admin/broadcasts")
    form = {"organization_id": two_orgs["a"], "kind": "org", "value": "", "text": "明天集合", "step": "count"}
    status, body = await browser.post("/admin/broadcasts", form)
    assert status == 200 and "将发送给 1 位志愿者" in body
    form["step"] = "send"
    assert await browser.post("/admin/broadcasts", form) == (303, "/admin/broadcasts?ok=broadcast_sent")
    _status, body = await browser.get("/admin/broadcasts")
    assert "明天集合" in body


async def test_the_chat_gives_coordinators_a_link_and_refuses_volunteers(web, two_orgs, console) -> None:  # noqa: ANN001
    reply = await console("coord_a").send("管理后台")
    assert "10 分钟内有效" in reply and "https://vb.example.org/admin/login/" in reply
    path = reply.split("https://vb.example.org", 1)[1].split()[0]
    assert (await web.browser().get(path))[0] == 303
    assert "只有协调员或管理员" in await console("alice").send("/admin")


async def test_garbage_in_any_form_or_address_is_never_a_5xx(web, two_orgs) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    activity, record_id = two_orgs["acts"][two_orgs["a"]]
    posts = {
        "/admin/activities/new": [{"start": "tomorrow", "capacity": "-1", "organization_id": "x" * 40},
                                  {"title": "好" * 500, "category": "<script>", "start": "2026-13-40T99:99"}],
        f"/admin/activities/{activity.id}/hours": [[("person", "9" * 30)], [("person", "abc")],
                                                    [("person", str(two_orgs["alice"].id)),
                                                     (f"hours_{two_orgs['alice'].id}", "NaN")]],
        f"/admin/ledger/review/{record_id}": [{"decision": "maybe"}, {}],
        "/admin/ledger/review/99999999": [{"decision": "approve"}],
        "/admin/requests/99999999": [{"action": "approve"}],
        "/admin/broadcasts": [{"organization_id": "", "kind": "org"},
                              {"organization_id": two_orgs["a"], "kind": "activity", "value": "x", "step": "count"},
                              {"organization_id": two_orgs["a"], "kind": "nonsense", "step": "send", "text": "x"}],
        "/admin/activities/abc/hours": [{}],
        "/admin/ledger/corrections/abc": [{"decision": "approve"}],
        "/admin/ledger/corrections/99999999": [{"decision": "reject", "note": "好" * 5000}, {"decision": "x"}],
        f"/admin/ledger/records/{record_id}": [{"hours": "1e400", "reason": "ok ok"}, {"hours": "-3", "reason": "ab"},
                                               {"hours": "NaN", "reason": "原因原因"}, {}],
        "/admin/ledger/records/" + "9" * 12: [{"void": "1", "reason": "重复记录"}],
    }
    for path, forms in posts.items():
        for form in forms:
            status, _body = await browser.post(path, form)
            assert 200 <= status < 500, (path, form, status)
    for path in ("/admin/activities/abc", "/admin/activities/99999999", "/admin/activities?when=x&page=-1&sort=--",
                 "/admin/requests?status=<b>", "/admin/ledger?org=abc&to=2026-02-30", "/admin/login/" + "x" * 500,
                 "/n/" + "%00" * 10):
        status, _body = await browser.get(path)
        assert 200 <= status < 500, (path, status)


@pytest.fixture
async def corrections(two_orgs, sessions, clock):  # noqa: ANN001, ANN201
    """In each station a record of alice's counted (3 h, a coordinator's) and her correction to 2 h pending."""
    found = {}
    async with sessions() as session:
        for key in ("a", "b"):
            activity, _pending = two_orgs["acts"][two_orgs[key]]
            record = HourRecord(person_id=two_orgs["alice"].id, activity_id=activity.id, hours=3, note="陪护" + key,
                                served_on=date(2026, 2, 21), organization_id=two_orgs[key])
            session.add(record)
            await session.flush()
            correction = await request_correction(session, record_id=record.id, person_id=two_orgs["alice"].id,
                                                  hours=2, reason="提前离开了", now=clock.now)
            found[key] = (record.id, correction.id)
        await session.commit()
    return found


async def _correction_status(sessions, correction_id: int) -> str:  # noqa: ANN001
    async with sessions() as session:
        return (await session.get(HourCorrection, correction_id)).status


async def test_corrections_are_approved_or_rejected_with_a_reason(web, two_orgs, corrections, sessions) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    status, body = await browser.get("/admin/")
    assert status == 200 and 'id="dash-corrections"' in body and "3 → 2 小时" in body
    status, body = await browser.get("/admin/ledger")
    own, other = corrections["a"][1], corrections["b"][1]
    assert f"/admin/ledger/corrections/{own}" in body and f"/admin/ledger/corrections/{other}" not in body
    assert "提前离开了" in body
    status, body = await browser.post(f"/admin/ledger/corrections/{own}", {"decision": "reject", "note": " "})
    assert status == 400 and "原因请写 2–200 字" in body  # the chat's words; nothing decided
    assert await _correction_status(sessions, own) == "pending"
    status, where = await browser.post(f"/admin/ledger/corrections/{own}", {"decision": "reject", "note": "没有签退记录"})
    assert (status, where) == (303, "/admin/ledger?ok=correction_reject#corrections")
    assert await _correction_status(sessions, own) == "rejected"
    status, body = await browser.post(f"/admin/ledger/corrections/{own}", {"decision": "approve"})
    assert status == 409 and "已经处理过了" in body
    async with sessions() as session:  # alice asks again; this time it is approved and counts 2 h
        again = await request_correction(session, record_id=corrections["a"][0], person_id=two_orgs["alice"].id,
                                         hours=2, reason="提前离开了", now=web.runtime.core.clock())
        await session.commit()
    assert (await browser.post(f"/admin/ledger/corrections/{again.id}", {"decision": "approve"}))[0] == 303
    assert await _correction_status(sessions, again.id) == "approved"
    _status, data = await browser.get("/admin/ledger.csv?from=2026-01-01&to=2026-12-31")
    line = next(row for row in csv.reader(io.StringIO(data.lstrip("\ufeff"))) if "陪护a" in row)
    assert line[6] == "2" and "提前离开了" in line
    async with sessions() as session:  # the roster's hours column counts the correction too
        activity, _pending = two_orgs["acts"][two_orgs["a"]]
        assert await roster_hours(session, activity_id=activity.id) == {two_orgs["alice"].id: 2.0}


async def test_a_coordinator_corrects_or_voids_a_record_with_a_reason(web, two_orgs, corrections, sessions) -> None:  # noqa: ANN001
    browser = await web.signed_in("console", "coord_a")
    status, body = await browser.get("/admin/ledger?q=王小丽&from=2026-01-01&to=2026-12-31")
    record, other = corrections["a"][0], corrections["b"][0]
    assert f"/admin/ledger/records/{record}" in body and f"/admin/ledger/records/{other}" not in body
    for form, words in (({"hours": "abc", "reason": "签退时间有误"}, "没看懂这个时长"),
                        ({"hours": "30", "reason": "签退时间有误"}, "时长不能超过 24 小时"),
                        ({"hours": "2.5", "reason": "x"}, "原因请写")):
        status, body = await browser.post(f"/admin/ledger/records/{record}", form)
        assert status == 400 and words in body, form
    status, where = await browser.post(f"/admin/ledger/records/{record}", {"void": "1", "reason": "重复记录"})
    assert (status, where) == (303, "/admin/ledger?ok=record_voided")
    async with sessions() as session:
        done = (await session.exec(select(HourCorrection).where(HourCorrection.record_id == record,
                                                                HourCorrection.status == "approved"))).one()
        assert done.hours is None and done.reason == "重复记录"
    status, body = await browser.post(f"/admin/ledger/records/{record}", {"void": "1", "reason": "重复记录"})
    assert status == 409 and "已经作废了" in body


async def test_corrections_refuse_other_stations_volunteers_and_forged_forms(web, two_orgs, corrections,
                                                                              sessions) -> None:  # noqa: ANN001
    coordinator = await web.signed_in("console", "coord_a")
    volunteer = await web.signed_in("console", "alice")
    await coordinator.get("/admin/ledger")
    (record_a, own), (record_b, other) = corrections["a"], corrections["b"]
    attempts = [(coordinator, f"/admin/ledger/corrections/{other}", {"decision": "approve"}, True),
                (coordinator, f"/admin/ledger/records/{record_b}", {"void": "1", "reason": "重复记录"}, True),
                (volunteer, f"/admin/ledger/corrections/{own}", {"decision": "approve"}, True),
                (volunteer, f"/admin/ledger/records/{record_a}", {"void": "1", "reason": "重复记录"}, True),
                (coordinator, f"/admin/ledger/corrections/{own}", {"decision": "approve"}, False),
                (coordinator, f"/admin/ledger/records/{record_a}", {"void": "1", "reason": "重复记录"}, False)]
    for browser, path, form, csrf in attempts:
        status, body = await browser.post(path, form, csrf=csrf)
        assert status == 403, (path, csrf, body[:200])
    assert (await volunteer.get("/admin/ledger.xlsx"))[0] == 403
    async with sessions() as session:
        rows = list(await session.exec(select(HourCorrection)))
    assert sorted(c.status for c in rows) == ["pending", "pending"]


async def test_the_ledger_downloads_as_xlsx(web, two_orgs, corrections) -> None:  # noqa: ANN001
    import openpyxl

    browser = await web.signed_in("console", "coord_a")
    async with browser.http.get(web.base + "/admin/ledger.xlsx?from=2026-01-01&to=2026-12-31") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        assert response.headers["Content-Disposition"] == 'attachment; filename="ledger-2026-01-01-2026-12-31.xlsx"'
        data = await response.read()
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    values = [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "日期" and any("陪护a" in row for row in values)
    assert not any("陪护b" in row for row in values)


async def test_volunteers_are_members_under_the_hierarchy_and_past_participants(web, two_orgs, sessions,
                                                                                console, clock) -> None:  # noqa: ANN001
    from services.orgs import set_membership
    from services.people import get_or_create_organization

    async with sessions() as session:
        team = await get_or_create_organization(session, name="花家地青年队", kind="team", parent_id=two_orgs["a"])
        await session.commit()
    for user, name, serial, phone, org in (("bob", "李明", 124, "13900139000", team.id),
                                           ("carol", "赵敏", 125, "13700137000", two_orgs["b"])):
        await register(console(user), name, serial=serial, phone=phone)
        person = await person_of(sessions, "console", user)
        async with sessions() as session:
            await set_membership(session, person_id=person.id, organization_id=org, now=clock.now)
            await session.commit()
    browser = await web.signed_in("console", "coord_a")
    status, body = await browser.get("/admin/volunteers")
    assert status == 200 and "李明" in body and "花家地青年队" in body and "139****9000" in body
    assert "王小丽" in body  # a past participant (signed up for one of the station's activities)
    assert "赵敏" not in body  # another station's member
    status, body = await browser.get(f"/admin/volunteers?org={team.id}")
    assert "李明" in body and "王小丽" not in body
    status, body = await browser.get(f"/admin/volunteers?org={two_orgs['b']}")  # not theirs: all of their own
    assert "李明" in body and "赵敏" not in body
    _status, body = await (await web.signed_in("console", "coord_b")).get("/admin/volunteers")
    assert "赵敏" in body and "李明" not in body
