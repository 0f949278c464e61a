"""The /wechat callback end to end: real app on loopback, signed/encrypted XML, the core on SQLite and
PostgreSQL, a fake WeChat API for the customer-service messages that follow a slow core."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest
import xmltodict
from sqlalchemy import delete
from sqlmodel import select
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.messages import TextMessage

from bot.app import create_app
from bot.channels.wechat import channel as wechat
from bot.channels.wechat.convert import text_reply_xml
from bot.channels.wechat.plugin import WeChatPlugin
from bot.serve import channel_setups
from models import Delivery, HourRecord, Identity, InboundSeen, Signup
from models.wechat import WeChatReplyPages, WeChatTemplateJob
from tests.conversation import WeChatConversation, joined
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers import add_activity, adult_id, make_coordinator, register
from tests.wechat_harness import (
    VECTOR_AES_KEY,
    VECTOR_APP_ID,
    VECTOR_TOKEN,
    SlowEngine,
    WeChatHarness,
    event_xml,
    text_xml,
)

SAMPLES = Path(__file__).parent / "data" / "wechat"  # copied from shared/data/wechat
# what each sample must get: a text reply containing this, or "success"
EXPECTED: dict[str, tuple[str, ...]] = {
    # "this is a test" is English: the user gets English from then on (same sender as later samples)
    "text.xml": ("volunteer assistant",),
    "reply_text.xml": ("你好", "Hello"),
    "image.xml": ("请发送文字消息", "Please send a text message"),
    "link.xml": ("请发送文字消息", "Please send a text message"),
    "voice_no_recognition.xml": ("请发送文字消息", "Please send a text message"),
    "voice_recognition.xml": ("我是志愿助手", "volunteer assistant"),
    "location.xml": ("附近", "near you"),
    "safe_mode_request.xml": ("not sure what you mean",),
    "event_subscribe.xml": ("欢迎关注",),
    "event_subscribe_qrscene.xml": ("欢迎关注",),
    "event_scan.xml": ("我是志愿助手",),
    "event_click.xml": ("没看懂这个指令",),
    "event_location.xml": ("附近",),
    "event_view.xml": ("success",),
    "event_subscribe_msg_popup.xml": ("success",),
    "event_templatesendjobfinish.xml": ("success",),
}


def test_every_sample_is_listed() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in SAMPLES.glob("*.xml"))


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_every_sample_through_the_endpoint_gets_a_well_formed_reply_or_success(
        mode: str, core, sessions, api) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api, safe=mode == "safe") as wx:
        for path in sorted(SAMPLES.glob("*.xml")):
            # the official samples share MsgIds (1234567890123456): each one is a first delivery here
            async with sessions() as session:
                await session.exec(delete(InboundSeen))
                await session.commit()
            answer = await wx.post(path.read_text(encoding="utf-8"))
            assert answer.status == 200, (path.name, answer.body)
            expected = EXPECTED[path.name]
            if expected == ("success",):
                assert answer.body == "success", path.name
                continue
            assert answer.reply is not None, (path.name, answer.body)
            sample = xmltodict.parse(path.read_text(encoding="utf-8"))["xml"]
            assert answer.reply["ToUserName"] == sample["FromUserName"], path.name
            assert answer.reply["FromUserName"] == sample["ToUserName"], path.name
            assert answer.reply["MsgType"] == "text"
            assert any(e in (answer.content or "") for e in expected), (path.name, answer.content)
            # the plaintext reply is itself a message wechatpy parses
            plain = answer.body if mode == "plaintext" else None
            if plain is not None:
                assert isinstance(parse_message(plain), TextMessage)
            assert len((answer.content or "").encode("utf-8")) < 2048
    async with sessions() as session:
        job = await session.get(WeChatTemplateJob, 200163836)
        assert job is not None and job.status == "success" and job.openid == "fromuser"


async def test_official_decrypt_vector() -> None:
    body = (SAMPLES / "safe_mode_request.xml").read_text(encoding="utf-8")
    plain = WeChatCrypto(VECTOR_TOKEN, VECTOR_AES_KEY, VECTOR_APP_ID).decrypt_message(
        body, "5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669", "1320562132")
    assert plain == (
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
        "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
        "<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
        "<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>")


async def test_official_vector_through_the_endpoint_and_the_reply_decrypts(core, sessions, api) -> None:  # noqa: ANN001
    body = (SAMPLES / "safe_mode_request.xml").read_text(encoding="utf-8")
    query = {"signature": "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a", "timestamp": "1409735669",
             "nonce": "1320562132", "encrypt_type": "aes", "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa"}
    # the vector is from 2014: run the endpoint's clock then, so the replay window accepts it
    async with WeChatHarness(core, sessions, api, safe=True, clock=lambda: 1409735669 + 20) as wx:
        answer = await wx.post(body, raw=True, query=query)
        assert answer.status == 200
        assert answer.reply is not None and answer.reply["ToUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
        assert "not sure what you mean" in (answer.content or "")
        envelope = xmltodict.parse(answer.body)["xml"]
        assert envelope["Nonce"] == "1320562132" and "Content" not in envelope
        # the same query one step outside the window is refused
        wx.clock = wx.channel.clock = lambda: 1409735669 + 301
        assert (await wx.post(body, raw=True, query=query)).status == 403


async def test_url_verification_echoes_echostr_and_refuses_forgeries(wx: WeChatHarness) -> None:
    good = {**wx.query(), "echostr": "5961226934612286543"}
    response = await wx.client.get("/wechat", params=good)
    assert response.status == 200 and await response.text() == "5961226934612286543"
    forged = {**wx.query(forge=True), "echostr": "x"}
    assert (await wx.client.get("/wechat", params=forged)).status == 403
    assert (await wx.client.get("/wechat", params={"echostr": "x"})).status == 403


async def test_missing_forged_or_stale_signatures_are_403(wx: WeChatHarness, api: FakeWeChatAPI) -> None:
    xml = text_xml("o_mallory", "帮助")
    assert (await wx.post(xml, query={})).status == 403
    assert (await wx.post(xml, query=wx.query(forge=True))).status == 403
    stale = int(wx.clock()) - 301
    assert (await wx.post(xml, timestamp=stale)).status == 403
    assert (await wx.post(xml, timestamp=int(wx.clock()) + 301)).status == 403
    assert (await wx.post(xml, timestamp=int(wx.clock()) - 290)).status == 200
    async with wx.runtime.sessions() as session:
        rows = (await session.exec(select(InboundSeen))).all()
        assert len(rows) == 1  # only the accepted one reached the core


async def test_safe_mode_checks_msg_signature_and_window(wx_safe: WeChatHarness) -> None:
    xml = text_xml("o_safe", "帮助")
    answer = await wx_safe.post(xml)
    assert answer.status == 200 and "我是志愿助手" in (answer.content or "")
    assert "Encrypt" in answer.body and "我是志愿助手" not in answer.body
    body = wx_safe.wrap(text_xml("o_safe", "帮助"))
    assert (await wx_safe.post(body, raw=True, query=wx_safe.query(body, forge=True))).status == 403
    stale = int(wx_safe.clock()) - 400
    assert (await wx_safe.post(xml, timestamp=stale)).status == 403
    # safe mode needs msg_signature: the URL signature alone is not enough
    query = wx_safe.query(body)
    del query["msg_signature"]
    assert (await wx_safe.post(body, raw=True, query=query)).status == 403


async def test_oversized_malformed_and_entity_bodies(wx: WeChatHarness, caplog: pytest.LogCaptureFixture) -> None:
    big = text_xml("o_big", "x" * (64 * 1024))
    assert (await wx.post(big)).status == 413

    async def chunks():  # noqa: ANN202 - no Content-Length: the cap must hold while streaming
        for _ in range(20):
            yield b"<xml>" + b"y" * 8192

    response = await wx.client.post("/wechat", params=wx.query(), data=chunks())
    assert response.status == 413

    assert (await wx.post("<xml><MsgType>text</MsgType>")).status == 400
    assert (await wx.post("not xml at all")).status == 400
    assert (await wx.post("<xml><ToUserName>a</ToUserName></xml>")).status == 400  # no MsgType
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
                  "<xml><ToUserName>&lol2;</ToUserName><MsgType>text</MsgType></xml>")
        assert (await wx.post(laughs)).status == 400
    mine = [r for r in caplog.records if r.name == wechat.__name__]
    assert len(mine) == 1 and mine[0].exc_info is None and "DOCTYPE" in mine[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]


async def test_user_text_with_cdata_end_is_escaped(wx: WeChatHarness) -> None:
    openid = "o_evil]]><b>x</b>"
    answer = await wx.post(text_xml(openid, "帮助"))
    assert answer.status == 200 and answer.reply is not None
    assert answer.reply["ToUserName"] == openid
    xml = text_reply_xml(to_user="u", from_user="gh", content="a]]>b<c>\x01&", create_time=1)
    assert parse_message(xml).content == "a]]>b<c>&"


async def test_long_reply_pages_on_next_and_a_retry_gets_the_same_page(wx: WeChatHarness) -> None:
    await wx.say("o_long", "你好")
    async with wx.runtime.sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == "o_long"))).one()
        for n in range(6):
            session.add(Delivery(identity_id=identity.id, channel="wechat", text=f"通知{n}：" + "志愿服务" * 80,
                                 status="held", due_at=wx.runtime.core.clock() - timedelta(minutes=1)))
        await session.commit()
    pages = [await wx.say("o_long", "帮助")]
    assert "你有 6 条新通知" in pages[0] and pages[0].endswith("（回复「下一页」查看更多）")
    async with wx.runtime.sessions() as session:  # the waiting pages are sealed, like stored replies
        waiting = (await session.exec(select(WeChatReplyPages))).one()
        assert waiting.pages and not any("志愿服务" in page or "通知" in page for page in waiting.pages)
    msg_id = 424242
    pages.append(await wx.say("o_long", "下一页", msg_id=msg_id))
    assert await wx.say("o_long", "下一页", msg_id=msg_id) == pages[1]  # WeChat's retry: same page
    while pages[-1].endswith("查看更多）"):
        pages.append(await wx.say("o_long", "下一頁"))
    assert all(len(page.encode("utf-8")) < 2048 for page in pages)
    assert len(pages) >= 3
    text = "".join(pages)
    assert all(f"通知{n}：" in text for n in range(6)) and "我是志愿助手" in text and "4. 我要求助" in pages[-1]
    # nothing left: the core answers "下一页" itself; the notices were delivered once
    assert "我还不太明白" in await wx.say("o_long", "下一页")
    assert "你有" not in await wx.say("o_long", "帮助")


async def register_over_wechat(wx: WeChatHarness, openid: str, name: str) -> str:
    conv = WeChatConversation(wx, openid)
    done = await register(conv, name)
    start, named, id_number, phone, _skills, summary, _confirm = (joined(e.replies) for e in conv.history)
    assert "姓名" in start
    assert "身份证号" in named
    assert "手机号" in id_number
    assert "1. 助老陪伴" in phone
    assert "1101**********" in summary
    return done


async def test_registration_check_in_out_by_qr_scene_and_hours_question(wx: WeChatHarness, sessions,
                                                                           clock) -> None:  # noqa: ANN001
    assert "注册成功" in await register_over_wechat(wx, "o_alice", "王小丽")
    org_id = await make_coordinator(sessions, channel="wechat", user="o_coord", org="花家地社区")
    activity = await add_activity(sessions, org_id=org_id, start=clock.now + timedelta(minutes=30), hours=3)
    joined = (await wx.event("o_alice", "CLICK", f"join:{activity.id}")).content or ""
    assert "报名成功" in joined or activity.title in joined
    clock.advance(minutes=30)
    scanned = await wx.event("o_alice", "SCAN", f"checkin_{activity.checkin_code}")
    assert "签到成功" in (scanned.content or "")
    clock.advance(hours=4)  # stays longer than the activity: hours are capped at its length
    scanned = await wx.event("o_alice", "SCAN", f"checkout_{activity.checkin_code}")
    assert "签退成功" in (scanned.content or "") and "3 小时" in (scanned.content or "")
    hours = await wx.say("o_alice", "我的时长")
    assert "累计志愿服务时长：3 小时" in hours
    menu = (await wx.event("o_alice", "CLICK", "hrs")).content or ""
    assert "累计志愿服务时长：3 小时" in menu
    async with sessions() as session:
        records = (await session.exec(select(HourRecord))).all()
        assert [r.hours for r in records] == [3]
        signup = (await session.exec(select(Signup))).one()
        assert signup.checkin_at is not None and signup.checkout_at is not None


async def test_subscribe_with_scene_and_unsubscribe(wx: WeChatHarness, sessions) -> None:  # noqa: ANN001
    answer = await wx.event("o_new", "subscribe", "qrscene_checkin_nope")
    assert "欢迎关注" in (answer.content or "") and "签到码无效" in (answer.content or "")
    assert (await wx.event("o_new", "unsubscribe")).body == "success"
    async with sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == "o_new"))).one()
        assert identity.active is False
    assert "欢迎关注" in ((await wx.event("o_new", "subscribe")).content or "")
    async with sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == "o_new"))).one()
        assert identity.active is True


async def test_concurrent_triple_delivery_of_one_msgid_has_one_effect(wx: WeChatHarness, sessions) -> None:  # noqa: ANN001
    await wx.say("o_triple", "注册")
    xml = text_xml("o_triple", "王小丽", msg_id=99887766)
    answers = await asyncio.gather(*[wx.post(xml) for _ in range(3)])
    assert [a.status for a in answers] == [200, 200, 200]
    assert len({a.content for a in answers}) == 1 and "身份证号" in (answers[0].content or "")
    # had the name been taken three times, the second copy would have been read as an ID number
    assert "手机号" in await wx.say("o_triple", adult_id())
    async with sessions() as session:
        seen = (await session.exec(select(InboundSeen).where(InboundSeen.message_key == "99887766"))).all()
        assert len(seen) == 1
    # events dedupe on FromUserName + CreateTime + Event
    event = event_xml("o_triple", "CLICK", "hrs", create_time=1700000000)
    replies = await asyncio.gather(*[wx.post(event) for _ in range(3)])
    assert len({a.content for a in replies}) == 1 and "累计志愿服务时长" in (replies[0].content or "")


async def test_slow_core_answers_success_in_time_and_follows_up_by_customer_service(
        sessions, options, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    slow = SlowEngine(sessions, options, clock=clock)
    async with WeChatHarness(slow, sessions, api, reply_deadline=0.3) as wx:
        xml = text_xml("o_slow", "帮助", msg_id=5550001)
        first = await wx.post(xml)
        assert first.body == "success"  # the deadline passed before the core answered
        retry = await wx.post(xml)  # WeChat's retry while the core still works: no second effect
        assert retry.body == "success"
        calls = await api.wait_for("message/custom/send", count=1)
        assert calls[0].body is not None and calls[0].body["touser"] == "o_slow"
        assert "我是志愿助手" in calls[0].body["text"]["content"]
        await wx.channel.wait_idle()
        assert len(api.sent_texts("o_slow")) == 1
        assert (await wx.post(xml)).body == "success"  # a late retry does not send it again
        async with sessions() as session:
            row = (await session.exec(select(Delivery).where(Delivery.source == "late_reply"))).one()
            assert row.status == "sent" and row.sent_at is not None
            assert len((await session.exec(select(InboundSeen))).all()) == 1


async def test_late_reply_outside_the_window_is_held_for_the_next_reply(
        sessions, options, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    slow = SlowEngine(sessions, options, clock=clock)
    slow.delay = 0.5
    api.fail("message/custom/send", 45015)
    async with WeChatHarness(slow, sessions, api, reply_deadline=0.1) as wx:
        assert (await wx.post(text_xml("o_held", "帮助"))).body == "success"
        await wx.channel.wait_idle()
        async with sessions() as session:
            row = (await session.exec(select(Delivery).where(Delivery.source == "late_reply"))).one()
            assert row.status == "held"
        wx.channel.reply_deadline = 5.0
        slow.delay = 0
        reply = await wx.say("o_held", "我的时长")
        assert "你有 1 条新通知" in reply and "我是志愿助手" in reply


async def test_blocked_late_reply_deactivates_the_identity_like_the_outbox(
        sessions, options, clock, api: FakeWeChatAPI) -> None:  # noqa: ANN001
    """A late reply goes through the outbox's own result handling: 43004 (unfollowed) → ``blocked``
    → the row fails, the identity is inactive and the rest of its queue is failed, as the drain loop does."""
    slow = SlowEngine(sessions, options, clock=clock)
    slow.delay = 0
    # the first contact must answer in time (a busy machine needs more than 0.1 s for it); the late
    # reply below is late by construction (0.5 s of delay against a 0.1 s deadline)
    async with WeChatHarness(slow, sessions, api, reply_deadline=5.0) as wx:
        assert await wx.say("o_gone", "你好")
        async with sessions() as session:
            identity = (await session.exec(select(Identity).where(Identity.external_id == "o_gone"))).one()
            queued = Delivery(identity_id=identity.id, channel="wechat", text="明天的活动", source="reminder",
                              due_at=clock() + timedelta(hours=1))
            session.add(queued)
            await session.commit()
        wx.channel.reply_deadline = 0.1
        slow.delay = 0.5
        api.fail("message/custom/send", 43004)
        assert (await wx.post(text_xml("o_gone", "帮助"))).body == "success"
        await wx.channel.wait_idle()
        async with sessions() as session:
            row = (await session.exec(select(Delivery).where(Delivery.source == "late_reply"))).one()
            assert row.status == "failed" and (row.last_error or "").startswith("blocked:")
            assert (await session.get(Identity, identity.id, populate_existing=True)).active is False
            other = await session.get(Delivery, queued.id, populate_existing=True)
            assert other.status == "failed" and "blocked" in (other.last_error or "")


async def test_channel_is_off_without_token_and_on_in_serve(core, sessions) -> None:  # noqa: ANN001
    from bot.config import Settings
    from bot.runtime import Runtime

    settings = Settings(_env_file=None, database_url="sqlite+aiosqlite:///unused.db")  # type: ignore[call-arg]
    runtime = Runtime(settings=settings, db=sessions.kw["bind"], sessions=sessions, core=core)
    app = await create_app(runtime, channels=[wechat.setup])
    assert not [r for r in app.router.routes() if r.resource and r.resource.canonical == "/wechat"]
    assert not any(isinstance(getattr(s, "__self__", None), WeChatPlugin) for s in channel_setups(settings))
    on = Settings(_env_file=None, database_url="sqlite+aiosqlite:///unused.db", wechat_token="t")  # type: ignore[call-arg]
    assert any(isinstance(getattr(s, "__self__", None), WeChatPlugin) for s in channel_setups(on))


async def test_a_late_reply_is_written_again_when_sqlite_says_locked(
        sessions, options, clock, api: FakeWeChatAPI, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Under load a SQLite transaction that read before writing can lose the write lock at once ("database is
    locked", whatever the busy timeout): the late reply's outbox row is written again, not lost."""
    from sqlalchemy.exc import OperationalError

    real = wechat.queue_late_reply
    refusals = [OperationalError("INSERT INTO delivery", {}, Exception("database is locked"))]

    async def locked_once(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if refusals:
            raise refusals.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(wechat, "queue_late_reply", locked_once)
    slow = SlowEngine(sessions, options, clock=clock)
    async with WeChatHarness(slow, sessions, api, reply_deadline=0.2) as wx:
        assert (await wx.post(text_xml("o_locked", "帮助", msg_id=5550077))).body == "success"
        calls = await api.wait_for("message/custom/send", count=1)
        assert "我是志愿助手" in calls[0].body["text"]["content"] and not refusals
        await wx.channel.wait_idle()
        async with sessions() as session:
            row = (await session.exec(select(Delivery).where(Delivery.source == "late_reply"))).one()
            assert row.status == "sent"
