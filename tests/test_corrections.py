"""Corrections of hour records (办法 Art 12–13): a volunteer asks from 我的记录 or in plain words, a
coordinator of the record's organization approves or rejects with a reason, or corrects / voids a record
directly; the original record is kept and totals, star levels and the ledger count the correction."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import select

from common.i18n import render
from handlers.hours import recording_refusal
from models import Activity, Delivery, HourRecord
from models.corrections import HourCorrection
from services.hours import HoursError, record_hours_for
from services.ledger import ledger_csv, ledger_rows
from tests.helpers import add_activity, make_coordinator, person_of, register, shown

STATION = "花家地社区志愿服务站"


async def _served(console, sessions, clock, *, users=(("alice", "王小丽"),), hours: str = "1"):
    """An activity of STATION (3 h, 2026-03-02) that the volunteers attended; the coordinator recorded 3 h each."""
    org = await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3)
    for serial, (user, name) in enumerate(users, 11):
        volunteer = console(user)
        await register(volunteer, name, serial=serial)
        assert "报名成功" in await volunteer.send(f"/join {activity.id}")
    clock.advance(days=1, hours=4)
    coord = console("coord")
    await coord.send(f"/rec {activity.id}")
    assert "记录 3 小时" in await coord.send(hours)
    return org, activity


async def _notices(sessions, user: str, channel: str = "console") -> list[str]:
    person = await person_of(sessions, channel, user)
    from models import Identity

    async with sessions() as session:
        ids = [i.id for i in await session.exec(select(Identity).where(Identity.person_id == person.id))]
        rows = await session.exec(select(Delivery).where(Delivery.identity_id.in_(ids)).order_by(Delivery.id))  # type: ignore[union-attr]
        return [shown(row) for row in rows]


async def test_a_volunteer_asks_from_the_list_and_the_coordinator_approves(console, sessions, clock) -> None:
    org, _activity = await _served(console, sessions, clock)
    alice, coord = console("alice"), console("coord")
    listing = await alice.send("我的记录")
    assert "2026-03-02 社区敬老院探访 3 小时" in listing and "1. 申请更正 1" in listing
    assert "应该是多少小时" in await alice.send("申请更正 1")
    assert "请简单说明原因" in await alice.send("两个小时")
    summary = await alice.send("签退时忘了扫码，实际只待了两小时")
    assert "更正为：2 小时" in summary and "原因：签退时忘了扫码" in summary
    assert "更正申请已提交" in await alice.send("提交申请")
    # a second request for the same record waits for the first
    listing = await alice.send("我的记录")
    assert "更正审核中" in listing and "申请更正 1" not in listing
    assert "已有一个更正申请在审核中" in await alice.send("3月2日那次应该是1小时")

    # the coordinator is told at once (console: with the next reply), with 批准 / 驳回
    notices = await _notices(sessions, "coord")
    assert notices == ["王小丽 申请更正 2026-03-02「社区敬老院探访」的时长：3 → 2 小时。原因：签退时忘了扫码，实际只待了两小时"]
    async with sessions() as session:
        delivery = (await session.exec(select(Delivery))).first()
        assert [c["value"] for c in delivery.choices] == ["corrok:1", "corrno:1"]
    listing = await coord.send("待审核更正")
    assert "#1 王小丽 2026-03-02「社区敬老院探访」3 小时 → 2 小时" in listing
    assert "批准" in await coord.send("1")
    assert "已批准更正 #1" in await coord.send("批准")
    assert "已经处理过了" in await coord.send("/corrok 1")

    mine = await alice.send("我的时长")
    assert "你申请的更正已批准：2026-03-02 的记录现在计 2 小时" in mine
    assert "累计志愿服务时长：2 小时" in mine and "今年：2 小时" in mine and "还差 98 小时" in mine
    assert "社区敬老院探访 2 小时" in mine
    assert "社区敬老院探访 2 小时（已更正，原 3 小时）" in await alice.send("我的记录")
    async with sessions() as session:
        record = (await session.exec(select(HourRecord))).one()
        correction = (await session.exec(select(HourCorrection))).one()
    coordinator = await person_of(sessions, "console", "coord")
    assert record.hours == 3.0  # the original is kept
    assert (correction.record_id, correction.old_hours, correction.hours, correction.status) == (record.id, 3.0, 2.0, "approved")
    assert correction.requested_by == record.person_id and correction.decided_by == coordinator.id
    assert correction.organization_id == org and correction.decided_at is not None


async def test_plain_words_and_a_rejection_with_a_reason(console, sessions, clock) -> None:
    await _served(console, sessions, clock)
    alice, coord = console("alice"), console("coord")
    # the day and the hours read from the sentence: only the reason is asked
    assert "请简单说明原因" in await alice.send("3月2日那次应该是2.5小时")
    assert "更正为：2.5 小时" in await alice.send("提前离开了")
    assert "更正申请已提交" in await alice.send("1")
    assert "3 → 2.5 小时" in await coord.send("待审核更正")
    await coord.send("1")
    assert "请写下驳回的原因" in await coord.send("驳回")
    assert "原因请写 2–200 字" in await coord.send("无")
    assert "已驳回更正 #1" in await coord.send("签到记录显示服务了 3 小时")
    mine = await alice.send("我的时长")
    assert "未获批准，原因：签到记录显示服务了 3 小时" in mine and "累计志愿服务时长：3 小时" in mine
    async with sessions() as session:
        correction = (await session.exec(select(HourCorrection))).one()
    assert correction.status == "rejected" and correction.decision_note == "签到记录显示服务了 3 小时"

    # 申请更正 alone asks which record; a typed day picks it
    assert "要更正哪一条记录" in await alice.send("申请更正")
    assert "那天没有你计入时长的记录" in await alice.send("3月5日")
    assert "应该是多少小时" in await alice.send("3月2日")


async def test_only_the_records_organization_decides_and_only_its_volunteer_asks(console, sessions, clock) -> None:
    await _served(console, sessions, clock, users=(("alice", "王小丽"), ("bob", "赵大刚")))
    await make_coordinator(sessions, channel="console", user="other", org="酒仙桥街道")
    alice, bob, other = console("alice"), console("bob"), console("other")
    async with sessions() as session:
        records = {r.person_id: r.id for r in await session.exec(select(HourRecord))}
    alice_record = records[(await person_of(sessions, "console", "alice")).id]
    # bob cannot ask about alice's record, by command or by a forged answer
    assert "只能为自己的记录申请更正" in await bob.send(f"/correct {alice_record}")
    assert "要更正哪一条记录" in await bob.send("申请更正")
    assert "请选择一条记录" in await bob.send(f"a:{alice_record}")  # a forged answer

    await alice.send("3月2日那次应该是1小时")
    await alice.send("记错了")
    await alice.send("1")
    # another organization's coordinator neither sees nor decides it, nor corrects the record
    assert "没有待审核的更正申请" in await other.send("待审核更正")
    assert "只有该组织的协调员" in await other.send("/corrok 1")
    assert "只有该组织的协调员" in await other.send("/corrno 1")
    assert "只有该组织的协调员" in await other.send(f"/corrfix {alice_record}")
    await other.send("更正时长")
    assert "没有找到计入时长的记录" in await other.send("王小丽")
    assert "只有协调员" in await alice.send("/corrok 1")
    async with sessions() as session:
        assert (await session.exec(select(HourCorrection))).one().status == "pending"
    assert "累计志愿服务时长：3 小时" in await alice.send("我的时长")


async def test_a_coordinator_voids_and_corrects_and_the_ledger_shows_it(console, sessions, clock) -> None:
    org, _activity = await _served(console, sessions, clock, users=(("alice", "王小丽"), ("bob", "赵大刚")))
    coord = console("coord")
    await register(coord, "李协调", serial=30)
    assert "更正哪个活动的时长" in await coord.send("更正时长")
    picked = await coord.send("1")
    assert "1. 2026-03-02 赵大刚 社区敬老院探访 3 小时" in picked and "2. 2026-03-02 王小丽" in picked
    assert "赵大刚" in await coord.send("1")
    assert "请简单说明原因" in await coord.send("作废")
    assert "更正为：作废" in await coord.send("当天没有到场")
    assert "已作废这条记录" in await coord.send("确认提交")
    await coord.send("更正时长")
    by_name = await coord.send("王小丽")  # a volunteer's records by name, instead of an activity
    assert "1. 2026-03-02 王小丽 社区敬老院探访 3 小时" in by_name and "赵大刚" not in by_name
    assert "王小丽" in await coord.send("1")
    await coord.send("2.5")
    await coord.send("提前离开")
    assert "已更正为 2.5 小时" in await coord.send("1")

    mine = await console("bob").send("我的时长")
    assert "协调员作废了你 2026-03-02 的 3 小时记录。原因：当天没有到场" in mine and "累计志愿服务时长：0 小时" in mine
    assert await _notices(sessions, "alice") == ["协调员更正了你 2026-03-02 的志愿时长：3 → 2.5 小时。原因：提前离开"]
    async with sessions() as session:
        rows = await ledger_rows(session, organization_ids=[org], start=date(2026, 1, 1), end=date(2026, 12, 31))
        corrections = list(await session.exec(select(HourCorrection).order_by(HourCorrection.id)))
    assert [c.status for c in corrections] == ["approved", "approved"]
    assert {(r.name, r.hours, render(r.correction, "zh-Hans"), r.original_hours, r.correction_reason)
            for r in rows} == {
        ("赵大刚", 0.0, "作废", 3.0, "当天没有到场"), ("王小丽", 2.5, "更正", 3.0, "提前离开")}
    text = ledger_csv(rows).decode("utf-8-sig")
    assert "更正,原时长（小时）,更正原因,更正审批人,更正时间" in text.splitlines()[0]
    assert ",作废,3,当天没有到场,李协调,2026-03-02 14:00" in text and ",更正,3,提前离开,李协调,2026-03-02 14:00" in text
    assert text.splitlines()[-1].startswith("合计,,,,,,2.5,")


async def test_bad_input_gets_a_clear_answer(console, sessions, clock) -> None:
    await _served(console, sessions, clock)
    alice = console("alice")
    await alice.send("我的记录")
    await alice.send("1")
    assert "时长要大于 0" in await alice.send("0")
    assert "不能超过 24 小时" in await alice.send("99")
    assert "没看懂这个时长" in await alice.send("abc")
    assert "现在就是这个时长" in await alice.send("3小时")
    assert "请简单说明原因" in await alice.send("一个半小时")
    assert "原因请写 2–200 字" in await alice.send("长" * 201)
    assert "更正为：1.5 小时" in await alice.send("长" * 200)
    assert "好的，已放弃" in await alice.send("放弃")
    async with sessions() as session:
        assert (await session.exec(select(HourCorrection))).all() == []


async def test_corrections_cost_no_extra_statement(console, core, sessions, clock) -> None:
    """我的时长 stays at its bound with a correction in effect (the sums stay one statement), and 我的记录
    reads the records with their corrections in one statement."""
    from tests.test_statement_counts import counted, turn

    await _served(console, sessions, clock)
    await console("coord").send("/corrfix 1")
    await console("coord").send("2")
    await console("coord").send("提前离开")
    assert "已更正为 2 小时" in await console("coord").send("1")
    await turn(core, clock, "alice", "我的时长")  # the held notice is read, last_inbound_at moves
    statements = await counted(core, sessions, clock, "alice", "我的时长")
    assert len(statements) <= 6, "\n".join(statements)
    sums = [s for s in statements if "sum(" in s.lower() and "hour_correction" in s.lower()]
    assert len(sums) == 1
    await turn(core, clock, "alice", "我的记录")
    statements = await counted(core, sessions, clock, "alice", "我的记录")
    assert len(statements) <= 6, "\n".join(statements)
    assert sum("hour_record" in s.lower() for s in statements) == 1


async def test_a_correction_from_any_channel(conversation_factory, console, sessions, clock) -> None:
    """The 申请更正 button and the dialog on console, WeChat and Telegram; the outcome reaches the volunteer."""
    from tests.conversation import joined

    org = await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), hours=3)
    amy = conversation_factory("amy")
    await register(amy, "艾米", serial=21)
    assert "报名成功" in joined(await amy.send(f"/join {activity.id}"))
    clock.advance(days=1, hours=4)
    coord = console("coord")
    await coord.send(f"/rec {activity.id}")
    assert "记录 3 小时" in await coord.send("1")

    assert "社区敬老院探访 3 小时" in joined(await amy.send("我的记录"))
    assert "应该是多少小时" in joined(await amy.press("申请更正 1"))
    await amy.send("2")
    assert "更正为：2 小时" in joined(await amy.send("签退时忘了扫码"))
    assert "更正申请已提交" in joined(await amy.press("提交申请"))
    assert "已批准更正 #1" in await coord.send("/corrok 1")
    assert "你申请的更正已批准：2026-03-02 的记录现在计 2 小时。" in await _notices(sessions, amy.user, amy.channel)
    mine = joined(await amy.send("我的时长"))
    assert "累计志愿服务时长：2 小时" in mine


async def test_a_coordinator_does_not_decide_their_own_hours(console, sessions, clock) -> None:
    await _served(console, sessions, clock, users=(("coord", "李协调"),))
    await make_coordinator(sessions, channel="console", user="second", org=STATION)
    coord = console("coord")
    async with sessions() as session:
        record = (await session.exec(select(HourRecord))).one()
    assert "不能审批或更正自己的时长记录" in await coord.send(f"/corrfix {record.id}")
    # as a volunteer they may ask; another coordinator of the station decides
    await coord.send("3月2日那次应该是2小时")
    await coord.send("提前离开")
    assert "更正申请已提交" in await coord.send("1")
    assert "不能审批或更正自己的时长记录" in await coord.send("/corrok 1")
    assert "已批准更正 #1" in await console("second").send("/corrok 1")
    assert "累计志愿服务时长：2 小时" in await coord.send("我的时长")


async def test_recording_again_does_not_overwrite_a_record_under_correction(console, sessions, clock) -> None:
    """The web roster form records hours for everyone at once: a record with a correction asked for or in
    effect is refused (all or nothing), not overwritten under the correction."""
    _org, activity = await _served(console, sessions, clock)
    alice = console("alice")
    await alice.send("我的记录")
    await alice.send("申请更正 1")
    await alice.send("两个小时")
    await alice.send("只待了两小时")
    assert "更正申请已提交" in await alice.send("提交申请")
    coordinator = await person_of(sessions, "console", "coord")
    volunteer = await person_of(sessions, "console", "alice")
    for status in ("pending", "approved"):
        async with sessions() as session:
            correction = (await session.exec(select(HourCorrection))).one()
            correction.status = status
            await session.commit()
            stored = await session.get(Activity, activity.id)
            try:
                await record_hours_for(session, activity=stored, person_ids=[volunteer.id], hours=1,
                                       recorded_by=coordinator.id, served_on=date(2026, 3, 2), now=clock.now,
                                       admin=False)
            except HoursError as error:
                refusal = render(recording_refusal(error), "zh-Hans")
            else:
                raise AssertionError(f"recorded over a {status} correction")
            await session.rollback()
        assert "王小丽 这次活动的时长已申请或完成更正" in refusal and "更正时长" in refusal
        async with sessions() as session:
            assert (await session.exec(select(HourRecord.hours))).one() == 3.0
    async with sessions() as session:  # a rejected correction leaves the record to its recorder again
        correction = (await session.exec(select(HourCorrection))).one()
        correction.status = "rejected"
        await session.commit()
        stored = await session.get(Activity, activity.id)
        await record_hours_for(session, activity=stored, person_ids=[volunteer.id], hours=1,
                               recorded_by=coordinator.id, served_on=date(2026, 3, 2), now=clock.now, admin=False)
        await session.commit()
        assert (await session.exec(select(HourRecord.hours))).one() == 1.0
