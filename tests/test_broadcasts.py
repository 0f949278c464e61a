"""Coordinators' broadcasts: the dialog, targets, counts, one-transaction queueing, progress, scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from models import Delivery, Person
from models.reminders import Broadcast
from services.broadcasts import BroadcastError, count_audience, progress, queue_broadcast
from services.reminders import set_preference
from tests.helpers import shown
from tests.reminder_helpers import add_volunteers, org_with_activity


async def test_coordinator_broadcast_dialog_count_confirm_and_progress(console, sessions, clock) -> None:
    org_id, activity = await org_with_activity(sessions, start=clock.now + timedelta(days=3))
    people = await add_volunteers(sessions, 4, activity_id=activity.id, skills="elderly,environment")
    await add_volunteers(sessions, 2, start_id=2000, activity_id=activity.id, skills="tutoring", area="望京")
    other_org, other_activity = await org_with_activity(sessions, org="别的服务站", coordinator="other",
                                                        start=clock.now + timedelta(days=3))
    await add_volunteers(sessions, 3, start_id=3000, activity_id=other_activity.id)
    async with sessions() as session:
        await set_preference(session, person_id=people[3], kind="broadcast", enabled=False, now=clock.now)
        await session.commit()

    coord = console("coord")
    assert "请输入通知内容" in await coord.send("群发")
    assert "发给谁" in await coord.send("3.12 植树节 需要 20 名志愿者，上午 9 点集合")
    reply = await coord.send("1")  # the whole organization
    assert "共 5 名志愿者" in reply  # 6 of ours minus the one who switched broadcasts off; none of the other org
    assert "已排队发送给 5 名志愿者" in await coord.send("确认发送")
    async with sessions() as session:
        rows = list(await session.exec(select(Delivery).where(Delivery.source == "broadcast")))
        assert len(rows) == 5 and all(shown(r).startswith("【花家地社区服务站】3.12 植树节") for r in rows)
        assert {r.status for r in rows} == {"pending"}
        broadcast = (await session.exec(select(Broadcast))).one()
        assert broadcast.recipients == 5 and broadcast.queued == 5 and broadcast.organization_id == org_id
        rows[0].status, rows[1].status = "sent", "failed"
        session.add_all(rows[:2])
        await session.commit()
    reply = await coord.send("群发进度")
    assert "已发送 1 · 待发送 3 · 待用户上线 0 · 失败 1" in reply

    # by skill and by area
    await coord.send("群发")
    await coord.send("周六望京辅导作业")
    assert "选择技能" in await coord.send("2")
    assert "共 2 名志愿者" in await coord.send("儿童辅导")
    await coord.send("放弃")
    await coord.send("群发")
    await coord.send("周六花家地清洁")
    await coord.send("3")
    assert "共 3 名志愿者" in await coord.send("花家地")

    # nobody else can broadcast, and a volunteer is told so
    assert "只有协调员或管理员" in await console("alice").send("群发")
    assert other_org != org_id


async def test_targets_stay_inside_the_organization(sessions, clock) -> None:
    org_id, activity = await org_with_activity(sessions, start=clock.now + timedelta(days=3))
    _, foreign = await org_with_activity(sessions, org="别的服务站", coordinator="other",
                                         start=clock.now + timedelta(days=3))
    await add_volunteers(sessions, 2, activity_id=activity.id)
    await add_volunteers(sessions, 2, start_id=2000, activity_id=foreign.id)
    async with sessions() as session:
        with pytest.raises(BroadcastError) as error:
            await count_audience(session, organization_id=org_id, kind="activity", value=str(foreign.id))
        assert error.value.reason == "activity_not_in_org"
        audience = await count_audience(session, organization_id=org_id, kind="activity", value=str(activity.id))
        assert (audience.people, audience.messages) == (2, 2)
        assert (await count_audience(session, organization_id=org_id, kind="skill", value="eld")).people == 0


async def test_queueing_is_one_transaction(sessions, clock) -> None:
    org_id, activity = await org_with_activity(sessions, start=clock.now + timedelta(days=3))
    await add_volunteers(sessions, 30, activity_id=activity.id)
    async with sessions() as session:
        author = (await session.exec(select(Person).order_by(Person.id))).first()
        assert author is not None and author.id is not None
        author_id = author.id
        broadcast = await queue_broadcast(session, author_id=author_id, organization_id=org_id, kind="org", value="",
                                          text="测试", now=clock.now)
        assert broadcast.queued == 30
        await session.rollback()  # e.g. the process died before the commit
    async with sessions() as session:
        assert list(await session.exec(select(Delivery))) == []
        assert list(await session.exec(select(Broadcast))) == []
        broadcast = await queue_broadcast(session, author_id=author_id, organization_id=org_id, kind="org", value="",
                                          text="测试", now=clock.now)
        await session.commit()
        assert broadcast.id is not None
        assert (await progress(session, broadcast_id=broadcast.id)).pending == 30
        with pytest.raises(BroadcastError):
            await queue_broadcast(session, author_id=author_id, organization_id=org_id, kind="org", value="",
                                  text="   ", now=clock.now)


async def test_changing_the_target_before_sending_counts_again(console, sessions, clock) -> None:
    _, activity = await org_with_activity(sessions, start=clock.now + timedelta(days=3))
    await add_volunteers(sessions, 4, activity_id=activity.id)
    await add_volunteers(sessions, 2, start_id=2000, activity_id=activity.id, area="望京")
    coord = console("coord")
    await coord.send("群发")
    await coord.send("周六望京清洁")
    assert "共 6 名志愿者" in await coord.send("1")
    assert "要修改哪一项" in await coord.send("修改")
    assert "发给谁" in await coord.send("发送对象")
    assert "输入社区或地区名称" in await coord.send("3")
    summary = await coord.send("望京")
    assert "共 2 名志愿者" in summary and "地区：望京" in summary and "周六望京清洁" in summary
    assert "已排队发送给 2 名志愿者" in await coord.send("确认发送")
    async with sessions() as session:
        assert (await session.exec(select(Broadcast))).one().target_value == "望京"
