"""导出台账: a coordinator downloads the hours ledger through a signed, expiring link."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.channels.console import ConsoleChannel
from bot.config import Settings
from bot.runtime import Runtime
from handlers.engine import Engine
from services.ledger import ExportGrant, sign_export
from tests.conftest import TEST_KEY
from tests.helpers import add_activity, adult_id, make_coordinator, register

BASE = "https://bot.example.org"


async def _recorded_hours(core: Engine, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    await make_coordinator(sessions, channel="console", user="other", org="酒仙桥街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3)
    amy = ConsoleChannel(core, user="amy")
    await register(amy, "艾米", serial=31, phone="13512345678")
    await amy.send(f"/join {activity.id}")
    clock.advance(days=1, hours=4)
    coord = ConsoleChannel(core, user="coord")
    await coord.send(f"/rec {activity.id}")
    assert "记录 3 小时" in await coord.send("1")


async def test_coordinator_gets_a_link_that_downloads_the_masked_ledger(db_url, sessions, options, clock) -> None:
    core = Engine(sessions, dataclasses.replace(options, public_base_url=BASE), clock=clock)
    await _recorded_hours(core, sessions, clock)
    coord = ConsoleChannel(core, user="coord")
    assert "哪段时间" in await coord.send("导出台账")
    reply = await coord.send("今年")
    assert "24 小时内有效" in reply and "脱敏" in reply
    xlsx_url, url = re.findall(r"(https://\S+)", reply)
    assert xlsx_url.startswith(f"{BASE}/ledger.xlsx?token=") and url.startswith(f"{BASE}/ledger.csv?token=")

    settings = Settings(_env_file=None, database_url=db_url, id_encryption_key=TEST_KEY)
    runtime = Runtime(settings=settings, db=sessions.kw["bind"], sessions=sessions, core=core)
    async with TestClient(TestServer(await create_app(runtime))) as client:
        response = await client.get(url.removeprefix(BASE))
        assert response.status == 200 and response.content_type == "text/csv"
        body = (await response.read()).decode("utf-8-sig")
        assert "艾米" in body and "社区敬老院探访" in body and "望京街道" in body and "合计,,,,,,3" in body
        assert adult_id(31) not in body and "13512345678" not in body and "135****5678" in body
        # a forged token and an expired one are refused
        token = url.split("token=")[1]
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert (await client.get(f"/ledger.csv?token={forged}")).status == 403
        assert (await client.get("/ledger.csv")).status == 403
        clock.advance(hours=25)
        assert (await client.get(url.removeprefix(BASE))).status == 403
        # another organization's grant does not include this one's hours
        other = sign_export(ExportGrant(organization_ids=[2], start=clock.now.date() - timedelta(days=30),
                                        end=clock.now.date(), expires_at=clock.now + timedelta(hours=1)),
                            secret=TEST_KEY)
        body = (await (await client.get(f"/ledger.csv?token={other}")).read()).decode("utf-8-sig")
        assert "艾米" not in body and "合计,,,,,,0" in body


async def test_volunteers_cannot_export_and_no_link_without_public_url(core, console, sessions, clock) -> None:
    await _recorded_hours(core, sessions, clock)
    assert "只有协调员或管理员" in await console("amy").send("导出台账")
    coord = console("coord")
    await coord.send("导出台账")
    assert "PUBLIC_BASE_URL" in await coord.send("1")


async def test_ledger_includes_request_and_pairing_hours_of_the_station(sessions, clock) -> None:
    from datetime import date

    from models import HourRecord
    from models.requests import Pairing, ServiceRequest, VisitLog
    from services.ledger import ledger_rows
    from services.people import get_or_create_identity

    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    other = await make_coordinator(sessions, channel="console", user="c2", org="酒仙桥街道")
    async with sessions() as session:
        _, volunteer = await get_or_create_identity(session, channel="console", external_id="v", now=clock.now)
        volunteer.name = "韩梅梅"
        _, resident = await get_or_create_identity(session, channel="console", external_id="r", now=clock.now)
        served = date(2026, 2, 20)
        by_request = HourRecord(person_id=volunteer.id, hours=2, served_on=served, source="request",
                                note="居民求助 #1 助老服务")
        by_visit = HourRecord(person_id=volunteer.id, hours=1, served_on=served, source="pairing",
                              note="结对帮扶看望 王奶奶：血压正常")
        elsewhere = HourRecord(person_id=volunteer.id, hours=5, served_on=served, source="request", note="别处")
        session.add_all([volunteer, by_request, by_visit, elsewhere])
        await session.flush()
        session.add(ServiceRequest(resident_id=resident.id, organization_id=org, hour_record_id=by_request.id))
        session.add(ServiceRequest(resident_id=resident.id, organization_id=other, hour_record_id=elsewhere.id))
        pairing = Pairing(organization_id=org, volunteer_id=volunteer.id, resident_name="王奶奶")
        session.add(pairing)
        await session.flush()
        session.add(VisitLog(pairing_id=pairing.id, volunteer_id=volunteer.id, visited_on=served, hours=1,
                             note="血压正常", hour_record_id=by_visit.id))
        await session.commit()
        rows = await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1), end=date(2026, 3, 1))
    assert sorted((r.source, r.hours, r.organization) for r in rows) == [
        ("pairing", 1, "花家地社区"), ("request", 2, "花家地社区")]
    assert {r.what for r in rows} == {"居民求助 #1 助老服务", "结对帮扶看望 王奶奶：血压正常"}
