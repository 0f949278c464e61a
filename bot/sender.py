"""The contract between the outbox drain loop and each channel's push sender.

A sender pushes one outbox row to its platform and says what happened; the drain loop (not
the sender) decides about retries, pauses and status changes in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Outcome = Literal["sent", "retry", "failed", "held", "blocked"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    delivery_id: int
    channel: str
    external_id: str  # the recipient's id on that channel (openid, Telegram chat id)
    text: str
    choices: list[dict[str, str]] = field(default_factory=list)  # {"label", "value"}
    last_inbound_at_ts: float | None = None  # POSIX seconds of the user's last message (WeChat 48 h window)


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    # "retry": wait at least this long; a channel-wide pause (e.g. Telegram 429) sets pause_all
    retry_after: float | None = None
    pause_all: bool = False
    error: str | None = None


class ChannelSender(Protocol):
    channel: str
    rate_per_second: float  # global rate for this channel
    per_chat_interval: float  # seconds between two messages to one recipient (0 = no limit)

    async def send(self, message: OutboundMessage) -> SendResult: ...

    async def close(self) -> None: ...


MIN_LATENESS_CREDIT = 0.02  # seconds
MAX_LATENESS_CREDIT = 0.5  # seconds


def lateness_credit(rate_per_second: float) -> float:
    """How far a sending schedule may run behind the clock and still catch up (pacing keeps a credit
    instead of ``max(now, next_slot)``, which loses every late millisecond for good). It grows with the
    rate, ``rate / 2,000`` seconds between 20 ms and 500 ms: the messages caught up in one go (about
    ``rate² / 2,000``) stay at most one at Telegram's 30/s and below 40/s — any second then holds at
    most one message over the rate — while at 1,000/s a stall of up to half a second (a commit, a
    full collection of the garbage collector, the process waiting for a core) is made up instead of
    lost. A sender that must never exceed its rate within any one second caps that itself (the
    Telegram sender counts the starts of the last second)."""
    if rate_per_second <= 0:
        return 0.0
    return min(MAX_LATENESS_CREDIT, max(MIN_LATENESS_CREDIT, rate_per_second / 2_000))


def paced_start(next_slot: float, now: float, interval: float, credit: float) -> float:
    """The earliest start of the next send on a schedule of one send per ``interval``: ``next_slot``,
    or, when the schedule runs behind the clock, up to ``credit`` in the past (the send goes at once
    and the lateness is made up); after a pause longer than that the schedule restarts at ``now``."""
    lag = now - next_slot
    if lag <= credit:
        return next_slot
    if lag <= credit + interval:
        return now - credit
    return now
