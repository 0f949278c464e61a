"""Group commit: requests that arrive while one write is queued or running are written together by the next.

A request ``submit``s its item and waits for the write that holds it; one writer task at a time takes
the whole batch once the write slot is its own (what arrives meanwhile joins the next batch) and writes
it in one trip. Under a burst that is one short transaction per batch instead of one per request, and
on SQLite one wait for the single writer per batch. Used by the inbound queue (``bot.inbox``) and the
WeChat replay guard (``bot.channels.wechat.security``); what each does with its outcomes (metrics,
memory of what it stored, wake-ups) stays with it, in its ``write``.

Semantics, the same for every user:

- each request gets its own outcome, or the write's exception: a failed write fails every request of
  that batch (as each one's own write would have), and the next batch is written as if nothing happened;
  ``write`` may also answer one request with an exception of its own (its place in the outcomes);
- waits are shielded: a request that goes away does not cancel the write others wait for (each request
  waits on a future of its own, which is all its cancellation reaches);
- the writer cancelled (``close``, or the loop's shutdown): the requests of its batch and those still
  waiting are cancelled too, none is left waiting for a write that will not come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# ``write``: one outcome per item, in the batch's order; an ``Exception`` in a place fails that request alone.
# Raising fails every request of the batch
Write = Callable[[list[Item]], Awaitable[Sequence[Outcome | Exception]]]
Context = Callable[[], AbstractAsyncContextManager[object]]


@dataclass(slots=True)
class _Entry(Generic[Item, Outcome]):
    """One item to write and the requests waiting for its outcome (more than one when they joined by key)."""
    item: Item
    futures: list[asyncio.Future[Outcome]] = field(default_factory=list)

    def settle(self, outcome: Outcome | BaseException) -> None:
        for future in self.futures:
            if future.done():  # settled already (e.g. cancelled with the loop)
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()  # a no-op on the settled ones


class GroupCommit(Generic[Item, Outcome]):
    """``submit(item)`` → its outcome, written in one batch with the items submitted alongside.

    ``write(items)``: writes a batch in one trip, returns one outcome per item (see ``Write``).
    ``slot``: entered around each batch, taking it and writing it (SQLite: the single writer's turn); read
    at each use, so a caller may pass ``lambda: self.write_slot()`` and replace its slot later.
    ``run``: if given, entered once by each writer task around its batches, e.g. to keep one connection while
    requests keep coming and give it back once none wait (it should not raise on leaving).
    ``settled``: called after each batch is answered (wake-ups of whoever watches ``pending``).
    """

    def __init__(self, write: Write[Item, Outcome], *, slot: Context = contextlib.nullcontext,
                 run: Context | None = None, settled: Callable[[], None] | None = None,
                 name: str = "group-commit") -> None:
        self._write = write
        self._slot = slot
        self._run = run
        self._settled = settled
        self._name = name
        self._waiting: list[_Entry[Item, Outcome]] = []  # not taken yet, in order of arrival
        self._keyed: dict[Hashable, _Entry[Item, Outcome]] = {}  # the keyed ones of ``_waiting``
        self._batch: list[_Entry[Item, Outcome]] = []  # taken, being written
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests not answered yet: waiting for a batch or in the one being written."""
        return sum(len(entry.futures) for entry in self._waiting) + sum(len(entry.futures) for entry in self._batch)

    def submit(self, item: Item, *, key: Hashable | None = None) -> asyncio.Future[Outcome]:
        """Await it: the item's outcome once its batch is written (or that write's exception). ``key``: a request
        with the key of an item still waiting for its batch joins it (gets its outcome; its item is not written).
        A future, not a coroutine: no frame of its own to resume on the request path (about one a request)."""
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        entry = self._keyed.get(key) if key is not None else None
        if entry is None:
            entry = _Entry(item)
            self._waiting.append(entry)
            if key is not None:
                self._keyed[key] = entry
        entry.futures.append(future)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name=self._name)
        # a future of its own: a request that goes away cancels only that, never the write others wait for
        # (what ``asyncio.shield`` would give, without a second future per request)
        return future

    async def close(self) -> None:
        """Cancels the write in progress and every request waiting; later ``submit``s raise ``RuntimeError``."""
        self._closed = True
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.wait([writer])  # not ``await writer``: that would raise its cancellation here
        self._cancel_waiting()  # none should be left; belt and braces for a writer that never started

    async def _write_waiting(self) -> None:
        try:
            # the outer loop: what arrived while ``run`` was being left (which may wait, e.g. closing a
            # connection) gets a new run; this task ends only with nothing waiting, with no wait in between
            while self._waiting:
                if self._run is None:
                    await self._write_batch()
                    continue
                async with self._run():
                    while self._waiting:
                        await self._write_batch()
        except Exception as exc:  # entering or leaving the slot or ``run`` failed: nothing left can be written
            log.exception("%s: the writer failed outside a write", self._name)
            waiting, self._waiting, self._keyed = self._waiting, [], {}
            for entry in waiting:
                entry.settle(exc)
        finally:  # cancelled (shutdown): the requests still waiting end too
            self._cancel_waiting()

    async def _write_batch(self) -> None:
        async with self._slot():
            # taken once the slot is ours: what comes meanwhile joins the next batch
            batch, self._waiting, self._keyed = self._waiting, [], {}
            self._batch = batch
            try:
                outcomes = await self._write([entry.item for entry in batch])
                if len(outcomes) != len(batch):
                    raise ValueError(f"{self._name}: {len(outcomes)} outcomes for {len(batch)} items")
            except Exception as exc:  # every request of the batch fails, as its own write would have
                for entry in batch:
                    entry.settle(exc)
            else:
                for entry, outcome in zip(batch, outcomes, strict=True):
                    entry.settle(outcome)
            finally:
                for entry in batch:  # cancelled: the requests waiting for this write end too (answered: a no-op)
                    entry.cancel()
                self._batch = []
                if self._settled is not None:
                    self._settled()

    def _cancel_waiting(self) -> None:
        waiting, self._waiting, self._keyed = self._waiting, [], {}
        for entry in waiting:
            entry.cancel()
