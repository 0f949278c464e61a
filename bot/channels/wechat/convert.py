"""WeChat XML ↔ the core: a wechatpy message → ``Inbound`` (or a template report), replies → reply XML."""

from __future__ import annotations

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
# what a malformed message raises while being parsed or converted
MALFORMED = (ExpatError, KeyError, ValueError, TypeError, AttributeError, UnicodeError)


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


def _scene_payload(scene: str | None) -> str | None:
    scene = (scene or "").strip()
    return f"start:{scene}" if scene else None


def parse(xml: bytes) -> wx_messages.BaseMessage:
    """Raises one of ``MALFORMED`` when the XML is not a WeChat message."""
    message = parse_message(xml.decode("utf-8"))
    if message is None:
        raise ValueError("empty body")
    return message


def to_inbound(message: wx_messages.BaseMessage) -> Converted:
    """wechatpy message → neutral inbound. Raises ValueError/TypeError on malformed field values."""
    openid = str(message.source or "")
    if not openid:
        raise ValueError("no FromUserName")
    if isinstance(message, wx_events.BaseEvent):
        key = f"{openid}:{message.time}:{message.event}"

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
            return event("location", location=Location(float(message.latitude), float(message.longitude)))
        if isinstance(message, wx_events.UnsubscribeEvent):
            return event("unsubscribe")
        if isinstance(message, wx_events.TemplateSendJobFinishEvent):
            return Converted(template_job=WeChatTemplateJob(msg_id=int(message.id), openid=openid,
                                                            status=str(message.status or "")[:64]))
        return Converted()  # VIEW, mass-send reports, popups…: acknowledged, nothing to do
    if isinstance(message, wx_messages.UnknownMessage):
        return Converted()
    message_id = str(int(message.id))
    base = {"channel": CHANNEL, "user_id": openid, "message_id": message_id}
    if isinstance(message, wx_messages.TextMessage):
        return Converted(Inbound(text=str(message.content or ""), **base))  # type: ignore[arg-type]
    if isinstance(message, wx_messages.VoiceMessage):
        # without speech recognition the core gets no text and asks for a text message
        return Converted(Inbound(text=(message.recognition or None), **base))  # type: ignore[arg-type]
    if isinstance(message, wx_messages.LocationMessage):
        location = Location(float(message.location_x), float(message.location_y), message.label or None)
        return Converted(Inbound(event="location", location=location, **base))  # type: ignore[arg-type]
    if isinstance(message, _MEDIA_MESSAGES):
        return Converted(Inbound(**base))  # type: ignore[arg-type]  # no text: the core asks for text
    return Converted()
