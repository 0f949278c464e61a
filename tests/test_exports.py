"""Excel exports: the 台账 and an activity's roster as .xlsx (read back with openpyxl) beside CSV, the CLI's
``ledger export --format xlsx`` and its TIMEZONE day, the recorder column's fallbacks, readable sources."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import create_app
from bot.channels.console import ConsoleChannel
from bot.commands.ledger import export_period
from bot.config import Settings
from bot.runtime import Runtime
from handlers.engine import Engine
from models import HourRecord, Identity, Person
from models.requests import ServiceRequest
from services.exports import CONTENT_TYPES, table_csv, table_xlsx
from services.ledger import HEADER, ledger_rows, ledger_table
from tests.conftest import TEST_KEY
from tests.helpers import add_activity, adult_id, make_coordinator, person_of, register
from tests.test_cli import run_async

BASE = "https://bot.example.org"
TITLE = '=HYPERLINK("http://evil.example","点我")'  # a title a spreadsheet must not run


def workbook(data: bytes, *, data_only: bool = False) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data), data_only=data_only)


async def record_all(coord: ConsoleChannel, activity_id: int) -> str:
    await coord.send(f"/rec {activity_id}")
    return await coord.send("1")  # 全部按活动时长记录


async def _ledger_setup(core: Engine, sessions, clock) -> tuple[int, int]:
    """艾米 gets 3 h at an activity recorded by a coordinator who never registered, and 2 h she reported
    herself for a resident's request, approved by that coordinator. Returns (organization id, activity id)."""
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3, title=TITLE)
    amy = ConsoleChannel(core, user="amy")
    await register(amy, "艾米", serial=31, phone="13512345678")
    await amy.send(f"/join {activity.id}")
    clock.advance(days=1, hours=4)
    assert "记录 3 小时" in await record_all(ConsoleChannel(core, user="coord"), activity.id)
    amy_person, coord = await person_of(sessions, "console", "amy"), await person_of(sessions, "console", "coord")
    async with sessions() as session:
        record = HourRecord(person_id=amy_person.id, hours=2, served_on=date(2026, 3, 2), source="request",
                            note="居民求助 #1 助老服务", approved=True, organization_id=org, reviewed_by=coord.id,
                            reviewed_at=clock.now, recorded_by=amy_person.id)
        session.add(record)
        await session.flush()
        session.add(ServiceRequest(resident_id=coord.id, organization_id=org, hour_record_id=record.id))
        await session.commit()
    return org, activity.id


async def test_ledger_xlsx_has_typed_cells_a_total_masking_and_readable_sources(core, sessions, clock) -> None:
    org, _activity = await _ledger_setup(core, sessions, clock)
    coord = await person_of(sessions, "console", "coord")
    async with sessions() as session:
        rows = await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1), end=date(2026, 12, 31))
    sheet = workbook(table_xlsx(ledger_table(rows))).active
    assert sheet.title == "台账" and sheet.freeze_panes == "A2"
    header = [cell.value for cell in sheet[1]]
    assert header == ["日期", "姓名", "身份证号（脱敏）", "手机号（脱敏）", "活动/服务", "组织", "时长（小时）", "记录人",
                      "来源", "备注", "更正", "原时长（小时）", "更正原因", "更正审批人", "更正时间"]
    assert len(header) == len(HEADER)
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.column_dimensions["E"].width > sheet.column_dimensions["B"].width  # widths are set
    activity_row, request_row, total = (list(r) for r in sheet.iter_rows(min_row=2))
    # dates are Excel dates with a date format, hours are numbers
    assert activity_row[0].is_date and activity_row[0].value == datetime(2026, 3, 2)
    assert activity_row[0].number_format == "yyyy-mm-dd" and request_row[0].value == datetime(2026, 3, 2)
    assert activity_row[6].data_type == "n" and activity_row[6].value == 3 and request_row[6].value == 2
    # the title that looks like a formula is a text cell, never a formula
    assert activity_row[4].data_type == "s" and activity_row[4].value == TITLE
    # personal data masked
    values = [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
    assert adult_id(31) not in values and "13512345678" not in values
    assert activity_row[3].value == "135****5678" and "*" in activity_row[2].value
    # readable sources; the recorder who never registered is named 协调员#id
    assert activity_row[8].value == "活动记录" and request_row[8].value == "居民求助（自报）"
    assert activity_row[7].value == f"协调员#{coord.id}" and request_row[7].value == "艾米"
    # the total row: a SUM formula whose cached value Excel, WPS and openpyxl(data_only) read
    assert total[0].value == "合计" and total[6].value == "=SUM(G2:G3)"
    assert list(workbook(table_xlsx(ledger_table(rows)), data_only=True).active.iter_rows(min_row=4))[0][6].value == 5

    # the CSV is written from the same table: readable sources, the formula neutralised
    text = table_csv(ledger_table(rows)).decode("utf-8-sig")
    assert ",活动记录," in text and "居民求助（自报）" in text and f"协调员#{coord.id}" in text
    assert "'=HYPERLINK" in text and "合计,,,,,,5" in text
    # in English the headers, sources and fallbacks read from the catalogs
    english = workbook(table_xlsx(ledger_table(rows), lang="en")).active
    assert english["A1"].value == "Date" and english["I2"].value == "Activity record"
    assert english["I3"].value == "Resident request (self-reported)" and english["H2"].value == f"Coordinator #{coord.id}"


async def test_recorder_falls_back_to_the_chat_display_name(core, sessions, clock) -> None:
    org, _activity = await _ledger_setup(core, sessions, clock)
    async with sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == "coord"))).one()
        identity.display_name = "王老师"
        session.add(identity)
        await session.commit()
        rows = await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1), end=date(2026, 12, 31))
    assert [r.recorder for r in rows] == ["王老师", "艾米"]
    # once the coordinator registers, their name is used
    await register(ConsoleChannel(core, user="coord"), "赵主任", serial=77, phone="13700001111")
    async with sessions() as session:
        rows = await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1), end=date(2026, 12, 31))
    assert rows[0].recorder == "赵主任"


async def test_ledger_day_comes_from_timezone_not_utc(core, sessions, clock) -> None:
    """23:30 UTC on 31 December is 07:30 on 1 January in Asia/Shanghai: the activity's hours belong to the
    new year, and the CLI's default period (1 January to today) is read in TIMEZONE."""
    clock.now = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=datetime(2026, 12, 31, 23, 30, tzinfo=UTC), hours=2)
    amy = ConsoleChannel(core, user="amy")
    await register(amy, "艾米", serial=31)
    await amy.send(f"/join {activity.id}")
    clock.now = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    clock.advance(hours=2, minutes=15)
    assert "记录 2 小时" in await record_all(ConsoleChannel(core, user="coord"), activity.id)
    local_now = datetime(2026, 12, 31, 23, 45, tzinfo=UTC)  # still 2026 in UTC
    assert export_period(None, None, now=local_now, timezone="Asia/Shanghai") == (date(2027, 1, 1), date(2027, 1, 1))
    assert export_period(None, None, now=local_now, timezone="UTC") == (date(2026, 1, 1), date(2026, 12, 31))
    assert export_period("2026-12-01", None, now=local_now, timezone="Asia/Shanghai") == (date(2026, 12, 1),
                                                                                          date(2027, 1, 1))
    first, last = export_period(None, None, now=local_now, timezone="Asia/Shanghai")
    async with sessions() as session:
        rows = await ledger_rows(session, organization_ids=[org], start=first, end=last)
    assert [(r.served_on, r.hours) for r in rows] == [(date(2027, 1, 1), 2)]


async def test_cli_ledger_export_writes_a_valid_xlsx(db_url, core, sessions, clock, tmp_path: Path) -> None:
    _org, activity_id = await _ledger_setup(core, sessions, clock)
    env = {"ID_ENCRYPTION_KEY": TEST_KEY, "DATABASE_URL": db_url}

    async def run(*args: str) -> tuple[int, str]:  # in this process: tests/test_cli.py runs ledger export as one
        done = await run_async(list(args), cwd=tmp_path, env=env, check=False)
        return done.returncode, done.stderr

    async def cli(*args: str) -> tuple[int, str]:
        return await run("ledger", "export", "--org", "望京街道", "--from", "2026-01-01", "--to", "2026-12-31", *args)

    out = tmp_path / "台账.xlsx"
    assert (await cli("--format", "xlsx", "--out", str(out)))[0] == 0
    sheet = workbook(out.read_bytes()).active
    assert sheet["A1"].value == "日期" and sheet["A2"].is_date and sheet["G4"].value == "=SUM(G2:G3)"
    assert sheet["I2"].value == "活动记录" and sheet["D2"].value == "135****5678"
    # the suffix of --out picks the format too; CSV keeps its BOM and readable sources
    inferred = tmp_path / "ledger.xlsx"
    assert (await cli("--out", str(inferred)))[0] == 0 and inferred.read_bytes()[:2] == b"PK"
    csv_out = tmp_path / "ledger.csv"
    assert (await cli("--format", "csv", "--out", str(csv_out)))[0] == 0
    assert csv_out.read_bytes().decode("utf-8").startswith("\ufeff日期,") and "活动记录" in csv_out.read_text("utf-8")
    code, err = await cli("--format", "pdf")
    assert code == 1 and "xlsx or csv" in err
    # in English, and an activity's roster
    english = tmp_path / "ledger-en.xlsx"
    assert (await cli("--lang", "en", "--out", str(english)))[0] == 0
    assert workbook(english.read_bytes()).active["I2"].value == "Activity record"
    roster = tmp_path / "roster.xlsx"
    assert (await run("ledger", "roster", "--activity", str(activity_id), "--out", str(roster)))[0] == 0
    sheet = workbook(roster.read_bytes()).active
    assert sheet["B2"].value == "艾米" and sheet["D2"].value == "已报名" and sheet["H2"].value == 3
    code, err = await run("ledger", "roster", "--activity", "999")
    assert code == 1 and "no activity 999" in err


async def test_roster_export_in_chat_serves_xlsx_and_csv(db_url, sessions, options, clock) -> None:
    core = Engine(sessions, dataclasses.replace(options, public_base_url=BASE), clock=clock)
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    await make_coordinator(sessions, channel="console", user="other", org="酒仙桥街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3, capacity=1)
    for user, name, serial, phone in (("amy", "艾米", 31, "13512345678"), ("bob", "=1+2", 32, "13612345678")):
        volunteer = ConsoleChannel(core, user=user)
        await register(volunteer, "鲍勃" if user == "bob" else name, serial=serial, phone=phone)
        await volunteer.send(f"/join {activity.id}")
        clock.advance(minutes=5)
    async with sessions() as session:  # a name that looks like a formula (typed names are checked earlier)
        bob = await session.get(Person, (await person_of(sessions, "console", "bob")).id)
        bob.name = "=1+2"
        session.add(bob)
        await session.commit()
    clock.advance(days=1, hours=4)
    coord = ConsoleChannel(core, user="coord")
    assert "记录 3 小时" in await record_all(coord, activity.id)

    reply = await coord.send(f"导出名单 {activity.id}")
    assert reply == await coord.send(f"/export_roster {activity.id}")
    assert "24 小时内有效" in reply and "脱敏" in reply
    xlsx_url, csv_url = re.findall(r"(https://\S+)", reply)
    assert xlsx_url.startswith(f"{BASE}/roster.xlsx?token=") and csv_url.startswith(f"{BASE}/roster.csv?token=")
    assert "活动编号" in await coord.send("导出名单")
    # the roster's own button gives the same two links
    assert "导出名单（Excel/CSV）" in await coord.send(f"查看名单 {activity.id}")
    assert re.findall(r"https://\S+/roster\.(xlsx|csv)\?", await coord.send("导出名单（Excel/CSV）")) == ["xlsx", "csv"]
    assert "只有该组织的协调员" in await ConsoleChannel(core, user="other").send(f"导出名单 {activity.id}")
    assert "只有协调员或管理员" in await ConsoleChannel(core, user="amy").send(f"导出名单 {activity.id}")

    settings = Settings(_env_file=None, database_url=db_url, id_encryption_key=TEST_KEY)
    runtime = Runtime(settings=settings, db=sessions.kw["bind"], sessions=sessions, core=core)
    async with TestClient(TestServer(await create_app(runtime))) as client:
        response = await client.get(xlsx_url.removeprefix(BASE))
        assert response.status == 200 and response.headers["Content-Type"] == CONTENT_TYPES["xlsx"]
        assert f'filename="roster-{activity.id}.xlsx"' in response.headers["Content-Disposition"]
        sheet = workbook(await response.read()).active
        assert sheet.title == f"{activity.id} 社区敬老院探访" and sheet.freeze_panes == "A2"
        assert [c.value for c in sheet[1]] == ["序号", "姓名", "手机号（脱敏）", "状态", "报名时间", "签到时间", "签退时间",
                                               "时长（小时）"]
        amy, bob, total = (list(r) for r in sheet.iter_rows(min_row=2))
        assert (amy[1].value, amy[2].value, amy[3].value, amy[7].value) == ("艾米", "135****5678", "已报名", 3)
        # signed up at 02:00 UTC = 10:00 in Asia/Shanghai, written as an Excel date-time
        assert amy[4].is_date and amy[4].value == datetime(2026, 3, 1, 10, 0)
        assert (bob[1].value, bob[1].data_type, bob[3].value, bob[7].value) == ("=1+2", "s", "候补", None)
        assert total[0].value == "合计" and total[7].value == "=SUM(H2:H3)"
        body = str([c.value for row in sheet.iter_rows() for c in row])
        assert "13512345678" not in body and adult_id(31) not in body

        response = await client.get(csv_url.removeprefix(BASE))
        assert response.status == 200 and response.content_type == "text/csv"
        text = (await response.read()).decode("utf-8-sig")
        assert "艾米,135****5678,已报名,2026-03-01 10:00" in text and "'=1+2" in text
        # a roster token does not open the ledger, and a forged one opens nothing
        token = xlsx_url.split("token=")[1]
        assert (await client.get(f"/ledger.xlsx?token={token}")).status == 403
        assert (await client.get(f"/roster.xlsx?token={token[:-2]}AA")).status == 403
        clock.advance(hours=25)
        assert (await client.get(xlsx_url.removeprefix(BASE))).status == 403


async def test_ledger_download_serves_xlsx_with_its_content_type(db_url, sessions, options, clock) -> None:
    core = Engine(sessions, dataclasses.replace(options, public_base_url=BASE), clock=clock)
    await _ledger_setup(core, sessions, clock)
    coord = ConsoleChannel(core, user="coord")
    await coord.send("导出台账")
    xlsx_url, csv_url = re.findall(r"(https://\S+)", await coord.send("今年"))
    assert "/ledger.xlsx?token=" in xlsx_url and "/ledger.csv?token=" in csv_url
    settings = Settings(_env_file=None, database_url=db_url, id_encryption_key=TEST_KEY)
    runtime = Runtime(settings=settings, db=sessions.kw["bind"], sessions=sessions, core=core)
    async with TestClient(TestServer(await create_app(runtime))) as client:
        response = await client.get(xlsx_url.removeprefix(BASE))
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        assert response.headers["Cache-Control"] == "no-store"
        sheet = workbook(await response.read()).active
        assert sheet["B2"].value == "艾米" and sheet["E2"].value == TITLE and sheet["E2"].data_type == "s"
        assert sheet["A4"].value == "合计" and sheet["G4"].value == "=SUM(G2:G3)"
        csv = (await (await client.get(csv_url.removeprefix(BASE))).read()).decode("utf-8-sig")
        assert "合计,,,,,,5" in csv and "活动记录" in csv


async def test_exports_follow_the_coordinators_language(db_url, sessions, options, clock) -> None:
    core = Engine(sessions, dataclasses.replace(options, public_base_url=BASE), clock=clock)
    _org, activity_id = await _ledger_setup(core, sessions, clock)
    coord = ConsoleChannel(core, user="coord", language="en")
    assert "/export_roster 12" in await coord.send("export roster")
    reply = await coord.send(f"/export_roster {activity_id}")
    assert "valid for 24 hours" in reply
    xlsx_url, _csv_url = re.findall(r"(https://\S+)", reply)
    assert xlsx_url.endswith("&lang=en")
    settings = Settings(_env_file=None, database_url=db_url, id_encryption_key=TEST_KEY)
    runtime = Runtime(settings=settings, db=sessions.kw["bind"], sessions=sessions, core=core)
    async with TestClient(TestServer(await create_app(runtime))) as client:
        sheet = workbook(await (await client.get(xlsx_url.removeprefix(BASE))).read()).active
        assert (sheet["A1"].value, sheet["D1"].value, sheet["D2"].value, sheet["A3"].value) == (
            "No.", "Status", "Signed up", "Total")
        traditional = xlsx_url.replace("&lang=en", "&lang=zh-TW")
        sheet = workbook(await (await client.get(traditional.removeprefix(BASE))).read()).active
        assert (sheet["D1"].value, sheet["D2"].value) == ("狀態", "已報名")


async def test_roster_export_without_public_url_names_the_cli(core, sessions, clock) -> None:
    _org, activity_id = await _ledger_setup(core, sessions, clock)
    reply = await ConsoleChannel(core, user="coord").send(f"导出名单 {activity_id}")
    assert f"volunteer-bot ledger roster --activity {activity_id}" in reply
