"""Membership and the hierarchy: a volunteer belongs to an organization (registration, profile), broadcasts
reach members, a center's coordinator manages its stations, the volunteer list, and the org CLI."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from models import Delivery, Identity, Organization, Person
from models.membership import Membership
from services.hours import HoursError
from services.hours_review import add_hours, review_hours
from services.orgs import managed_org_ids, set_membership
from services.people import get_or_create_organization
from tests.helpers import ORG_QUESTION, add_activity, adult_id, make_coordinator, person_of, register, shown
from tests.reminder_helpers import add_volunteers
from tests.test_cli import run


async def _tree(sessions) -> dict[str, int]:
    """朝阳区志愿服务中心 → 花家地社区服务站 (→ 花家地青年队), 望京社区服务站; returns name → id."""
    async with sessions() as session:
        center = await get_or_create_organization(session, name="朝阳区志愿服务中心", kind="center")
        hua = await get_or_create_organization(session, name="花家地社区服务站", parent_id=center.id)
        team = await get_or_create_organization(session, name="花家地青年队", kind="team", parent_id=hua.id)
        wang = await get_or_create_organization(session, name="望京社区服务站", parent_id=center.id)
        await session.commit()
        return {o.name: o.id for o in (center, hua, team, wang)}


async def _center_and_sibling(sessions) -> tuple[dict[str, int], int, int]:
    """The tree, "boss" coordinating the center and "wangjing" the 望京 station (console users)."""
    orgs = await _tree(sessions)
    await make_coordinator(sessions, channel="console", user="boss", org="朝阳区志愿服务中心")
    await make_coordinator(sessions, channel="console", user="wangjing", org="望京社区服务站")
    boss = await person_of(sessions, "console", "boss")
    wang = await person_of(sessions, "console", "wangjing")
    assert boss.id is not None and wang.id is not None
    return orgs, boss.id, wang.id


async def _membership(sessions, person_id: int) -> str | None:
    async with sessions() as session:
        row = await session.get(Membership, person_id)
        org = await session.get(Organization, row.organization_id) if row else None
        return org.name if org else None


async def test_a_registered_volunteer_who_never_joined_anything_receives_the_broadcast(console, sessions,
                                                                                       clock) -> None:
    orgs = await _tree(sessions)
    await make_coordinator(sessions, channel="console", user="coord", org="花家地社区服务站")
    await make_coordinator(sessions, channel="console", user="boss", org="朝阳区志愿服务中心")
    alice = console("alice")
    reply = await register(alice, "王小丽")  # 花家地社区 names 花家地社区服务站: not asked, shown on the summary
    assert "注册成功" in reply
    first = await person_of(sessions, "console", "alice")
    assert await _membership(sessions, first.id) == "花家地社区服务站"
    # someone of another station who did join one of ours is reached as a past participant
    activity = await add_activity(sessions, org_id=orgs["花家地社区服务站"], start=clock.now - timedelta(days=3))
    await add_volunteers(sessions, 1, start_id=5000, activity_id=activity.id, area="望京")

    coord = console("coord")
    assert "花家地青年队" in await coord.send("群发")  # the station and the team below it
    await coord.send("1")
    await coord.send("周六上午植树，欢迎报名")
    assert "共 2 名志愿者" in await coord.send("1")
    assert "已排队发送给 2 名志愿者" in await coord.send("确认发送")
    async with sessions() as session:
        rows = list(await session.exec(select(Delivery).where(Delivery.source == "broadcast")))
        mine = [r for r in rows if (await session.get(Identity, r.identity_id)).person_id == first.id]
        assert len(mine) == 1 and shown(mine[0]).startswith("【花家地社区服务站】周六上午植树")

    # the center's broadcast reaches its stations' members too; a sibling station's does not reach ours
    boss = console("boss")
    await boss.send("群发")
    await boss.send("1")
    await boss.send("全区志愿者大会")
    assert "共 2 名志愿者" in await boss.send("1")
    await make_coordinator(sessions, channel="console", user="wangjing", org="望京社区服务站")
    wang = console("wangjing")
    await wang.send("群发")
    await wang.send("望京的通知")
    assert "目前没有可以接收通知的志愿者" in await wang.send("1")


async def test_membership_is_chosen_at_registration_and_changed_in_the_profile(console, sessions) -> None:
    await _tree(sessions)
    bob = console("bob")
    await bob.send("注册")
    await bob.send("李四")
    await bob.send(adult_id(77))
    await bob.send("13900139000")
    await bob.send("1")
    asked = await bob.send("酒仙桥街道")  # names no organization: the organization is asked, with buttons
    assert ORG_QUESTION in asked and "望京社区服务站" in asked and "跳过" in asked
    assert "没有找到这个组织" in await bob.send("不存在的地方")
    summary = await bob.send("望京")  # typed: matched by its community
    assert "所属组织：望京社区服务站" in summary
    assert "注册成功" in await bob.send("确认提交")
    person = await person_of(sessions, "console", "bob")
    assert await _membership(sessions, person.id) == "望京社区服务站"
    assert "所属组织：望京社区服务站" in await bob.send("我的资料")

    # 更换组织: the buttons of the organizations, then the summary to confirm
    reply = await bob.send("更换组织")
    assert ORG_QUESTION in reply and "花家地青年队" in reply
    number = next(line.split(".")[0] for line in reply.splitlines() if line.endswith(". 花家地青年队")
                  or line.endswith(" 花家地青年队"))
    assert "所属组织：花家地青年队" in await bob.send(number)
    assert "资料已更新" in await bob.send("确认提交")
    assert await _membership(sessions, person.id) == "花家地青年队"

    # the profile's 修改 menu offers it too
    await bob.send("我的资料")
    await bob.send("修改资料")
    assert ORG_QUESTION in await bob.send("所属组织")
    await bob.send("朝阳区志愿服务中心")
    assert "资料已更新" in await bob.send("确认提交")
    assert await _membership(sessions, person.id) == "朝阳区志愿服务中心"


async def test_a_center_coordinator_manages_a_child_station_and_a_sibling_cannot(console, sessions, clock) -> None:
    orgs, boss_id, wang_id = await _center_and_sibling(sessions)
    async with sessions() as session:
        assert await managed_org_ids(session, person_id=boss_id) == set(orgs.values())
        assert await managed_org_ids(session, person_id=wang_id) == {orgs["望京社区服务站"]}

    await add_activity(sessions, org_id=orgs["花家地青年队"], start=clock.now + timedelta(days=1))
    eve = console("eve")
    await register(eve, "伊娃", serial=40, phone="13512345678")
    await eve.send("活动")
    await eve.send("1")
    await eve.send("报名参加")

    boss = console("boss")
    await boss.send("活动")
    assert "查看名单" in await boss.send("1")
    assert "伊娃 135****5678" in await boss.send("查看名单")
    wang = console("wangjing")
    await wang.send("活动")
    details = await wang.send("1")
    assert "查看名单" not in details

    # hours self-reported to the grandchild team: the center approves, the sibling station cannot
    eve_id = (await person_of(sessions, "console", "eve")).id
    async with sessions() as session:
        first = await add_hours(session, person_id=eve_id, hours=2, served_on=clock.now.date(),
                                organization_id=orgs["花家地青年队"], source="visit", note="看望", recorded_by=eve_id,
                                now=clock.now)
        second = await add_hours(session, person_id=eve_id, hours=1, served_on=clock.now.date(),
                                 organization_id=orgs["花家地社区服务站"], source="visit", note="看望",
                                 recorded_by=eve_id, now=clock.now)
        await session.commit()
        first_id, second_id = first.id, second.id
        with pytest.raises(HoursError) as error:
            await review_hours(session, record_id=second_id, reviewer_id=wang_id, admin=False, approve=True,
                               now=clock.now)
        assert error.value.reason == "not_manager"
        await session.rollback()
    assert "没有待审核的志愿时长" in await wang.send("审核时长")
    listed = await boss.send("审核时长")
    assert f"#{first_id} 伊娃" in listed and f"#{second_id} 伊娃" in listed
    await boss.send("1")
    assert "已通过" in await boss.send("通过")


async def test_the_volunteer_list_masks_phones_and_pages(console, sessions, clock) -> None:
    orgs = await _tree(sessions)
    await make_coordinator(sessions, channel="console", user="coord", org="花家地社区服务站")
    await make_coordinator(sessions, channel="console", user="wangjing", org="望京社区服务站")
    activity = await add_activity(sessions, org_id=orgs["花家地社区服务站"], start=clock.now - timedelta(days=2),
                                  title="敬老院探访")
    people = await add_volunteers(sessions, 8, activity_id=activity.id, skills="elderly,tutoring,medical,legal")
    async with sessions() as session:
        for n, person_id in enumerate(people):
            person = await session.get(Person, person_id)
            person.phone_masked = f"138****{8000 + n}"
            session.add(person)
            await set_membership(session, person_id=person_id, organization_id=orgs["花家地青年队"], now=clock.now)
        await add_hours(session, person_id=people[0], hours=2.5, served_on=clock.now.date(),
                        organization_id=orgs["花家地社区服务站"], source="visit", note="", recorded_by=None,
                        now=clock.now, self_reported=False)
        await session.commit()
    coord = console("coord")
    page = await coord.send("志愿者名单")
    assert "志愿者名单（共 8 人，第 1/2 页）" in page
    assert "志愿者0｜138****8000｜花家地青年队" in page and "今年 2.5 小时" in page
    assert "最近活动：敬老院探访" in page and "助老陪伴、儿童辅导、医疗健康等" in page
    assert len(page.encode()) < 2048
    second = await coord.send("下一页")
    assert "第 2/2 页" in second and "7. 志愿者6" in second
    assert "还没有志愿者成员" in await console("wangjing").send("我的志愿者")
    assert "只有协调员或管理员" in await console("nobody").send("志愿者名单")


async def test_request_matching_counts_a_member_of_the_station_as_of_the_area(sessions, clock) -> None:
    from models.requests import ServiceRequest
    from services.requests.matching import rank_volunteers

    orgs = await _tree(sessions)
    people = await add_volunteers(sessions, 2, area="别处")
    async with sessions() as session:
        await set_membership(session, person_id=people[0], organization_id=orgs["花家地青年队"], now=clock.now)
        resident = Person(name="居民", status="guest", created_at=clock.now)
        session.add(resident)
        await session.flush()
        request = ServiceRequest(resident_id=resident.id, category="elderly", description="陪聊", community="花家地社区",
                                 contact_name="张", preferred_time="", notes="", status="approved",
                                 organization_id=orgs["花家地社区服务站"], created_at=clock.now)
        session.add(request)
        await session.flush()
        ranked = await rank_volunteers(session, request=request)
        assert [c.person.id for c in ranked] == [people[0]]


async def test_org_list_prints_the_tree(db_url: str, sessions, clock, tmp_path) -> None:
    orgs = await _tree(sessions)
    async with sessions() as session:
        await set_membership(session, person_id=(await add_volunteers(sessions, 1))[0],
                             organization_id=orgs["花家地社区服务站"], now=clock.now)
        await session.commit()
    env = {"DATABASE_URL": db_url}
    out = run(["org", "list"], cwd=tmp_path, env=env).stdout
    center, hua, team, wang = (orgs[n] for n in ("朝阳区志愿服务中心", "花家地社区服务站", "花家地青年队", "望京社区服务站"))
    assert out.splitlines() == [
        f"#{center} 朝阳区志愿服务中心 (center) · 0 members",
        f"  #{hua} 花家地社区服务站 (station) · 1 members",
        f"    #{team} 花家地青年队 (team) · 0 members",
        f"  #{wang} 望京社区服务站 (station) · 0 members",
    ]
    run(["org", "add", "酒仙桥社区服务站", "--parent", "朝阳区志愿服务中心"], cwd=tmp_path, env=env)
    assert "  #5 酒仙桥社区服务站 (station)" in run(["org", "list"], cwd=tmp_path, env=env).stdout
    typo = run(["org", "add", "新站", "--parent", "朝阳区中心"], cwd=tmp_path, env=env, check=False)
    assert typo.returncode == 1 and "did you mean: 朝阳区志愿服务中心" in typo.stderr

    # a typo is refused, naming the close names; --create makes it
    refused = run(["admin", "grant", "coordinator", "--channel", "console", "--user", "c1", "--org", "花家地社区"],
                  cwd=tmp_path, env=env, check=False)
    assert refused.returncode == 1
    assert "no organization named '花家地社区'" in refused.stderr and "花家地社区服务站" in refused.stderr
    assert "--create" in refused.stderr
    async with sessions() as session:
        assert (await session.exec(select(Organization).where(Organization.name == "花家地社区"))).first() is None
    created = run(["admin", "grant", "coordinator", "--channel", "console", "--user", "c1", "--org", "花家地社区",
                   "--create"], cwd=tmp_path, env=env).stdout
    assert "created organization" in created and "granted coordinator @ 花家地社区" in created
    granted = run(["admin", "grant", "coordinator", "--channel", "console", "--user", "c2", "--org",
                   "望京社区服务站"], cwd=tmp_path, env=env).stdout
    assert "created" not in granted and "granted coordinator @ 望京社区服务站" in granted


def _upgrade_to(connection, url: str, target: str) -> None:
    from alembic import command

    from bot.runtime import alembic_config

    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, target)


async def test_the_migration_makes_existing_volunteers_members_of_the_organization_they_registered_in(
        tmp_path) -> None:
    """Volunteers registered before membership existed: the one whose community names a station joins it."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from bot.runtime import alembic_config
    from models.db import create_engine

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    scripts = ScriptDirectory.from_config(alembic_config(url))
    mine = next(s for s in scripts.walk_revisions() if (s.doc or "").startswith("membership:"))
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, url, str(mine.down_revision))
            await conn.execute(text(
                "INSERT INTO organization (id, name, kind) VALUES (1, '花家地社区志愿服务站', 'station'), "
                "(2, '花家地站', 'station'), (3, '望京街道', 'station')"))
            for pid, area, status in ((1, '朝阳区花家地社区', 'active'), (2, '望京街道', 'active'),
                                      (3, '酒仙桥', 'active'), (4, '花家地社区', 'withdrawn')):
                await conn.execute(text(
                    "INSERT INTO person (id, skills, area, status, created_at) VALUES (:id, '', :area, :status, "
                    "'2026-01-01 00:00:00')"), {"id": pid, "area": area, "status": status})
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, url, "heads")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT person_id, organization_id FROM membership ORDER BY 1"))).all()
    finally:
        await engine.dispose()
    # the longest matching name wins; no match, or a withdrawn volunteer, gets none
    assert [tuple(r) for r in rows] == [(1, 1), (2, 3)]


async def test_requests_of_a_station_without_coordinators_go_to_its_center(sessions, clock) -> None:
    from models.requests import ServiceRequest
    from services.requests.core import can_manage, station_coordinators

    orgs, boss_id, wang_id = await _center_and_sibling(sessions)
    async with sessions() as session:
        assert await station_coordinators(session, organization_id=orgs["花家地青年队"]) == [boss_id]
        assert await station_coordinators(session, organization_id=orgs["望京社区服务站"]) == [wang_id]
        request = ServiceRequest(resident_id=wang_id, category="elderly", description="陪聊", community="花家地社区",
                                 contact_name="张", preferred_time="", notes="", status="pending_review",
                                 organization_id=orgs["花家地社区服务站"], created_at=clock.now)
        assert await can_manage(session, request=request, person_id=boss_id, admin=False)
        assert not await can_manage(session, request=request, person_id=wang_id, admin=False)


async def test_choosing_the_organization_by_button_and_the_volunteer_list_on_every_channel(
        conversation_factory, sessions) -> None:
    from tests.conversation import joined

    await make_coordinator(sessions, channel="console", user="other", org="酒仙桥社区服务站")
    coord = conversation_factory("coord")
    await make_coordinator(sessions, channel=coord.channel, user=coord.user, org="望京社区服务站")
    amy = conversation_factory("amy")
    for answer in ("注册", "艾米", adult_id(20), "13512345678", "1,3"):
        await amy.send(answer)
    asked = joined(await amy.send("花家地社区"))  # names neither: asked, with a button each and 跳过
    assert ORG_QUESTION in asked and {"望京社区服务站", "酒仙桥社区服务站", "跳过"} <= set(amy.buttons)
    assert "没有找到这个组织" in joined(await amy.send("花家地"))
    assert "所属组织：酒仙桥社区服务站" in joined(await amy.press("酒仙桥社区服务站"))
    assert "注册成功" in joined(await amy.press("确认提交"))
    assert "还没有志愿者成员" in joined(await coord.send("志愿者名单"))
    await amy.send("更换组织")
    assert "所属组织：望京社区服务站" in joined(await amy.press("望京社区服务站"))
    assert "资料已更新" in joined(await amy.press("确认提交"))

    listing = joined(await coord.send("志愿者名单"))
    assert "艾米｜135****5678｜望京社区服务站" in listing and "助老陪伴、儿童辅导" in listing
    assert "13512345678" not in listing
