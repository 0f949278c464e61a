"""/wechat under attack (issue 10): safe mode refuses plaintext, signed requests are remembered for the
replay window in the database, dedupe keys without MsgId, late replies across a restart, malformed
input → 4xx. Real app on loopback, real wechatpy crypto, the core on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import logging

import pytest
import xmltodict
from sqlmodel import select

from bot.channels.wechat import channel as wechat
from models import Delivery, InboundSeen
from models.wechat import WeChatLateAnswer, WeChatNonce
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.wechat_harness import ACCOUNT, SlowEngine, WeChatHarness, cdata, event_xml, text_xml


def no_msgid_text(openid: str, content: str, create_time: int) -> str:
    return (f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")


async def seen_count(wx: WeChatHarness) -> int:
    async with wx.runtime.sessions() as session:
        return len((await session.exec(select(InboundSeen))).all())


# ---- finding 1: safe mode accepts only encrypted, signed bodies; replays are remembered ------------
async def test_safe_mode_refuses_a_plaintext_body_under_a_valid_url_signature(wx_safe: WeChatHarness) -> None:
    plain = text_xml("o_mallory", "帮助")
    query = wx_safe.query()  # signature, timestamp, nonce as a captured callback URL has them
    assert (await wx_safe.post(plain, raw=True, query=query)).status == 403
    # claiming safe mode with a body that has no <Encrypt> does not help either
    no_encrypt = {**query, "encrypt_type": "aes", "msg_signature": hashlib.sha1(b"x").hexdigest()}
    assert (await wx_safe.post(plain, raw=True, query=no_encrypt)).status in (400, 403)
    assert await seen_count(wx_safe) == 0


async def test_compatible_mode_reads_the_encrypted_content_not_the_plaintext_copy(wx_safe: WeChatHarness) -> None:
    envelope = xmltodict.parse(wx_safe.wrap(text_xml("o_real", "帮助")))["xml"]
    # compatible mode posts plaintext fields beside <Encrypt>: here the plaintext lies about the sender
    body = (f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata('o_mallory')}</FromUserName>"
            f"<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{cdata('注册')}</Content>"
            f"<MsgId>1</MsgId><Encrypt>{cdata(envelope['Encrypt'])}</Encrypt></xml>")
    answer = await wx_safe.post(body, raw=True, query=wx_safe.query(body))
    assert answer.status == 200 and answer.reply is not None
    assert answer.reply["ToUserName"] == "o_real" and "我是志愿助手" in (answer.content or "")


@pytest.mark.parametrize("safe", [False, True])
async def test_a_replayed_request_has_no_second_effect_and_another_body_is_refused(
        core, sessions, api, safe: bool) -> None:  # noqa: ANN001
    async with WeChatHarness(core, sessions, api, safe=safe) as wx:
        body = wx.wrap(text_xml("o_alice", "注册"))
        query = wx.query(body)
        first = await wx.post(body, raw=True, query=query)
        assert first.status == 200 and "姓名" in (first.content or "")
        again = await wx.post(body, raw=True, query=query)  # WeChat's retry, or an exact replay
        assert again.status == 200 and again.content == first.content
        assert await seen_count(wx) == 1
        other = wx.wrap(text_xml("o_bob", "帮助"))
        replayed = dict(query)
        if safe:  # the same (timestamp, nonce) signed again over another body
            replayed = {**wx.query(other, nonce=query["nonce"], timestamp=int(query["timestamp"]))}
        assert (await wx.post(other, raw=True, query=replayed)).status == 403
        assert await seen_count(wx) == 1
    # the nonces live in the database: another process (a second channel on the same database) knows them
    async with WeChatHarness(core, sessions, api, safe=safe) as second:
        assert (await second.post(other, raw=True, query=replayed)).status == 403
        async with sessions() as session:
            assert len((await session.exec(select(WeChatNonce))).all()) >= 1


# ---- finding 2: dedupe keys ---------------------------------------------------------------------
async def test_messages_without_msgid_dedupe_on_sender_time_and_content(wx: WeChatHarness) -> None:
    at = int(wx.clock())
    replies = {}
    for openid, content in (("o_a", "帮助"), ("o_b", "注册"), ("o_c", "我的时长")):
        answer = await wx.post(no_msgid_text(openid, content, at))
        assert answer.status == 200 and answer.reply is not None
        assert answer.reply["ToUserName"] == openid
        replies[openid] = answer.content
    assert len(set(replies.values())) == 3
    # the same user, same second, other text: another message
    assert "姓名" in ((await wx.post(no_msgid_text("o_a", "注册", at))).content or "")
    assert await seen_count(wx) == 4
    # WeChat's retry of one of them: the stored reply, no new row
    assert (await wx.post(no_msgid_text("o_b", "注册", at))).content == replies["o_b"]
    assert await seen_count(wx) == 4


async def test_two_menu_clicks_in_one_second_get_their_own_replies(wx: WeChatHarness) -> None:
    at = int(wx.clock())
    hours = await wx.post(event_xml("o_clicker", "CLICK", "hrs", create_time=at))
    helped = await wx.post(event_xml("o_clicker", "CLICK", "help", create_time=at))
    assert "累计志愿服务时长" in (hours.content or "")
    assert "我是志愿助手" in (helped.content or "") and helped.content != hours.content
    retry = await wx.post(event_xml("o_clicker", "CLICK", "help", create_time=at))
    assert retry.content == helped.content and await seen_count(wx) == 2


# ---- finding 4: a late reply is not delivered again after a restart -------------------------------
async def test_a_retry_after_a_restart_does_not_repeat_a_late_reply(sessions, options, clock, core,  # noqa: ANN001
                                                                     api: FakeWeChatAPI) -> None:
    slow = SlowEngine(sessions, options, clock=clock)
    slow.delay = 0.5
    xml = text_xml("o_late", "帮助", msg_id=5550077)
    async with WeChatHarness(slow, sessions, api, reply_deadline=0.05) as wx:
        assert (await wx.post(xml)).body == "success"
        await api.wait_for("message/custom/send", count=1)
        await wx.channel.wait_idle()
    async with WeChatHarness(core, sessions, api) as restarted:  # a new process: nothing in memory
        assert (await restarted.post(xml)).body == "success"
        await restarted.channel.wait_idle()
    assert len(api.sent_texts("o_late")) == 1
    async with sessions() as session:
        assert (await session.get(WeChatLateAnswer, "5550077")) is not None
        rows = (await session.exec(select(Delivery).where(Delivery.source == "late_reply"))).all()
        assert len(rows) == 1


# ---- finding 5: malformed input → 400 with one log line, never 5xx -----------------------------
def message(*fields: str) -> str:
    return "<xml>" + "".join(fields) + "</xml>"


TO = f"<ToUserName>{cdata(ACCOUNT)}</ToUserName>"
FROM = "<FromUserName>o_x</FromUserName>"
TEXT = "<MsgType>text</MsgType><Content>帮助</Content>"
MALFORMED_BODIES = {
    "no ToUserName": message(FROM, "<CreateTime>1</CreateTime>", TEXT, "<MsgId>1</MsgId>"),
    "no FromUserName": message(TO, "<CreateTime>1</CreateTime>", TEXT, "<MsgId>2</MsgId>"),
    "two FromUserName": message(TO, FROM, "<FromUserName>o_y</FromUserName><CreateTime>1</CreateTime>", TEXT),
    "two ToUserName": message(TO, TO, FROM, "<CreateTime>1</CreateTime>", TEXT),
    "nested FromUserName": message(TO, "<FromUserName><a>o</a></FromUserName><CreateTime>1</CreateTime>", TEXT),
    "MsgId beyond BIGINT": message(TO, FROM, "<CreateTime>1</CreateTime>", TEXT, f"<MsgId>{2**64}</MsgId>"),
    "negative MsgId": message(TO, FROM, "<CreateTime>1</CreateTime>", TEXT, "<MsgId>-5</MsgId>"),
    "CreateTime beyond BIGINT": message(TO, FROM, f"<CreateTime>{10**30}</CreateTime>", TEXT, "<MsgId>3</MsgId>"),
    "openid of 200 characters": message(TO, f"<FromUserName>{'o' * 200}</FromUserName>",
                                        "<CreateTime>1</CreateTime>", TEXT, "<MsgId>4</MsgId>"),
    "nesting 1,200 deep": message(TO, FROM, "<CreateTime>1</CreateTime>", TEXT,
                                  "<a>" * 1200 + "</a>" * 1200),
    "nested Content": message(TO, FROM, "<CreateTime>1</CreateTime><MsgType>text</MsgType>",
                              "<Content><b>x</b></Content><MsgId>5</MsgId>"),
    "template report with a huge MsgID": message(
        TO, FROM, "<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event>",
        f"<MsgID>{2**70}</MsgID><Status>success</Status>"),
    "location at infinity": message(TO, FROM, "<CreateTime>1</CreateTime><MsgType>location</MsgType>",
                                    "<Location_X>inf</Location_X><Location_Y>1</Location_Y><Scale>1</Scale>"
                                    "<Label>x</Label><MsgId>6</MsgId>"),
}


@pytest.mark.parametrize("safe", [False, True])
async def test_malformed_messages_are_400_with_one_log_line(core, sessions, api, safe: bool,  # noqa: ANN001
                                                           caplog: pytest.LogCaptureFixture) -> None:
    async with WeChatHarness(core, sessions, api, safe=safe) as wx:
        for name, body in MALFORMED_BODIES.items():
            caplog.clear()
            with caplog.at_level(logging.INFO):
                answer = await wx.post(body)
            assert answer.status == 400, (name, answer.status, answer.body)
            mine = [r for r in caplog.records if r.name.startswith("bot.")]
            assert len(mine) == 1 and mine[0].exc_info is None, (name, [r.getMessage() for r in mine])
        assert await seen_count(wx) == 0
        assert "我是志愿助手" in await wx.say("o_fine", "帮助")


async def test_overlong_query_fields_are_403(wx: WeChatHarness) -> None:
    xml = text_xml("o_q", "帮助")
    assert (await wx.post(xml, query=wx.query(nonce="9" * 5000))).status == 403
    assert (await wx.post(xml, query={**wx.query(), "timestamp": "1" * 5000})).status == 403
    assert wechat.PATH == "/wechat"
