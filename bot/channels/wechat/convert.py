"""WeChat XML ↔ the core: a callback's XML → ``Inbound`` (or a template report), replies → reply XML.

Both directions by hand, with wechatpy's meaning: its ``parse_message`` builds an xmltodict tree, a
message class and a field descriptor per read, and ``TextReply`` a field object per node, about a
hundred Python calls per request for the six fields we read and the five we write. ``parse`` builds
the same tree as xmltodict (the body of ``<xml>``: text stripped, empty → None, nested or attributed
elements → dicts, repeated ones → lists) with expat directly, and ``to_inbound`` reads the fields as
wechatpy's message classes would (its event names, its ``qrscene_`` rewrite, its defaults).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat
from xml.parsers.expat import ExpatError

from wechatpy.events import EVENT_TYPES

from bot.channels.render import render_text
from handlers.messages import Inbound, Location, Reply
from models.wechat import WeChatTemplateJob

CHANNEL = "wechat"
# characters XML 1.0 cannot carry at all (a reply containing one would not parse)
INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# the event types wechatpy has a class for, by their lower-case name (its message's ``event``); others it
# reads as an unknown message, acknowledged without a look at their fields
_EVENT_TYPES = frozenset(EVENT_TYPES)
# message types that carry no text: the core gets an inbound without text and asks for a text message
_MEDIA_TYPES = frozenset({"image", "link", "video", "shortvideo", "miniprogrampage"})
# what a malformed message raises while being parsed or converted (deep nesting: RecursionError;
# a number too large for a float or a date: OverflowError)
MALFORMED = (ExpatError, KeyError, ValueError, TypeError, AttributeError, UnicodeError, RecursionError,
             OverflowError)
MAX_ACCOUNT_ID = 128  # openids are 28 characters; the identity and page tables hold 128
MAX_MESSAGE_KEY = 160  # inbound_seen.message_key
INT64 = 2**63  # MsgId and CreateTime must fit a BIGINT column (and a timestamp)
_REPLY = ("<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[{content}]]></Content>\n"
          "<FromUserName><![CDATA[{source}]]></FromUserName>\n<ToUserName><![CDATA[{target}]]></ToUserName>\n"
          "<CreateTime>{time}</CreateTime>\n</xml>")


# ---- XML out ----------------------------------------------------------------------------------
def cdata_safe(text: str) -> str:
    """Text for a CDATA section: ``]]>`` split across two sections, XML-illegal characters dropped."""
    return INVALID_XML_CHARS.sub("", text).replace("]]>", "]]]]><![CDATA[>")


def text_reply_xml(*, to_user: str, from_user: str, content: str, create_time: int) -> str:
    """wechatpy's ``TextReply(...).render()``, node for node, from one template."""
    return _REPLY.format(content=cdata_safe(content), source=cdata_safe(from_user), target=cdata_safe(to_user),
                         time=int(create_time))


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


def _scene_payload(scene: str | None) -> str | None:
    scene = (scene or "").strip()
    return f"start:{scene}" if scene else None


class WeChatMessage:
    """One callback's fields (the body of ``<xml>`` as xmltodict gives it), its ``MsgType`` and, for an
    event, its event type, both lower-case as wechatpy dispatches on them."""

    __slots__ = ("fields", "msg_type", "event")

    def __init__(self, fields: dict[str, Any], msg_type: str, event: str | None) -> None:
        self.fields = fields
        self.msg_type = msg_type
        self.event = event

    @property
    def source(self) -> Any:
        return self.fields.get("FromUserName")

    @property
    def target(self) -> Any:
        return self.fields.get("ToUserName")


def _push(item: dict[str, Any] | None, name: str, value: Any) -> dict[str, Any]:
    """xmltodict's ``push_data``: a name seen again becomes a list."""
    if item is None:
        return {name: value}
    if name in item:
        seen = item[name]
        if isinstance(seen, list):
            seen.append(value)
        else:
            item[name] = [seen, value]
    else:
        item[name] = value
    return item


def _refuse_doctype(*_args: object) -> None:
    # the security layer refuses DOCTYPE/ENTITY before parsing; this keeps a DTD out whatever the spelling
    raise ValueError("XML declarations (DOCTYPE) are not accepted")


def _tree(xml: bytes) -> dict[str, Any] | None:
    """The document as ``xmltodict.parse`` builds it with its defaults (no namespaces, comments dropped)."""
    parser = expat.ParserCreate("utf-8")  # the declared encoding is ignored, as for the str wechatpy parsed
    parser.buffer_text = True
    parser.ordered_attributes = True
    stack: list[tuple[dict[str, Any] | None, list[str]]] = []
    item: dict[str, Any] | None = None
    data: list[str] = []

    def start(_name: str, attributes: list[str]) -> None:
        nonlocal item, data
        stack.append((item, data))
        item = ({"@" + attributes[i]: attributes[i + 1] for i in range(0, len(attributes), 2)}
                if attributes else None)
        data = []

    def end(name: str) -> None:
        nonlocal item, data
        text = ("".join(data).strip() or None) if data else None
        element = item
        item, data = stack.pop()
        if element is not None:
            if text:
                element["#text"] = text
            item = _push(item, name, element)
        else:
            item = _push(item, name, text)

    def characters(text: str) -> None:
        data.append(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.Parse(xml, True)
    return item


def parse(xml: bytes) -> WeChatMessage:
    """Raises one of ``MALFORMED`` when the XML is not a WeChat message."""
    if not xml:
        raise ValueError("empty body")
    tree = _tree(xml)
    if tree is None:
        raise ValueError("no document")
    fields = tree["xml"]  # another root: KeyError, as in wechatpy
    if not isinstance(fields, dict):
        raise ValueError("no fields")
    msg_type = fields["MsgType"].lower()  # missing: KeyError; not one text: AttributeError
    event = None
    if msg_type == "event" or msg_type.startswith("device_"):  # wechatpy.parser.parse_message
        if "Event" in fields:
            event = fields["Event"].lower()
        if event is None and msg_type.startswith("device_"):
            event = msg_type
        elif msg_type.startswith("device_"):
            event = f"device_{event}"
        if event == "subscribe" and fields.get("EventKey"):
            key = fields["EventKey"]
            if key.startswith(("scanbarcode|", "scanimage|")):
                event = fields["Event"] = "subscribe_scan_product"
            elif key.startswith("qrscene_"):  # subscribed by scanning a QR code with a scene
                event = fields["Event"] = "subscribe_scan"
                fields["EventKey"] = key[len("qrscene_"):]
    return WeChatMessage(fields, msg_type, event)


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


def message_key(fields: dict[str, Any], openid: str, create_time: int) -> str:
    """The MsgId; a message without one dedupes on a hash of its sender, time and whole content."""
    msg_id = _in_int64(fields.get("MsgId") or 0, "MsgId")
    if msg_id:
        return str(msg_id)
    return "h" + _digest(openid, create_time, fields)


def to_inbound(message: WeChatMessage) -> Converted:
    """A parsed callback → neutral inbound. Raises one of ``MALFORMED`` on malformed field values.

    Reads what wechatpy's classes would: a missing number is 0 (``CreateTime``, ``MsgId``,
    coordinates of a location event), an element that is not one text is refused where read."""
    fields = message.fields
    openid = field_text(fields.get("FromUserName"), "FromUserName", required=True, max_length=MAX_ACCOUNT_ID)
    assert openid is not None
    field_text(fields.get("ToUserName"), "ToUserName", required=True, max_length=MAX_ACCOUNT_ID)
    create_time = _in_int64(fields.get("CreateTime") or 0, "CreateTime")
    kind = message.event
    if kind is not None or message.msg_type == "event":
        if kind not in _EVENT_TYPES:
            return Converted()
        raw_key = field_text(fields.get("EventKey"), "EventKey", max_length=1024)
        key = event_key(openid, create_time, kind, raw_key)

        def event(name: str, **more: object) -> Converted:
            return Converted(Inbound(channel=CHANNEL, user_id=openid, event=name, message_id=key, **more))  # type: ignore[arg-type]

        if kind == "subscribe_scan":
            return event("subscribe", payload=_scene_payload(raw_key))
        if kind == "subscribe":
            return event("subscribe")
        if kind == "scan":
            return event("scan", payload=_scene_payload(raw_key))
        if kind == "click":
            return event("menu", payload=(raw_key or "").strip() or None)
        if kind == "location":
            return event("location", location=Location(_coordinate(fields.get("Latitude") or 0.0),
                                                       _coordinate(fields.get("Longitude") or 0.0)))
        if kind == "unsubscribe":
            return event("unsubscribe")
        if kind == "templatesendjobfinish":
            return Converted(template_job=WeChatTemplateJob(
                msg_id=_in_int64(fields.get("MsgID"), "MsgId"), openid=openid,
                status=str(field_text(fields.get("Status"), "Status") or "")[:64]))
        return Converted()  # VIEW, mass-send reports, popups…: acknowledged, nothing to do
    kind = message.msg_type
    if kind == "text":
        text: str | None = field_text(fields.get("Content"), "Content") or ""
    elif kind == "voice":  # without speech recognition the core gets no text and asks for a text message
        text = field_text(fields.get("Recognition"), "Recognition")
    elif kind == "location":
        location = Location(_coordinate(fields.get("Location_X")), _coordinate(fields.get("Location_Y")),
                            field_text(fields.get("Label"), "Label", max_length=1024))
        return Converted(Inbound(channel=CHANNEL, user_id=openid, event="location", location=location,
                                 message_id=message_key(fields, openid, create_time)))
    elif kind in _MEDIA_TYPES:
        text = None  # no text: the core asks for text
    else:
        return Converted()  # a message type we do not know
    return Converted(Inbound(channel=CHANNEL, user_id=openid, text=text,
                             message_id=message_key(fields, openid, create_time)))
