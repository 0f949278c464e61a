"""我的时长's summary (one statement since migration 0017): sums, pending, corrections in effect, the newest records."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import event

from models import HourRecord, Person
from models.corrections import HourCorrection
from models.db import create_engine, create_session_factory
from services.hours import RecentRecord, hours_summary
from tests.helpers import add_activity, make_coordinator

NOW = datetime(2026, 3, 1, 10, 0).astimezone()


async def _person(session, name: str | None) -> int:  # noqa: ANN001
    person = Person(name=name, status="active")
    session.add(person)
    await session.flush()
    assert person.id is not None
    return person.id


def _record(person_id: int, hours: float, served_on: date, **fields: object) -> HourRecord:
    return HourRecord(person_id=person_id, hours=hours, served_on=served_on, created_at=NOW, **fields)


async def test_nobody_has_no_hours_and_no_records(sessions) -> None:
    async with sessions() as session:
        volunteer = await _person(session, "新人")
        other = await _person(session, "别人")
        session.add(_record(other, 3, date(2026, 2, 1)))
        await session.flush()
        summary = await hours_summary(session, person_id=volunteer, year=2026)
    assert (summary.total, summary.this_year, summary.pending, summary.stars, summary.recent) == (0, 0, 0, 0, [])
    assert summary.to_next_star == 100


async def test_pending_hours_alone_give_sums_and_no_records(sessions) -> None:
    async with sessions() as session:
        volunteer = await _person(session, "自报")
        session.add(_record(volunteer, 2.5, date(2026, 2, 1), approved=False, source="visit", note="探访王奶奶"))
        session.add(_record(volunteer, 4, date(2026, 2, 2), approved=False, reviewed_at=NOW))  # rejected
        await session.flush()
        summary = await hours_summary(session, person_id=volunteer, year=2026)
    assert (summary.total, summary.this_year, summary.pending, summary.recent) == (0, 0, 2.5, [])


async def test_sums_count_corrections_and_the_newest_records_come_first(sessions) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=NOW, title="敬老院探访")
    async with sessions() as session:
        volunteer = await _person(session, "老王")
        recorder = await _person(session, "李协调")
        records = [_record(volunteer, 2, date(2025, 12, day), activity_id=activity.id, recorded_by=recorder)
                   for day in range(1, 6)]
        corrected = _record(volunteer, 3, date(2026, 1, 10), activity_id=activity.id)
        voided = _record(volunteer, 5, date(2026, 1, 20), activity_id=activity.id)
        visit = _record(volunteer, 1.5, date(2026, 1, 5), source="visit", note="探访王奶奶", recorded_by=recorder)
        superseded = _record(volunteer, 1, date(2024, 6, 1), activity_id=activity.id)
        session.add_all([*records, corrected, voided, visit, superseded])
        await session.flush()

        def correction(record: HourRecord, hours: float | None, status: str = "approved") -> HourCorrection:
            assert record.id is not None
            return HourCorrection(record_id=record.id, old_hours=record.hours, hours=hours, reason="更正",
                                  requested_by=volunteer, status=status)
        session.add_all([correction(corrected, 1.5), correction(voided, None), correction(superseded, 9, "superseded"),
                         correction(records[0], 7, "pending")])
        await session.flush()
        summary = await hours_summary(session, person_id=volunteer, year=2026)
        assert (await hours_summary(session, person_id=volunteer, year=2026, recent=2)).recent == summary.recent[:2]

    # 5 × 2 + 1.5 (corrected from 3) + 0 (voided) + 1.5 + 1 (a superseded correction counts nothing)
    assert (summary.total, summary.this_year, summary.pending) == (14, 3, 0)
    assert summary.recent == [
        RecentRecord(date(2026, 1, 10), "敬老院探访", "", "activity", None, None, 1.5),
        RecentRecord(date(2026, 1, 5), None, "探访王奶奶", "visit", recorder, "李协调", 1.5),
        RecentRecord(date(2025, 12, 5), "敬老院探访", "", "activity", recorder, "李协调", 2),
        RecentRecord(date(2025, 12, 4), "敬老院探访", "", "activity", recorder, "李协调", 2),
        RecentRecord(date(2025, 12, 3), "敬老院探访", "", "activity", recorder, "李协调", 2),
    ]


async def test_the_summary_is_one_statement_that_listeners_see(sessions) -> None:
    """On PostgreSQL the summary runs on asyncpg itself (services.rows.fetch_rows); statement counts and
    the bench's EXPLAIN still see it, with the arguments it was sent."""
    engine = sessions.kw["bind"].sync_engine
    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement: str, params: object, *_rest: object) -> None:  # noqa: ANN001
        seen.append((statement, params))

    async with sessions() as session:
        volunteer = await _person(session, "老李")
        await session.commit()
    event.listen(engine, "before_cursor_execute", record)
    try:
        async with sessions() as session:  # the summary first: no statement has begun the transaction yet
            summary = await hours_summary(session, person_id=volunteer, year=2026)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert summary.total == 0 and summary.recent == []
    assert len(seen) == 1 and "sums.total" in seen[0][0]
    assert volunteer in (seen[0][1].values() if isinstance(seen[0][1], dict) else seen[0][1])  # type: ignore[union-attr]


async def test_a_connection_lost_under_the_summary_is_invalidated(db_url: str) -> None:
    """A connection that died under the asyncpg call is thrown away, as when SQLAlchemy's own statement finds it
    gone, and the next session gets a working one."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the asyncpg path")
    engine = create_engine(db_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session:
            volunteer = await _person(session, "老赵")
            await session.commit()
        async with sessions() as session:
            conn = await session.connection()
            (await conn.get_raw_connection()).driver_connection.terminate()  # type: ignore[union-attr]
            with pytest.raises(Exception):  # noqa: B017 - asyncpg's own error, whichever it is
                await hours_summary(session, person_id=volunteer, year=2026)
            assert conn.invalidated
        async with sessions() as session:
            assert (await hours_summary(session, person_id=volunteer, year=2026)).total == 0
    finally:
        await engine.dispose()


async def test_records_the_session_holds_unflushed_are_counted(sessions) -> None:
    """The summary is not an ORM query, yet it flushes first as one would (services.rows.session_connection)."""
    async with sessions() as session:
        volunteer = await _person(session, "老孙")
        session.add(_record(volunteer, 2.5, date(2026, 2, 1)))  # no flush
        summary = await hours_summary(session, person_id=volunteer, year=2026)
    assert (summary.total, summary.this_year, len(summary.recent)) == (2.5, 2.5, 1)
