"""The neutral request and response every channel adapter converts to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a user did: a text, a button press (payload), an event, a location.

    ``message_id`` is the platform's id of this delivery; the same id seen twice has one effect.
    ``event`` names platform events in neutral words: subscribe, unsubscribe, scan, menu, location.
    """

    channel: str
    user_id: str
    text: str | None = None
    payload: str | None = None
    event: str | None = None
    location: Location | None = None
    message_id: str | None = None
    language: str | None = None  # platform language hint (e.g. Telegram language_code)
    display_name: str | None = None
    conversation_id: str | None = None  # the chat the message came from, when not the user's own
    is_group: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    """A button / numbered option. ``value`` comes back as ``Inbound.payload`` (≤ 64 bytes)."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Document:
    """A file the reply carries (a 志愿服务证明 PDF). A channel that sends files (Telegram) sends it,
    loading ``kind``/``ref`` through its document source; the others show ``url`` (a signed download
    link) as a link, or nothing when there is none (no PUBLIC_BASE_URL)."""

    kind: str  # "certificate"
    ref: str  # what the source loads it by (the certificate number)
    filename: str
    label: str  # the caption / link text, in the reply's language
    url: str = ""


@dataclass(slots=True)
class Reply:
    """One message back to the user, already in its language (``lang``), so no adapter guesses it."""

    text: str
    choices: list[Choice] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    lang: str = "zh-Hans"
    documents: list[Document] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies recursively, a cost on every turn's stored replies
        return {"text": self.text, "choices": [{"label": c.label, "value": c.value} for c in self.choices],
                "links": [{"label": link.label, "url": link.url} for link in self.links], "lang": self.lang,
                **({"documents": [{"kind": d.kind, "ref": d.ref, "filename": d.filename, "label": d.label,
                                   "url": d.url} for d in self.documents]} if self.documents else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        return cls(
            text=data["text"],
            choices=[Choice(**c) for c in data.get("choices", [])],
            links=[Link(**link) for link in data.get("links", [])],
            lang=data.get("lang", "zh-Hans"),
            documents=[Document(**d) for d in data.get("documents", [])],
        )
