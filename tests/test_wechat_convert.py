"""The hand-written XML reading and reply template (``bot.channels.wechat.convert``) against what they
replace: xmltodict's tree, wechatpy's ``parse_message`` with the wechatpy-based conversion the channel
used before (kept here as the oracle), and ``TextReply(...).render()``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from wechatpy import events as wx_events
from wechatpy import messages as wx_messages
from wechatpy import parse_message
from wechatpy.replies import TextReply

from bot.channels.wechat.convert import (
    CHANNEL,
    INVALID_XML_CHARS,
    MALFORMED,
    Converted,
    _tree,
    cdata_safe,
    event_key,
    field_text,
    parse,
    text_reply_xml,
    to_inbound,
)
from handlers.messages import Inbound, Location
from models.wechat import WeChatTemplateJob

SAMPLES = Path(__file__).parent / "data" / "wechat"


def _wrap(inner: str) -> str:
    return f"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]></FromUserName>{inner}</xml>"


CASES: list[str] = [
    _wrap("<CreateTime>1764144000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[  帮助 ]]></Content><MsgId>42</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>text</MsgType><Content><![CDATA[a]]]]><![CDATA[>b]]></Content><MsgId>7</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>TEXT</MsgType><Content></Content><MsgId>8</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content>"),  # no MsgId: hashed key
    _wrap("<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><Content>y</Content><MsgId>9</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>text</MsgType><Content a='1'>x</Content><MsgId>9</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>text</MsgType><Content><b>x</b>tail</Content><MsgId>9</MsgId>"),
    _wrap("<CreateTime>x1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>9</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>99999999999999999999</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>voice</MsgType><Recognition>你好</Recognition><MsgId>10</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>voice</MsgType><MsgId>11</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>image</MsgType><PicUrl>u</PicUrl><MsgId>12</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>shortvideo</MsgType><MsgId>13</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>location</MsgType><Location_X>39.9</Location_X>"
          "<Location_Y>116.4</Location_Y><Label>北京</Label><MsgId>14</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>location</MsgType><Location_X>999</Location_X>"
          "<Location_Y>116.4</Location_Y><MsgId>15</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>location</MsgType><MsgId>16</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>file</MsgType><MsgId>17</MsgId>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_act:5</EventKey>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe</Event><EventKey>scanbarcode|x</EventKey>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>SCAN</Event><EventKey> act:5 </EventKey><Ticket>t</Ticket>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>menu_hours</EventKey>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey><a>1</a></EventKey>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>" + "k" * 1025 + "</EventKey>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>LOCATION</Event><Latitude>39.9</Latitude>"
          "<Longitude>116.4</Longitude><Precision>30</Precision>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>LOCATION</Event><Latitude>nan</Latitude>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>LOCATION</Event>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>unsubscribe</Event>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>VIEW</Event><EventKey>https://x</EventKey>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>5</MsgID>"
          "<Status>success</Status>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><Status>x</Status>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event>scancode_push</Event><EventKey>k</EventKey>"
          "<ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType><Event></Event>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>event</MsgType>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>device_text</MsgType>"),
    _wrap("<CreateTime>1</CreateTime><MsgType></MsgType>"),
    _wrap("<CreateTime>1</CreateTime><MsgType>text</MsgType><MsgType>text</MsgType><Content>x</Content>"),
    _wrap("<!-- a comment --><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>18</MsgId>"),
    "<xml><MsgType>text</MsgType><Content>x</Content><MsgId>19</MsgId></xml>",  # no FromUserName
    "<xml><ToUserName>a</ToUserName></xml>",  # no MsgType
    "<other><MsgType>text</MsgType></other>",
    "<xml>just text</xml>",
    "<xml/>",
    "<xml><MsgType>text</MsgType>",  # not well-formed
    '<?xml version="1.0" encoding="GBK"?>' + _wrap("<CreateTime>1</CreateTime><MsgType>text</MsgType>"
                                                   "<Content>中文</Content><MsgId>20</MsgId>"),
]


def _samples() -> list[str]:
    return [path.read_text(encoding="utf-8") for path in sorted(SAMPLES.glob("*.xml"))]


def _oracle(xml: str) -> Converted | str:
    """The channel's previous reading: wechatpy's classes (``git show 6389f9f:bot/channels/wechat/convert.py``)."""
    try:
        message = parse_message(xml)
        if message is None:
            return "malformed"
        return _oracle_inbound(message)
    except MALFORMED:
        return "malformed"


def _oracle_inbound(message: Any) -> Converted:
    from bot.channels.wechat.convert import MAX_ACCOUNT_ID, _coordinate, _digest, _in_int64

    openid = field_text(message.source, "FromUserName", required=True, max_length=MAX_ACCOUNT_ID)
    assert openid is not None
    field_text(message.target, "ToUserName", required=True, max_length=MAX_ACCOUNT_ID)
    create_time = _in_int64(message.time or 0, "CreateTime")
    if isinstance(message, wx_events.BaseEvent):
        event_name = field_text(message.event, "Event") or ""
        key = event_key(openid, create_time, event_name,
                        field_text(message._data.get("EventKey"), "EventKey", max_length=1024))

        def event(name: str, **fields: object) -> Converted:
            return Converted(Inbound(channel=CHANNEL, user_id=openid, event=name, message_id=key, **fields))  # type: ignore[arg-type]

        def scene(value: object) -> str | None:
            text = (field_text(value, "EventKey", max_length=1024) or "").strip()
            return f"start:{text}" if text else None

        if isinstance(message, wx_events.SubscribeScanEvent):
            return event("subscribe", payload=scene(message.scene_id))
        if isinstance(message, wx_events.SubscribeEvent):
            return event("subscribe")
        if isinstance(message, wx_events.ScanEvent):
            return event("scan", payload=scene(message.scene_id))
        if isinstance(message, wx_events.ClickEvent):
            return event("menu", payload=str(message.key or "").strip() or None)
        if isinstance(message, wx_events.LocationEvent):
            return event("location", location=Location(_coordinate(message.latitude), _coordinate(message.longitude)))
        if isinstance(message, wx_events.UnsubscribeEvent):
            return event("unsubscribe")
        if isinstance(message, wx_events.TemplateSendJobFinishEvent):
            return Converted(template_job=WeChatTemplateJob(msg_id=_in_int64(message.id, "MsgId"), openid=openid,
                                                            status=str(field_text(message.status, "Status") or "")[:64]))
        return Converted()
    if isinstance(message, wx_messages.UnknownMessage):
        return Converted()
    msg_id = _in_int64(message.id or 0, "MsgId")
    base = {"channel": CHANNEL, "user_id": openid,
            "message_id": str(msg_id) if msg_id else "h" + _digest(openid, create_time, message._data)}
    if isinstance(message, wx_messages.TextMessage):
        return Converted(Inbound(text=field_text(message.content, "Content") or "", **base))  # type: ignore[arg-type]
    if isinstance(message, wx_messages.VoiceMessage):
        return Converted(Inbound(text=field_text(message.recognition, "Recognition"), **base))  # type: ignore[arg-type]
    if isinstance(message, wx_messages.LocationMessage):
        location = Location(_coordinate(message.location_x), _coordinate(message.location_y),
                            field_text(message.label, "Label", max_length=1024))
        return Converted(Inbound(event="location", location=location, **base))  # type: ignore[arg-type]
    return Converted(Inbound(**base))  # type: ignore[arg-type]


def _mine(xml: str) -> Converted | str:
    try:
        return to_inbound(parse(xml.encode("utf-8")))
    except MALFORMED:
        return "malformed"


def _comparable(result: Converted | str) -> object:
    """Messages without a MsgId dedupe on a hash of their fields; wechatpy's field reads added
    defaults to the hashed dict, so the two hashes differ (each is stable): compare the rest. A
    template report is dated when read."""
    if isinstance(result, str):
        return result
    inbound = result.inbound
    if inbound is not None and (inbound.message_id or "").startswith("h"):
        inbound = replace(inbound, message_id="h…")
    job = result.template_job
    return inbound, None if job is None else (job.msg_id, job.openid, job.status)


@pytest.mark.parametrize("xml", CASES + _samples())
def test_reads_as_wechatpy_did(xml: str) -> None:
    assert _comparable(_mine(xml)) == _comparable(_oracle(xml))


@pytest.mark.parametrize("xml", CASES + _samples())
def test_tree_is_xmltodicts(xml: str) -> None:
    try:
        expected: object = xmltodict.parse(xml)
    except Exception:
        expected = "error"
    try:
        mine: object = _tree(xml.encode("utf-8"))
    except MALFORMED:
        mine = "error"
    assert mine == expected


def test_a_message_without_msgid_keeps_one_key() -> None:
    xml = CASES[3].encode()
    first, again = to_inbound(parse(xml)).inbound, to_inbound(parse(xml)).inbound
    assert first is not None and again is not None
    assert first.message_id == again.message_id and (first.message_id or "").startswith("h")


def test_doctype_and_entities_are_refused_by_the_parser_too() -> None:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
              b"<xml><ToUserName>&lol2;</ToUserName><MsgType>text</MsgType></xml>")
    with pytest.raises(MALFORMED):
        parse(laughs)
    with pytest.raises(MALFORMED):
        parse(b"")


@pytest.mark.parametrize("content", ["你好", "a]]>b<c>\x01&", "", "第一行\n第二行" * 50])
def test_reply_is_textreply_render(content: str) -> None:
    mine = text_reply_xml(to_user="o_1]]>", from_user="gh_1", content=content, create_time=1764144000)
    expected = TextReply(target=cdata_safe("o_1]]>"), source=cdata_safe("gh_1"), content=cdata_safe(content),
                         time=1764144000).render()
    assert mine == expected
    assert (parse_message(mine).content or "") == INVALID_XML_CHARS.sub("", content).strip()
