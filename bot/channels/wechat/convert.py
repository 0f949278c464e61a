"""WeChat XML ↔ the core: a wechatpy message → ``Inbound`` (or a template report), replies → reply XML."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

from wechatpy import events as wx_events
from wechatpy import messages as wx_messages
from wechatpy import parse_message
from wechatpy.replies import TextReply

from bot.channels.render import render_text
from handlers.messages import Inbound, Location, Reply
from models.wechat import WeChatTemplateJob

CHANNEL = "wechat"
# characters XML 1.0 cannot carry at all (a reply containing one would not parse)
INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MEDIA_MESSAGES = (wx_messages.ImageMessage, wx_messages.LinkMessage, wx_messages.VideoMessage,
                   wx_messages.ShortVideoMessage, wx_messages.MiniProgramPageMessage)
# what a malformed message raises while being parsed or converted (deep nesting: RecursionError;
# a number too large for a float or a date: OverflowError)
MALFORMED = (ExpatError, KeyError, ValueError, TypeError, AttributeError, UnicodeError, RecursionError,
             OverflowError)
MAX_ACCOUNT_ID = 128  # openids are 28 characters; the identity and page tables hold 128
MAX_MESSAGE_KEY = 160  # inbound_seen.message_key
INT64 = 2**63  # MsgId and CreateTime must fit a BIGINT column (and a timestamp)


# ---- XML out ----------------------------------------------------------------------------------
def cdata_safe(text: str) -> str:
    """Text for a CDATA section: ``]]>`` split across two sections, XML-illegal characters dropped."""
    return INVALID_XML_CHARS.sub("", text).replace("]]>", "]]]]><![CDATA[>")


def text_reply_xml(*, to_user: str, from_user: str, content: str, create_time: int) -> str:
    reply = TextReply(target=cdata_safe(to_user), source=cdata_safe(from_user), content=cdata_safe(content),
                      time=create_time)
    return reply.render()


def render_replies(replies: list[Reply]) -> str:
    return "\n\n".join(render_text(reply) for reply in replies)


# ---- XML in -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Converted:
    """What a WeChat message means: an inbound for the core, a template report, or nothing."""

    inbound: Inbound | None = None
    template_job: WeChatTemplateJob | None = None


def _coordinate(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    if not -180.0 <= number <= 180.0:  # also refuses nan and inf
        raise ValueError("coordinate out of range")
    return number


def _scene_payload(scene: object) -> str | None:
    scene = (field_text(scene, "EventKey", max_length=1024) or "").strip()
    return f"start:{scene}" if scene else None


def parse(xml: bytes) -> wx_messages.BaseMessage:
    """Raises one of ``MALFORMED`` when the XML is not a WeChat message."""
    message = parse_message(xml.decode("utf-8"))
    if message is None:
        raise ValueError("empty body")
    return message


def field_text(value: object, name: str, *, required: bool = False, max_length: int | None = None) -> str | None:
    """A field that must be one text: a repeated element (a list), nested elements (a dict) or an
    overlong value is a malformed message, never something to store."""
    if value is None or value == "":
        if required:
            raise ValueError(f"no {name}")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} is not one text")
    if max_length is not None and len(value) > max_length:
        raise ValueError(f"{name} longer than {max_length}")
    return value


def _in_int64(value: object, name: str) -> int:
    number = int(value)  # type: ignore[call-overload]
    if not 0 <= number < INT64:
        raise ValueError(f"{name} out of range")
    return number


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode()).hexdigest()[:40]


def event_key(openid: str, create_time: int, event: str, key: str | None) -> str:
    """Events have no MsgId: WeChat's retries repeat sender, time, event and EventKey (two menu clicks
    in one second differ by their key). Hashed when too long for the dedupe column."""
    readable = f"{openid}:{create_time}:{event}:{key or ''}"
    return readable if len(readable) <= MAX_MESSAGE_KEY else "e" + _digest(openid, create_time, event, key)


def message_key(message: wx_messages.BaseMessage, openid: str, create_time: int) -> str:
    """The MsgId; a message without one dedupes on a hash of its sender, time and whole content."""
    msg_id = _in_int64(message.id or 0, "MsgId")
    if msg_id:
        return str(msg_id)
    return "h" + _digest(openid, create_time, message._data)


def to_inbound(message: wx_messages.BaseMessage) -> Converted:
    """wechatpy message → neutral inbound. Raises one of ``MALFORMED`` on malformed field values."""
    openid = field_text(message.source, "FromUserName", required=True, max_length=MAX_ACCOUNT_ID)
    assert openid is not None
    field_text(message.target, "ToUserName", required=True, max_length=MAX_ACCOUNT_ID)
    create_time = _in_int64(message.time or 0, "CreateTime")
    if isinstance(message, wx_events.BaseEvent):
        event_name = field_text(message.event, "Event") or ""
        raw_key = message._data.get("EventKey")
        key = event_key(openid, create_time, event_name, field_text(raw_key, "EventKey", max_length=1024))

        def event(name: str, **fields: object) -> Converted:
            return Converted(Inbound(channel=CHANNEL, user_id=openid, event=name, message_id=key, **fields))  # type: ignore[arg-type]

        if isinstance(message, wx_events.SubscribeScanEvent):
            return event("subscribe", payload=_scene_payload(message.scene_id))
        if isinstance(message, wx_events.SubscribeEvent):
            return event("subscribe")
        if isinstance(message, wx_events.ScanEvent):
            return event("scan", payload=_scene_payload(message.scene_id))
        if isinstance(message, wx_events.ClickEvent):
            return event("menu", payload=str(message.key or "").strip() or None)
        if isinstance(message, wx_events.LocationEvent):
            return event("location", location=Location(_coordinate(message.latitude), _coordinate(message.longitude)))
        if isinstance(message, wx_events.UnsubscribeEvent):
            return event("unsubscribe")
        if isinstance(message, wx_events.TemplateSendJobFinishEvent):
            return Converted(template_job=WeChatTemplateJob(msg_id=_in_int64(message.id, "MsgId"), openid=openid,
                                                            status=str(field_text(message.status, "Status") or "")[:64]))
        return Converted()  # VIEW, mass-send reports, popups…: acknowledged, nothing to do
    if isinstance(message, wx_messages.UnknownMessage):
        return Converted()
    base = {"channel": CHANNEL, "user_id": openid, "message_id": message_key(message, openid, create_time)}
    if isinstance(message, wx_messages.TextMessage):
        return Converted(Inbound(text=field_text(message.content, "Content") or "", **base))  # type: ignore[arg-type]
    if isinstance(message, wx_messages.VoiceMessage):
        # without speech recognition the core gets no text and asks for a text message
        return Converted(Inbound(text=field_text(message.recognition, "Recognition"), **base))  # type: ignore[arg-type]
    if isinstance(message, wx_messages.LocationMessage):
        location = Location(_coordinate(message.location_x), _coordinate(message.location_y),
                            field_text(message.label, "Label", max_length=1024))
        return Converted(Inbound(event="location", location=location, **base))  # type: ignore[arg-type]
    if isinstance(message, _MEDIA_MESSAGES):
        return Converted(Inbound(**base))  # type: ignore[arg-type]  # no text: the core asks for text
    return Converted()
