"""The group-commit primitive (bot/group_commit.py) alone, without a database: batching, each request's
own outcome, a failed write failing exactly its batch, shielded waits, the write slot and the writer's run
around the write, and shutdown. No timing: writes are held on events, and the loop is stepped until a
condition holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from bot.group_commit import GroupCommit


async def until(condition: Callable[[], bool]) -> None:
    """Steps the loop until ``condition`` holds (a bounded number of steps, not a time)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def request(commits: GroupCommit[int, int], item: int, *, key: str | None = None) -> asyncio.Task[int]:
    """A request waiting for its outcome in a task of its own (as a web request's handler does)."""
    async def wait() -> int:
        return await commits.submit(item, key=key)
    return asyncio.create_task(wait())


class Writes:
    """A ``write`` that records its batches, answers each item doubled, and can be held or made to fail."""

    def __init__(self, *, held: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()  # set: the writes go through; clear: each waits for it
        if not held:
            self.release.set()
        self.writing = False
        self.fail_next: Exception | None = None

    async def __call__(self, items: list[int]) -> Sequence[int | Exception]:
        self.batches.append(items)
        self.writing = True
        try:
            await self.release.wait()
        finally:
            self.writing = False
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        return [ValueError(f"no {item}") if item < 0 else item * 2 for item in items]


async def test_concurrent_submits_share_writes_and_each_gets_its_own_outcome() -> None:
    writes = Writes(held=True)
    commits: GroupCommit[int, int] = GroupCommit(writes)
    first = request(commits, 1)
    await until(lambda: writes.writing)  # the first write holds item 1; the next ones wait for it
    rest = [request(commits, n) for n in range(2, 12)]
    await until(lambda: commits.pending == 11)
    writes.release.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [n * 2 for n in range(2, 12)]
    assert writes.batches == [[1], list(range(2, 12))]  # what came during a write: the next one, together
    assert commits.pending == 0


async def test_a_failed_write_fails_exactly_its_batch_and_the_next_write_works() -> None:
    writes = Writes(held=True)
    commits: GroupCommit[int, int] = GroupCommit(writes)
    failing = [request(commits, n) for n in (1, 2, 3)]
    await until(lambda: writes.writing)
    writes.fail_next = ConnectionError("database gone")
    later = [request(commits, n) for n in (4, 5)]  # the next batch
    await until(lambda: commits.pending == 5)
    writes.release.set()
    outcomes = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    assert await asyncio.gather(*later) == [8, 10]
    assert await commits.submit(6) == 12  # a writer after the failed one


async def test_an_exception_in_one_place_fails_that_request_alone() -> None:
    commits: GroupCommit[int, int] = GroupCommit(Writes())
    alone = request(commits, -1)
    assert await asyncio.gather(commits.submit(1), commits.submit(2)) == [2, 4]
    with pytest.raises(ValueError, match="no -1"):
        await alone


async def test_a_write_with_too_few_outcomes_fails_its_batch() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    commits: GroupCommit[int, int] = GroupCommit(short)
    outcomes = await asyncio.gather(commits.submit(1), commits.submit(2), return_exceptions=True)
    assert all(isinstance(outcome, ValueError) for outcome in outcomes)


async def test_a_request_that_goes_away_does_not_cancel_the_write_the_others_wait_for() -> None:
    writes = Writes(held=True)
    commits: GroupCommit[int, int] = GroupCommit(writes)
    gone = request(commits, 1)
    stays = request(commits, 2)
    await until(lambda: writes.writing)
    gone.cancel()
    await until(gone.done)
    assert writes.writing  # the write goes on
    writes.release.set()
    assert await stays == 4
    assert gone.cancelled()
    assert writes.batches == [[1, 2]]  # written all the same: the request went, not its item
    assert commits.pending == 0


async def test_requests_with_one_key_share_the_item_waiting_for_its_write() -> None:
    writes = Writes(held=True)
    commits: GroupCommit[int, int] = GroupCommit(writes)
    first = request(commits, 1, key="a")
    await until(lambda: writes.writing)
    # item 1 is being written: a request with its key now waits for the next write, with its own item
    again = [request(commits, n, key="a") for n in (2, 3)]
    other = request(commits, 4, key="b")
    unkeyed = request(commits, 2)
    await until(lambda: commits.pending == 5)
    gone = request(commits, 9, key="a")  # joins and goes away: the others still get theirs
    await until(lambda: commits.pending == 6)
    gone.cancel()
    writes.release.set()
    assert await first == 2
    assert await asyncio.gather(*again) == [4, 4]  # the first waiting item of the key: 2
    assert await other == 8 and await unkeyed == 4
    assert writes.batches == [[1], [2, 4, 2]]


async def test_the_slot_is_held_while_a_batch_is_taken_and_written() -> None:
    slot = asyncio.Lock()
    held_during: list[bool] = []
    batches: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        held_during.append(slot.locked())
        batches.append(items)
        return items

    @contextlib.asynccontextmanager
    async def write_slot() -> AsyncIterator[None]:
        async with slot:
            yield

    commits: GroupCommit[int, int] = GroupCommit(write, slot=write_slot)
    await slot.acquire()  # another writer (SQLite: a turn) holds it: the requests wait, none is taken yet
    waiting = [request(commits, 0)]
    for _ in range(10):  # the writer task is waiting for the slot now
        await asyncio.sleep(0)
    waiting += [request(commits, n) for n in range(1, 5)]
    await until(lambda: commits.pending == 5)
    for _ in range(10):
        await asyncio.sleep(0)
    assert held_during == []
    slot.release()
    assert await asyncio.gather(*waiting) == list(range(5))
    # one write, inside the slot, for all that came while it was busy (the batch is taken once it is ours)
    assert held_during == [True] and batches == [list(range(5))]


async def test_a_writers_run_is_entered_once_around_its_batches_and_what_comes_while_it_ends_is_written() -> None:
    events: list[str] = []
    leaving = asyncio.Event()
    writes = Writes(held=True)

    @contextlib.asynccontextmanager
    async def run() -> AsyncIterator[None]:
        events.append("enter")
        try:
            yield
        finally:
            events.append("leave")
            await leaving.wait()  # e.g. a connection going back to the pool

    commits: GroupCommit[int, int] = GroupCommit(writes, run=run)
    first = request(commits, 1)
    await until(lambda: writes.writing)
    second = request(commits, 2)
    await until(lambda: commits.pending == 2)
    writes.release.set()
    assert await first == 2 and await second == 4
    await until(lambda: events[-1:] == ["leave"])
    assert events == ["enter", "leave"]  # one run around both batches
    late = request(commits, 3)  # arrives while the run is being left
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(writes.batches) == 2 and not late.done()  # the writer is still leaving its run
    leaving.set()
    await until(late.done)  # not stranded behind a writer that was about to end
    assert late.result() == 6
    assert events == ["enter", "leave", "enter", "leave"]


async def test_settled_is_called_after_each_batch_with_nothing_pending_of_it() -> None:
    pending_when_settled: list[int] = []
    commits: GroupCommit[int, int] = GroupCommit(
        Writes(), settled=lambda: pending_when_settled.append(commits.pending))
    assert await commits.submit(1) == 2
    assert pending_when_settled == [0]


async def test_close_cancels_the_write_and_every_waiting_request() -> None:
    writes = Writes(held=True)
    commits: GroupCommit[int, int] = GroupCommit(writes)
    in_write = [request(commits, n) for n in (1, 2)]
    await until(lambda: writes.writing)
    next_batch = [request(commits, n) for n in (3, 4)]
    await until(lambda: commits.pending == 4)
    await commits.close()
    assert not writes.writing  # the write itself was cancelled
    await until(lambda: all(task.done() for task in [*in_write, *next_batch]))  # none left waiting
    outcomes = await asyncio.gather(*in_write, *next_batch, return_exceptions=True)
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
    assert commits.pending == 0
    assert writes.batches == [[1, 2]]  # the waiting ones were never written
    with pytest.raises(RuntimeError):
        await commits.submit(5)


async def test_a_failing_slot_fails_the_waiting_requests_instead_of_stranding_them() -> None:
    @contextlib.asynccontextmanager
    async def broken_slot() -> AsyncIterator[None]:
        raise OSError("no writer")
        yield  # pragma: no cover

    commits: GroupCommit[int, int] = GroupCommit(Writes(), slot=broken_slot)
    outcomes = await asyncio.gather(commits.submit(1), commits.submit(2), return_exceptions=True)
    assert all(isinstance(outcome, OSError) for outcome in outcomes)
    assert commits.pending == 0


async def test_a_cancelled_writer_cancels_the_requests_still_waiting() -> None:
    """The loop's shutdown cancels the writer task: none of its requests is left waiting for ever."""
    writes = Writes(held=True)
    commits: GroupCommit[int, int] = GroupCommit(writes, name="cancelled-writer")
    in_write = request(commits, 1)
    await until(lambda: writes.writing)
    next_batch = request(commits, 2)
    await until(lambda: commits.pending == 2)
    [writer] = [task for task in asyncio.all_tasks() if task.get_name() == "cancelled-writer"]
    writer.cancel()
    await until(lambda: in_write.done() and next_batch.done())
    assert in_write.cancelled() and next_batch.cancelled()
    assert commits.pending == 0
    writes.release.set()
    assert await commits.submit(3) == 6  # not closed: the next request gets a new writer


async def test_close_before_the_writer_ran_cancels_the_request() -> None:
    writes = Writes()
    commits: GroupCommit[int, int] = GroupCommit(writes)
    waiting = request(commits, 1)
    await asyncio.sleep(0)  # the request is waiting; its writer task is created but has not run yet
    assert commits.pending == 1
    await commits.close()  # cancels a task that never started: its own clean-up never runs
    await until(waiting.done)
    assert waiting.cancelled() and writes.batches == []
