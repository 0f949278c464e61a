"""The web console's dashboard with 1,000 volunteers and 10,000 hour records: p50/p99 over HTTP.

Fills a scratch database (a SQLite file, or a fresh PostgreSQL database dropped at the end), serves
``serve``'s app in this process, signs a coordinator in through a one-time link and times GET /admin/
beside GET /healthz on the same server (the floor: routing, one SELECT 1). ``--screenshots DIR`` also
saves the dashboard, an activity's roster and a notice page from a headless Chromium (docs/*.png).

    .venv/bin/python bench/bench_web.py                      # SQLite
    .venv/bin/python bench/bench_web.py --db postgresql      # BENCH_POSTGRES_URL, default the local server
    .venv/bin/python bench/bench_web.py --screenshots docs   # the README's pictures
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import create_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import Runtime, upgrade_schema  # noqa: E402
from common.i18n import _  # noqa: E402
from common.taxonomy import CATEGORIES  # noqa: E402
from handlers.engine import Engine  # noqa: E402
from models import Activity, HourRecord, Identity, Organization, Person, Role, Signup  # noqa: E402
from models.db import create_engine, create_session_factory  # noqa: E402
from models.requests import ServiceRequest  # noqa: E402
from services.notice_links import sign_notice  # noqa: E402
from services.notify import notify_person  # noqa: E402
from services.web_auth import create_login_link  # noqa: E402

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
KEY = "bench-web-key-0123456789abcdef"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "小丽 建国 秀英 志强 海燕 桂兰 德明 玉梅 春生 晓东 丽娟 文华".split()
TITLES = ("敬老院探访", "社区环境整治", "垃圾分类宣传", "义务理发", "儿童课业辅导", "防诈骗讲座", "助残陪同")
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


async def fill(sessions, volunteers: int, records: int) -> tuple[int, int]:  # noqa: ANN001
    rng = random.Random(7)
    async with sessions() as session:
        org = Organization(name="花家地社区志愿服务站", kind="station")
        session.add(org)
        await session.flush()
        coordinator = Person(name="赵协调", status="active")
        session.add(coordinator)
        await session.flush()
        session.add(Role(person_id=coordinator.id, role="coordinator", organization_id=org.id))
        identity = Identity(channel="console", external_id="coord", person_id=coordinator.id)
        session.add(identity)
        people = [Person(name=rng.choice(SURNAMES) + rng.choice(GIVEN), status="active", area="花家地",
                         skills=rng.choice(("elderly", "tutoring", "repair,errands", "environment", "")),
                         phone_masked=f"13{rng.randint(0, 9)}****{rng.randint(0, 9999):04d}",
                         id_number_masked=f"110105********{rng.randint(0, 9999):04d}", registered_at=NOW)
                  for _n in range(volunteers)]
        session.add_all(people)
        await session.flush()
        activities = []
        for index in range(60):
            start = NOW - timedelta(days=360 - index * 6 - rng.randint(0, 3), hours=rng.randint(0, 6))
            activities.append(Activity(title=TITLES[index % len(TITLES)], place="花家地北里", category="elderly",
                                       start_at=start, end_at=start + timedelta(hours=3), capacity=40,
                                       organization_id=org.id, checkin_code=f"b{index}"))
        for index in range(6):  # upcoming ones
            start = NOW + timedelta(days=2 + index * 3, hours=1)
            activities.append(Activity(title=TITLES[index], place="望京西园", category="environment", start_at=start,
                                       end_at=start + timedelta(hours=2, minutes=30), capacity=20,
                                       organization_id=org.id, checkin_code=f"u{index}"))
        session.add_all(activities)
        await session.flush()
        seen = set()
        for _n in range(records):
            activity = rng.choice(activities[:60])
            person = rng.choice(people)
            if (activity.id, person.id) in seen:
                person = rng.choice(people)
            seen.add((activity.id, person.id))
            session.add(HourRecord(person_id=person.id, activity_id=activity.id, hours=rng.choice((2, 2.5, 3)),
                                   served_on=activity.start_at.date(), organization_id=org.id, recorded_by=coordinator.id))
        for person in people[:200]:  # long-serving volunteers: their stars
            session.add(HourRecord(person_id=person.id, hours=rng.choice((100, 150, 320, 650, 1100)), source="import",
                                   served_on=date(2025, 6, 1), organization_id=org.id, note="往年累计"))
        for person in people[:18]:
            session.add(Signup(activity_id=activities[60].id, person_id=person.id, status="confirmed",
                               checkin_at=None))
        for index in range(5):
            session.add(HourRecord(person_id=people[index].id, hours=1.5, served_on=date(2026, 11, 20 + index),
                                   approved=False, source="visit", note="入户探访", organization_id=org.id))
        for index in range(80):
            session.add(ServiceRequest(resident_id=people[-1 - index].id, category=rng.choice(CATEGORIES[:8]),
                                       description="独居老人，想请人每周陪聊一次", community="花家地社区",
                                       contact_name="居民", phone_masked="139****0000", organization_id=org.id,
                                       status=rng.choice(("pending_review", "approved", "rated", "rated"))))
        await session.commit()
        token = await create_login_link(session, person_id=coordinator.id, identity_id=identity.id, now=NOW)
        listener = Identity(channel="wechat", external_id="o_bench", person_id=people[0].id)
        session.add(listener)
        await session.flush()
        [notice] = await notify_person(session, person_id=people[0].id, now=NOW, message=_(
            "好消息：有人取消了报名，你已从候补转为正式参加「{title}」。", title="社区环境整治（望京西园，请带手套）"),
            choices=[(_("查看活动"), "act:1")])
        await session.commit()
        return activities[60].id, notice.id, token  # type: ignore[return-value]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def timed(http: aiohttp.ClientSession, url: str, rounds: int) -> list[float]:
    times = []
    for _round in range(rounds):
        began = time.perf_counter()
        async with http.get(url) as response:
            await response.read()
            assert response.status == 200, (url, response.status)
        times.append((time.perf_counter() - began) * 1000)
    return times


def screenshots(base: str, token: str, roster: int, notice_token: str, where: Path) -> None:
    from tests.browser import start_chromium

    with tempfile.TemporaryDirectory() as scratch:
        driver = start_chromium(Path(scratch) / "p", Path(scratch), width=1280, height=1000)
        try:
            driver.get(f"{base}/admin/login/{token}")
            driver.save_screenshot(str(where / "web-dashboard.png"))
            driver.get(f"{base}/admin/activities/{roster}")
            driver.save_screenshot(str(where / "web-roster.png"))
            driver.set_window_size(390, 780)
            driver.get(f"{base}/n/{notice_token}")
            driver.save_screenshot(str(where / "web-notice.png"))
        finally:
            driver.quit()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--volunteers", type=int, default=1000)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp()
    if args.db == "sqlite":
        url, admin_url, name = f"sqlite+aiosqlite:///{scratch}/bench.db", None, None
    else:
        admin_url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG)
        name = f"vb_bench_web_{os.getpid()}"
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        admin = create_engine(admin_url)
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
    engine = create_engine(url)
    try:
        await upgrade_schema(engine)
        sessions = create_session_factory(engine)
        roster, notice_id, token = await fill(sessions, args.volunteers, args.records)
        settings = Settings(_env_file=None, database_url=url, id_encryption_key=KEY)  # type: ignore[call-arg]
        runtime = Runtime(settings=settings, db=engine, sessions=sessions,
                          core=Engine(sessions, settings.core_options(), clock=lambda: NOW))
        server = TestServer(await create_app(runtime, channels=[]), host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(screenshots, base, token, roster, sign_notice(notice_id, secret=KEY, now=NOW),
                                    args.screenshots)
            print(f"screenshots in {args.screenshots}")
        else:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.get(f"{base}/admin/login/{token}") as response:
                    assert response.status == 200
                await timed(http, f"{base}/admin/", 10)  # warm-up
                floor = await timed(http, f"{base}/healthz", args.rounds)
                page = await timed(http, f"{base}/admin/", args.rounds)
            print(f"{args.db}: {args.volunteers} volunteers, {args.records} hour records, {args.rounds} requests each")
            print(f"  GET /healthz   p50 {statistics.median(floor):7.1f} ms   p99 {percentile(floor, 0.99):7.1f} ms")
            print(f"  GET /admin/    p50 {statistics.median(page):7.1f} ms   p99 {percentile(page, 0.99):7.1f} ms")
        await server.close()
    finally:
        await engine.dispose()
        if admin_url and name:
            admin = create_engine(admin_url)
            async with admin.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
