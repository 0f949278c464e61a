"""The outbox drainer's settings, counters, claimed rows and waits (``bot.outbox`` re-exports the settings)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo


def parse_hhmm(value: str) -> dtime:
    hours, _, minutes = value.partition(":")
    return dtime(int(hours), int(minutes or 0))


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: dtime
    end: dtime
    tz: ZoneInfo

    @classmethod
    def parse(cls, start: str, end: str, tz: str) -> QuietHours:
        return cls(parse_hhmm(start), parse_hhmm(end), ZoneInfo(tz))

    def active(self, now: datetime) -> bool:
        local = now.astimezone(self.tz).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the window spans midnight


@dataclass(slots=True)
class DrainOptions:
    quiet: QuietHours | None = None
    claim_window: float = 0.1  # seconds of sending claimed per batch
    max_batch: int = 200
    idle_poll: float = 1.0  # how often an idle drainer looks for due rows
    max_attempts: int = 8  # temporary failures before a row is given up (429 pauses do not count)
    base_backoff: float = 5.0
    max_backoff: float = 3600.0


@dataclass(slots=True)
class Claimed:
    id: int
    identity_id: int
    external_id: str
    text: str
    choices: list[dict[str, str]]
    attempts: int
    last_inbound_at: datetime | None


@dataclass(slots=True)
class DrainStats:
    """Counters since the drainer started (read them for metrics: ``handed`` is the send rate)."""

    handed: int = 0  # rows handed to the sender
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    blocked: int = 0
    pauses: int = 0
    recovered_unknown: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


async def first_of(*waits: asyncio.Event | asyncio.Task[None] | None) -> None:
    """Until one of the events is set or one of the tasks is done."""
    helpers = [asyncio.ensure_future(w.wait()) for w in waits if isinstance(w, asyncio.Event)]
    try:
        await asyncio.wait(helpers + [w for w in waits if isinstance(w, asyncio.Task)],
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        for helper in helpers:
            helper.cancel()


async def wait_or_stop(stop: asyncio.Event | None, seconds: float) -> None:
    if stop is None:
        await asyncio.sleep(max(seconds, 0.01))
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.01))
