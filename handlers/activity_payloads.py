"""Typed button payloads of activities, hours, announcements and the ledger export."""

from __future__ import annotations

from typing import TypeVar

from handlers.payloads import Payload, payload

P = TypeVar("P", bound=Payload)


@payload("act")
class OpenActivity(Payload):
    activity_id: int


@payload("join")
class JoinActivity(Payload):
    activity_id: int


@payload("leave")
class LeaveActivity(Payload):
    activity_id: int


@payload("roster")
class ActivityRoster(Payload):
    activity_id: int


@payload("acts")
class ActivityPage(Payload):
    page: int


@payload("rec")
class RecordHours(Payload):
    activity_id: int


@payload("announce")
class AnnounceActivity(Payload):
    activity_id: int


@payload("export")
class ExportPeriod(Payload):
    period: str


@payload("rosterx")
class ExportRoster(Payload):
    activity_id: int


def optional(cls: type[P], arg: str) -> P | None:
    """For commands that also run bare (typed words, menu buttons): None without an argument.

    Raises :class:`handlers.payloads.InvalidPayload` for an argument this version did not make.
    """
    return cls.from_arg(arg) if arg else None
