"""Every privileged action checked for every role (volunteer, coordinators of this and another
organization, admin by role, admin by the ADMINS setting)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from models import Activity, HourRecord, Organization
from services.people import get_or_create_identity, grant_role
from tests.helpers import add_activity, make_coordinator, register

ROLES = ("volunteer", "coordinator_here", "coordinator_elsewhere", "admin", "bootstrap_admin")
ALLOWED = {"coordinator_here", "admin", "bootstrap_admin"}
DENIED = "只有该组织的协调员或管理员"
# commands any coordinator may start are refused by the engine with one common text
NOT_A_COORDINATOR = "只有协调员或管理员可以这样做"


async def _setup(console, sessions, clock, role: str) -> tuple[object, Activity]:
    org = await make_coordinator(sessions, channel="console", user="owner", org="望京街道")
    await make_coordinator(sessions, channel="console", user="other", org="酒仙桥街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=2)
    user = {"volunteer": "vol", "coordinator_here": "owner", "coordinator_elsewhere": "other", "admin": "adm",
            "bootstrap_admin": "root"}[role]
    if role == "admin":
        async with sessions() as session:
            _, person = await get_or_create_identity(session, channel="console", external_id="adm", now=clock.now)
            await grant_role(session, person_id=person.id, role="admin", organization_id=None)
            await session.commit()
    return console(user), activity


@pytest.mark.parametrize("role", ROLES)
async def test_create_activity(console, sessions, clock, role: str) -> None:
    channel, _ = await _setup(console, sessions, clock, role)
    reply = await channel.send("发布活动")
    if role == "volunteer":
        assert NOT_A_COORDINATOR in reply
        return
    assert "活动名称" in reply
    for answer in ("周末义诊", "无", "义诊健康", "社区医院", "跳过", "3月20日 9:00", "对", "11:00", "5"):
        reply = await channel.send(answer)
    if "由哪个组织发布" in reply:  # admins choose among all organizations
        reply = await channel.send("望京街道")
    assert "确认发布" in reply
    await channel.send("1")
    async with sessions() as session:
        count = (await session.exec(select(func.count()).select_from(Activity))).one()
    # a coordinator elsewhere publishes for their own organization only: still a new activity
    assert count == 2


@pytest.mark.parametrize("role", ROLES)
async def test_view_roster(console, sessions, clock, role: str) -> None:
    channel, activity = await _setup(console, sessions, clock, role)
    reply = await channel.send(f"/roster {activity.id}")
    assert (DENIED not in reply and "报名名单" in reply) is (role in ALLOWED)


@pytest.mark.parametrize("role", ROLES)
async def test_record_hours(console, sessions, clock, role: str) -> None:
    channel, activity = await _setup(console, sessions, clock, role)
    vol = console("volx")
    await register(vol, "韩梅梅", serial=70)
    await vol.send(f"/join {activity.id}")
    clock.advance(days=1, hours=3)
    reply = await channel.send(f"/rec {activity.id}")
    if role == "volunteer":
        assert NOT_A_COORDINATOR in reply
    elif role not in ALLOWED:
        assert DENIED in reply
    else:
        assert "待记录 1 人" in reply
        await channel.send("1")
    async with sessions() as session:
        count = (await session.exec(select(func.count()).select_from(HourRecord))).one()
    assert count == (1 if role in ALLOWED else 0)


@pytest.mark.parametrize("role", ROLES)
async def test_management_buttons_only_for_managers(console, sessions, clock, role: str) -> None:
    channel, activity = await _setup(console, sessions, clock, role)
    details = await channel.send(f"/act {activity.id}")
    assert ("查看名单" in details) is (role in ALLOWED)


async def test_role_revoked_mid_dialog_is_checked_again_at_publish(console, sessions, clock) -> None:
    from services.people import revoke_role

    channel, _ = await _setup(console, sessions, clock, "coordinator_here")
    await channel.send("发布活动")
    for answer in ("周末义诊", "无", "义诊健康", "社区医院", "跳过", "3月20日 9:00", "对", "11:00", "5"):
        await channel.send(answer)
    async with sessions() as session:
        _, person = await get_or_create_identity(session, channel="console", external_id="owner", now=clock.now)
        org_id = (await session.exec(select(Activity.organization_id))).first()
        await revoke_role(session, person_id=person.id, role="coordinator", organization_id=org_id)
        await session.commit()
    # the flow's role is checked before the answer (and the organization again at the write)
    assert NOT_A_COORDINATOR in await channel.send("1")
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Activity))).one() == 1  # the setup's only
        await grant_role(session, person_id=person.id, role="admin", organization_id=None)
        await session.commit()
    assert "没看懂" not in await channel.send("1")  # the dialog was ended: "1" is no answer to it any more
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Activity))).one() == 1


async def _revoke(sessions, clock, user: str) -> None:  # noqa: ANN001
    from services.people import revoke_role

    async with sessions() as session:
        _, person = await get_or_create_identity(session, channel="console", external_id=user, now=clock.now)
        for org_id in (await session.exec(select(Organization.id))).all():
            await revoke_role(session, person_id=person.id, role="coordinator", organization_id=org_id)
        await session.commit()


async def test_revoked_coordinator_cannot_finish_recording_hours(console, sessions, clock) -> None:
    channel, activity = await _setup(console, sessions, clock, "coordinator_here")
    volunteer = console("vol")
    await register(volunteer, "艾米", serial=70)
    await volunteer.send(f"/join {activity.id}")
    clock.advance(days=1, hours=3)
    assert "待记录 1 人" in await channel.send(f"/rec {activity.id}")
    await _revoke(sessions, clock, "owner")
    assert NOT_A_COORDINATOR in await channel.send("2")
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(HourRecord))).one() == 0


async def test_recording_hours_checks_the_organization_at_the_write(sessions, clock) -> None:
    """A coordinator of another organization (still a coordinator, so the flow's role passes) writes nothing."""
    from services.hours import HoursError, record_hours_for

    org = await make_coordinator(sessions, channel="console", user="owner", org="望京街道")
    await make_coordinator(sessions, channel="console", user="other", org="酒仙桥街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now - timedelta(hours=3), hours=2)
    async with sessions() as session:
        _, other = await get_or_create_identity(session, channel="console", external_id="other", now=clock.now)
        with pytest.raises(HoursError) as refused:
            await record_hours_for(session, activity=activity, person_ids=[other.id], hours=1, recorded_by=other.id,
                                   served_on=clock.now.date(), now=clock.now, admin=False)
    assert refused.value.reason == "not_manager"


async def test_revoked_coordinator_cannot_finish_a_pairing(console, sessions, clock) -> None:
    from models.requests import Pairing

    channel, _ = await _setup(console, sessions, clock, "coordinator_here")
    await register(console("vol"), "艾米", serial=71)
    assert "志愿者的姓名" in await channel.send("结对帮扶")
    assert "居民怎么称呼" in await channel.send("艾米")
    assert "多少天" in await channel.send("王奶奶")
    await _revoke(sessions, clock, "owner")
    assert NOT_A_COORDINATOR in await channel.send("7")
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Pairing))).one() == 0


# Actions any coordinator (of any organization) or admin may start; each then works on the
# organizations the person manages (the services' own tests cover the organization boundary).
COORDINATOR_ACTIONS = {
    "群发": (NOT_A_COORDINATOR, "通知"),
    "节日管理": (NOT_A_COORDINATOR, "节日"),
    "导出台账": (NOT_A_COORDINATOR, "导出哪段时间"),
    "待审核求助": (NOT_A_COORDINATOR, "求助"),
    "结对帮扶": (NOT_A_COORDINATOR, "结对"),
    "添加纪念日": (NOT_A_COORDINATOR, "纪念日"),
    "群发进度": (NOT_A_COORDINATOR, "群发"),
    "待审核时长": (NOT_A_COORDINATOR, "待审核"),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(COORDINATOR_ACTIONS))
async def test_coordinator_actions(console, sessions, clock, role: str, action: str) -> None:
    channel, _ = await _setup(console, sessions, clock, role)
    denied, allowed = COORDINATOR_ACTIONS[action]
    reply = await channel.send(action)
    if role == "volunteer":
        assert denied in reply
    else:
        assert denied not in reply and allowed in reply


@pytest.mark.parametrize("role", ROLES)
async def test_announce_an_activity_into_a_group(console, sessions, clock, role: str) -> None:
    channel, activity = await _setup(console, sessions, clock, role)
    reply = await channel.send(f"/announce {activity.id}")
    # the announcement carries the join button; others are refused without seeing it
    assert (f"join:{activity.id}" in str(await _last_choices(sessions, role))) is (role in ALLOWED), reply


async def _last_choices(sessions, role: str) -> list:  # noqa: ANN001
    from models import DialogState, Identity

    user = {"volunteer": "vol", "coordinator_here": "owner", "coordinator_elsewhere": "other", "admin": "adm",
            "bootstrap_admin": "root"}[role]
    async with sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == user))).one()
        state = await session.get(DialogState, identity.id)
        return state.choices if state else []
