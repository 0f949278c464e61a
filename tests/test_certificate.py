"""志愿服务证明: asked for in the chat, read back from the PDF, verified at /verify/<number>, revoked,
downloaded through the signed link (console, WeChat) or sent as a document (Telegram)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.channels.console import ConsoleChannel
from bot.config import Settings
from bot.runtime import Runtime
from handlers.engine import Engine
from services.certificates import (
    facts_of,
    find_certificate,
    format_number,
    new_number,
    normalize_number,
    revoke_certificate,
    sign_download,
)
from tests.conftest import TEST_KEY
from tests.conversation import joined, open_conversations
from tests.helpers import add_activity, adult_id, make_coordinator, register

BASE = "https://bot.example.org"
NUMBER = re.compile(r"(\d{4}(?:-\d{4}){4})")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="pdftotext missing: apt-get install poppler-utils (.ci/run does)")


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "certificate.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True,
                          timeout=60).stdout


async def served_hours(core: Engine, sessions, clock, volunteer) -> None:  # noqa: ANN001
    """3 h at 望京街道, recorded by a coordinator who never registered (the organization stands as
    recorder), and 2 h at 酒仙桥街道, recorded by its registered coordinator 李协调."""
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    other = await make_coordinator(sessions, channel="console", user="li", org="酒仙桥街道")
    first = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3)
    second = await add_activity(sessions, org_id=other, start=clock.now + timedelta(days=2), hours=2,
                                title="<b>社区</b>环保 & 清洁")
    await register(volunteer, "艾米", serial=31, phone="13512345678")
    await volunteer.send(f"/join {first.id}")
    await volunteer.send(f"/join {second.id}")
    clock.advance(days=3)
    coord = ConsoleChannel(core, user="coord")
    await coord.send(f"/rec {first.id}")
    assert "记录 3 小时" in await coord.send("1")
    li = ConsoleChannel(core, user="li")
    await register(li, "李协调", serial=45, phone="13612345678")
    await li.send(f"/rec {second.id}")
    assert "记录 2 小时" in await li.send("1")


def runtime_for(core: Engine, sessions, db_url: str, **settings: str) -> Runtime:  # noqa: ANN001
    config = Settings(_env_file=None, database_url=db_url, id_encryption_key=TEST_KEY, **settings)
    return Runtime(settings=config, db=sessions.kw["bind"], sessions=sessions, core=core)


@needs_poppler
async def test_console_certificate_downloads_verifies_and_revokes(db_url, sessions, options, clock,
                                                                  tmp_path) -> None:
    core = Engine(sessions, dataclasses.replace(options, public_base_url=BASE), clock=clock)
    amy = ConsoleChannel(core, user="amy")
    await served_hours(core, sessions, clock, amy)
    reply = await amy.send("开志愿服务证明")
    assert "志愿服务证明已开具" in reply and "艾米" in reply and "累计志愿服务时长：5 小时（2 条记录）" in reply
    number = NUMBER.search(reply).group(1)
    digits = number.replace("-", "")
    assert f"{BASE}/verify/{digits}" in reply and "7 天内有效" in reply
    link = re.search(rf"{BASE}(/certificate/\S+)", reply).group(1)
    # asking again with nothing changed gives the same certificate
    assert number in await amy.send("开志愿服务证明")

    async with TestClient(TestServer(await create_app(runtime_for(core, sessions, db_url,
                                                                  public_base_url=BASE)))) as client:
        response = await client.get(link)
        assert response.status == 200 and response.content_type == "application/pdf"
        data = await response.read()
        assert data.startswith(b"%PDF") and b"/FontFile2" in data  # the CJK TrueType font is embedded
        text = pdf_text(data, tmp_path)
        assert "志愿服务证明" in text and "艾米" in text and number in text and "5 小时" in text
        assert "望京街道" in text and "李协调" in text and "1101**********" in text and adult_id(31) not in text

        page = await client.get(f"/verify/{digits}")
        body = await page.text()
        assert page.status == 200 and "有效" in body and "艾米" in body and "5 小时" in body
        assert "李协调" in body and "1101**********" in body and adult_id(31) not in body
        assert "&lt;b&gt;社区&lt;/b&gt;环保 &amp; 清洁" in body and "<b>社区" not in body  # escaped
        assert 'name="viewport"' in body and "script-src" not in page.headers["Content-Security-Policy"]
        assert 'href="/admin/static/style.css"' in body and 'class="card narrow"' in body  # the notice pages' look
        assert (await client.get(f"/verify/{number}")).status == 200  # dashes as printed work too

        unknown = await client.get(f"/verify/{new_number()}")
        assert unknown.status == 404 and "没有找到" in await unknown.text()
        garbled = await client.get("/verify/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert garbled.status == 404 and "<script>" not in await garbled.text()

        token = link.rsplit("/", 1)[1]
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert (await client.get(f"/certificate/{forged}")).status == 403
        assert (await client.get("/certificate/not-a-token")).status == 403

        async with sessions() as session:
            await revoke_certificate(session, number=number, reason="时长记录有误 <重开>", now=clock.now)
            await session.commit()
        page = await client.get(f"/verify/{digits}")
        body = await page.text()
        assert page.status == 200 and "已于 2026-03-04 撤销" in body and "时长记录有误 &lt;重开&gt;" in body
        assert (await client.get(link)).status == 410

        # a new certificate after the revocation: a new number; its link expires after 7 days
        reply = await amy.send("开志愿服务证明")
        assert NUMBER.search(reply).group(1) != number
        link = re.search(rf"{BASE}(/certificate/\S+)", reply).group(1)
        clock.advance(days=7, seconds=1)
        expired = await client.get(link)
        assert expired.status == 410 and "过期" in await expired.text()


async def test_periods_refusals_and_english(core, console, sessions, clock) -> None:
    bob = console("bob")
    assert "先完成实名注册" in await bob.send("学校要志愿服务证明")
    amy = console("amy")
    await served_hours(core, sessions, clock, amy)
    assert "2025-01-01 至 2025-12-31 没有审核通过的服务记录" in await amy.send("开志愿服务证明 去年")
    reply = await amy.send("开志愿服务证明 2026-03-03至2026-03-31")
    assert "服务时间：2026-03-03 至 2026-03-04" in reply and "2 小时（1 条记录）" in reply
    assert "没看懂这个时间段" in await amy.send("/certificate 随便")
    # no PUBLIC_BASE_URL: the console cannot get a link and is told how else
    assert "PUBLIC_BASE_URL" in await amy.send("开志愿服务证明 今年")
    english = await amy.send("I need a certificate")
    assert "Total volunteer service hours: 5" in english and "艾米" in english
    assert NUMBER.search(english)


async def test_telegram_sends_the_pdf_as_a_document(db_url, core, sessions, clock) -> None:
    async with open_conversations("telegram", core, sessions, db_url) as make:
        amy = make("amy")
        await served_hours(core, sessions, clock, amy)
        replies = await amy.send("/certificate")
        assert "志愿服务证明已开具" in joined(replies)
        number = NUMBER.search(joined(replies)).group(1)
        api = amy.harness.api
        [document] = api.documents(chat_id=amy.user_id)
        assert document.filename == f"certificate-{number.replace('-', '')}.pdf"
        assert document.data.startswith(b"%PDF") and len(document.data) > 5000
        [call] = api.calls_to("sendDocument")
        assert call.params["caption"] == "志愿服务证明（PDF）"


async def test_wechat_gets_a_signed_link(db_url, sessions, options, clock) -> None:
    core = Engine(sessions, dataclasses.replace(options, public_base_url=BASE), clock=clock)
    async with open_conversations("wechat", core, sessions, db_url) as make:
        amy = make("amy")
        await served_hours(core, sessions, clock, amy)
        reply = joined(await amy.send("开志愿服务证明"))
        assert "志愿服务证明已开具" in reply and f"{BASE}/certificate/" in reply and len(reply.encode()) < 2048


def test_numbers_check_digit() -> None:
    number = new_number()
    assert len(number) == 20 and normalize_number(format_number(number)) == number
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert normalize_number(wrong) is None and normalize_number("１２３") is None
    swapped = number[1] + number[0] + number[2:]
    assert number[0] == number[1] or normalize_number(swapped) is None


async def test_revoked_certificate_facts_and_tokens(core, console, sessions, clock) -> None:
    amy = console("amy")
    await served_hours(core, sessions, clock, amy)
    number = NUMBER.search(await amy.send("开志愿服务证明")).group(1)
    async with sessions() as session:
        certificate = await find_certificate(session, number=number)
        facts = facts_of(certificate, timezone="Asia/Shanghai")
    assert [(line.hours, line.recorder) for line in facts.lines] == [(3, "望京街道"), (2, "李协调")]
    assert facts.issuers == [("望京街道", ["望京街道"]), ("酒仙桥街道", ["李协调"])]
    assert facts.id_masked.startswith("1101**")
    assert sign_download(facts.number, expires_at=clock.now, secret="a" * 20) != sign_download(
        facts.number, expires_at=clock.now, secret="b" * 20)
    # withdrawing deletes the ID number everywhere: the certificate keeps the name and the hours
    await amy.send("退出志愿者")
    assert "已退出" in await amy.send("1")
    async with sessions() as session:
        facts = facts_of(await find_certificate(session, number=number), timezone="Asia/Shanghai")
    assert facts.id_masked == "" and facts.name == "艾米" and facts.total_hours == 5


async def _volunteer_with_hours(db_url: str) -> None:
    from datetime import UTC, date, datetime

    from models import HourRecord, Identity, Person
    from models.db import create_engine, create_session_factory
    from services.people import get_or_create_organization

    engine = create_engine(db_url)
    try:
        async with create_session_factory(engine)() as session:
            org = await get_or_create_organization(session, name="花家地社区")
            person = Person(name="韩梅梅", status="active", id_number_masked="1101**********1233",
                            registered_at=datetime(2026, 1, 1, tzinfo=UTC))
            session.add(person)
            await session.flush()
            session.add(Identity(channel="console", external_id="mei", person_id=person.id))
            session.add_all([HourRecord(person_id=person.id, hours=h, served_on=date(2025, m, 5), note="助老服务",
                                        organization_id=org.id) for h, m in ((2.5, 6), (4, 11))])
            await session.commit()
    finally:
        await engine.dispose()


@needs_poppler
def test_cli_writes_the_pdf_and_revokes(db_url, tmp_path, monkeypatch) -> None:
    import asyncio

    from typer.testing import CliRunner

    from bot.cli import app

    asyncio.run(_volunteer_with_hours(db_url))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("ID_ENCRYPTION_KEY", TEST_KEY)
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE)
    runner = CliRunner()
    out = tmp_path / "mei.pdf"
    done = runner.invoke(app, ["certificate", "--channel", "console", "--user", "mei", "--from", "2025-01-01",
                               "--to", "2025-12-31", "--out", str(out)])
    assert done.exit_code == 0, done.output
    number = NUMBER.search(done.output).group(1)
    assert "6.5 h" in done.output and f"{BASE}/verify/{number.replace('-', '')}" in done.output
    text = pdf_text(out.read_bytes(), tmp_path)
    assert "韩梅梅" in text and "6.5 小时" in text and number in text and "花家地社区" in text
    nobody = runner.invoke(app, ["certificate", "--channel", "console", "--user", "nobody", "--out", str(out)])
    assert nobody.exit_code == 1 and "no user" in nobody.output
    assert runner.invoke(app, ["certificate", "revoke", number, "--reason", "重复开具"]).exit_code == 0
    again = runner.invoke(app, ["certificate", "revoke", number, "--reason", "重复开具"])
    assert again.exit_code == 1 and "already revoked" in again.output
    assert runner.invoke(app, ["certificate", "revoke", new_number(), "--reason", "x"]).exit_code == 1


def test_font_fallback_and_a_bad_configured_font(tmp_path, monkeypatch) -> None:
    from datetime import date

    from bot.certificates import pdf
    from services.certificates import CertificateFacts, CertificateLine

    facts = CertificateFacts(number=new_number(), name="艾米", id_masked="", start=date(2026, 1, 1),
                             end=date(2026, 1, 2), total_hours=2, issued_on=date(2026, 1, 3), revoked_at=None,
                             revoked_reason=None, lines=[CertificateLine(date(2026, 1, 1), "", "", 2, "")])
    bad = tmp_path / "not-a-font.ttf"
    bad.write_bytes(b"nope")
    with pytest.raises(pdf.FontMissing, match="CERTIFICATE_FONT"):
        pdf.render_pdf(facts, verify_url="", font_path=str(bad))
    monkeypatch.setattr(pdf, "FONT_PATHS", ())
    pdf.cjk_font.cache_clear()
    try:
        data = pdf.render_pdf(facts, verify_url="")
    finally:
        pdf.cjk_font.cache_clear()
    assert data.startswith(b"%PDF") and b"STSong-Light" in data
