"""Prometheus metrics of one runtime (``GET /metrics``): one ``CollectorRegistry`` per runtime, passed in.

- ``volunteer_turn_seconds{channel}``: the core's turn time as the channel saw it (queue wait excluded);
- ``volunteer_deadline_misses_total{channel}``: a turn ran past the passive-reply deadline;
- ``volunteer_admission_answered_early_total{channel}``: admission expected the deadline to pass and
  answered at once (the reply follows through the outbox);
- ``volunteer_admission_refused_total{channel}``: the queue was full; the user was asked to resend;
- ``volunteer_admission_queued{channel}``: turns admitted and not finished (this process / all workers);
- ``volunteer_inbound_total{channel,outcome}``: messages answered at once under overload and kept in the
  inbound queue (``queued``), retries that joined a queued one (``joined``), refused past the queue's bound
  (``full``: the user was asked to resend), queued ones whose turn ran later (``handled``), of them the ones
  answered together with their user's next message (``ahead``: no customer-service message of their own);
- ``volunteer_inbound_queue_depth{channel}``: rows in the inbound queue, read at scrape time like the outbox;
- ``volunteer_scheduler_job_seconds{job}``: reminder scheduler job durations;
- ``volunteer_outbox_depth{channel,status}`` and ``volunteer_outbox_sent_total{channel}``: read from
  the ``delivery`` table at scrape time, so they are the deployment's and any worker can answer them.

With ``serve --workers N`` the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start:
prometheus-client then keeps every worker's values in files there and ``/metrics`` in any worker sums
them (``MultiProcessCollector``), so one scrape of the shared port sees the whole deployment.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from models import Delivery
from models.db import SessionFactory
from models.inbound_queue import InboundQueued

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)
OPEN_STATUSES = ("pending", "claimed", "sending", "held")


def multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.turn_seconds = Histogram("volunteer_turn_seconds", "Core turn time by channel (queue wait excluded)",
                                      ["channel"], buckets=TURN_BUCKETS, registry=r)
        self.deadline_misses = Counter("volunteer_deadline_misses", "Turns that ran past the reply deadline",
                                       ["channel"], registry=r)
        self.answered_early = Counter("volunteer_admission_answered_early",
                                      "Messages answered at once because the queue would pass the deadline",
                                      ["channel"], registry=r)
        self.refused = Counter("volunteer_admission_refused", "Messages refused because the queue was full",
                               ["channel"], registry=r)
        self.queued = Gauge("volunteer_admission_queued", "Turns admitted and not finished", ["channel"],
                            registry=r, multiprocess_mode="livesum")
        self.inbound = Counter("volunteer_inbound", "Messages kept in the inbound queue under overload, by outcome",
                               ["channel", "outcome"], registry=r)
        self.job_seconds = Histogram("volunteer_scheduler_job_seconds", "Reminder scheduler job durations",
                                     ["job"], buckets=JOB_BUCKETS, registry=r)

    async def exposition(self, sessions: SessionFactory | None) -> bytes:
        """The text format of this process (or, in multiprocess mode, of every worker) plus the outbox."""
        path = multiprocess_dir()
        if path is not None:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=path)
            body = generate_latest(merged)
        else:
            body = generate_latest(self.registry)
        if sessions is not None:
            outbox = CollectorRegistry()
            outbox.register(OutboxSnapshot(await outbox_counts(sessions), await inbound_depth(sessions)))
            body += generate_latest(outbox)
        return body


async def outbox_counts(sessions: SessionFactory) -> dict[tuple[str, str], int]:
    """Rows per (channel, status): the open ones (the queue's depth) and the sent ones (the send count)."""
    table = Delivery.__table__
    async with sessions() as session:
        result = await session.exec(
            sa.select(table.c.channel, table.c.status, sa.func.count())
            .where(table.c.status.in_((*OPEN_STATUSES, "sent")))
            .group_by(table.c.channel, table.c.status))
        return {(channel, status): int(count) for channel, status, count in result}


async def inbound_depth(sessions: SessionFactory) -> dict[str, int]:
    """Rows in the inbound queue per channel (messages acknowledged and not handled yet)."""
    table = InboundQueued.__table__  # type: ignore[attr-defined]
    async with sessions() as session:
        result = await session.exec(sa.select(table.c.channel, sa.func.count()).group_by(table.c.channel))
        return {channel: int(count) for channel, count in result}


class OutboxSnapshot(Collector):
    def __init__(self, counts: dict[tuple[str, str], int], inbound: dict[str, int] | None = None) -> None:
        self.counts = counts
        self.inbound = inbound or {}

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily("volunteer_outbox_depth", "Outbox rows not yet sent, by channel and status",
                                  labels=["channel", "status"])
        sent = CounterMetricFamily("volunteer_outbox_sent", "Outbox rows sent, by channel", labels=["channel"])
        for (channel, status), count in sorted(self.counts.items()):
            if status == "sent":
                sent.add_metric([channel], count)
            else:
                depth.add_metric([channel, status], count)
        inbound = GaugeMetricFamily("volunteer_inbound_queue_depth",
                                    "Messages acknowledged under overload and not handled yet, by channel",
                                    labels=["channel"])
        for channel, count in sorted(self.inbound.items()):
            inbound.add_metric([channel], count)
        return [depth, sent, inbound]
