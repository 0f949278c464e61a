"""我的时长's sums since migration 0019: the person's records as recorded plus what their approved corrections
change (found by the record's person on the correction), with the same figures as counting each record's
correction in effect: approved, voided, rejected, superseded and pending corrections, across years."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.runtime import alembic_config
from models import HourRecord, Person
from models.corrections import HourCorrection
from models.db import create_engine
from services.corrections import correct_directly, decide_correction, request_correction
from services.hours import COUNTED_HOURS, hours_in_period, hours_summary

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


async def _person(session, name: str) -> int:  # noqa: ANN001
    person = Person(name=name, status="active")
    session.add(person)
    await session.flush()
    assert person.id is not None
    return person.id


async def _record(session, person_id: int, hours: float, served_on: date, **fields: object) -> int:  # noqa: ANN001
    record = HourRecord(person_id=person_id, hours=hours, served_on=served_on, created_at=NOW, **fields)
    session.add(record)
    await session.flush()
    assert record.id is not None
    return record.id


async def _counted_per_record(session, person_id: int, year: int | None = None) -> float:  # noqa: ANN001
    """The figure as it was counted before 0019: each approved record's correction in effect, probed per record."""
    query = select(sa.func.coalesce(sa.func.sum(COUNTED_HOURS), 0)).where(
        HourRecord.person_id == person_id, HourRecord.approved == True)  # noqa: E712
    if year is not None:
        query = query.where(HourRecord.served_on >= date(year, 1, 1), HourRecord.served_on <= date(year, 12, 31))
    return round(float((await session.exec(query)).one()), 2)


async def test_requested_decided_and_direct_corrections_count_for_the_records_person(sessions) -> None:
    """Corrections through the services, some made by a coordinator (requested_by is not the volunteer): each
    carries the record's person, and the volunteer's figures count exactly the corrections in effect."""
    async with sessions() as session:
        volunteer = await _person(session, "王小丽")
        coordinator = await _person(session, "李协调")
        asked = await _record(session, volunteer, 3, date(2026, 2, 1))  # asked 3 → 2, approved
        twice = await _record(session, volunteer, 4, date(2025, 5, 1))  # corrected 4 → 1, then → 2.5 (superseded)
        voided = await _record(session, volunteer, 5, date(2026, 1, 15))  # voided by the coordinator
        refused = await _record(session, volunteer, 2, date(2024, 3, 1))  # asked 2 → 1, rejected
        waiting = await _record(session, volunteer, 1.5, date(2026, 2, 10))  # asked to void, still pending
        await _record(session, volunteer, 2, date(2025, 12, 31))  # never corrected
        await _record(session, volunteer, 3, date(2026, 2, 20), approved=False, source="visit")  # self-report waits
        await _record(session, volunteer, 6, date(2026, 2, 21), approved=False, source="visit",
                      reviewed_at=NOW)  # a rejected self-report
        await _record(session, coordinator, 1, date(2026, 1, 1))

        first = await request_correction(session, record_id=asked, person_id=volunteer, hours=2, reason="提前离开",
                                         now=NOW)
        await decide_correction(session, correction_id=first.id, decider_id=coordinator, admin=True, approve=True,  # type: ignore[arg-type]
                                note="", now=NOW)
        for hours in (1, 2.5):
            await correct_directly(session, record_id=twice, coordinator_id=coordinator, admin=True, hours=hours,
                                   reason="核对签到表", now=NOW)
        await correct_directly(session, record_id=voided, coordinator_id=coordinator, admin=True, hours=None,
                               reason="重复记录", now=NOW)
        no = await request_correction(session, record_id=refused, person_id=volunteer, hours=1, reason="记错了",
                                      now=NOW)
        await decide_correction(session, correction_id=no.id, decider_id=coordinator, admin=True, approve=False,  # type: ignore[arg-type]
                                note="签到表为 2 小时", now=NOW)
        await request_correction(session, record_id=waiting, person_id=volunteer, hours=None, reason="没去",
                                 now=NOW)
        await session.commit()

    async with sessions() as session:
        corrections = list(await session.exec(select(HourCorrection).order_by(HourCorrection.id)))
        assert [c.status for c in corrections] == ["approved", "superseded", "approved", "approved", "rejected",
                                                   "pending"]
        assert {c.person_id for c in corrections} == {volunteer}  # also those the coordinator asked for
        assert {c.requested_by for c in corrections} == {volunteer, coordinator}

        summary = await hours_summary(session, person_id=volunteer, year=2026)
        # 2 (corrected) + 2.5 (the later correction) + 0 (voided) + 2 (rejected: as recorded)
        # + 1.5 (pending: as recorded) + 2 (never corrected)
        assert (summary.total, summary.this_year, summary.pending) == (10, 3.5, 3)
        assert [(r.served_on, r.hours) for r in summary.recent] == [
            (date(2026, 2, 10), 1.5), (date(2026, 2, 1), 2), (date(2025, 12, 31), 2), (date(2025, 5, 1), 2.5),
            (date(2024, 3, 1), 2)]  # the voided record is left out
        assert (await hours_summary(session, person_id=volunteer, year=2025)).this_year == 4.5
        assert (await hours_summary(session, person_id=volunteer, year=2024)).this_year == 2
        # the coordinator's own figures do not move with the corrections they made
        assert (await hours_summary(session, person_id=coordinator, year=2026)).total == 1
        for year in (2024, 2025, 2026):
            assert (await hours_summary(session, person_id=volunteer, year=year)).this_year == \
                await _counted_per_record(session, volunteer, year)
            assert await hours_in_period(session, person_id=volunteer, first=date(year, 1, 1),
                                         last=date(year, 12, 31)) == await _counted_per_record(session, volunteer, year)


async def test_the_sums_equal_counting_each_records_correction(sessions) -> None:
    """Many records of three people over three years, with chains of corrections in every state (some on records
    not counted, which services refuse but the sums must ignore anyway): the figures of the two shapes agree."""
    rng = random.Random(19)
    async with sessions() as session:
        people = [await _person(session, f"志愿者{n}") for n in range(3)]
        for n in range(150):
            person = people[n % 3]
            approved = rng.random() > 0.15
            record = await _record(session, person, rng.choice((0.5, 1, 1.33, 2, 2.75, 3, 8)),
                                   date(rng.choice((2024, 2025, 2026)), rng.randint(1, 12), rng.randint(1, 28)),
                                   approved=approved, reviewed_at=None if approved or rng.random() < 0.5 else NOW)
            # at most one approved correction in effect; any number superseded, rejected or pending
            statuses = rng.choice(([], ["approved"], ["superseded", "approved"], ["rejected"], ["pending"],
                                   ["superseded", "superseded", "approved", "pending"], ["superseded"]))
            for status in statuses:
                hours = None if rng.random() < 0.25 else rng.choice((0.5, 1.5, 2.25, 4.67))
                # half of them without the person: the model takes it from the record
                session.add(HourCorrection(record_id=record, person_id=person if rng.random() < 0.5 else None,  # type: ignore[arg-type]
                                           old_hours=0, hours=hours, reason="更正", requested_by=people[0],
                                           status=status))
        await session.flush()
        for person in people:
            for year in (2024, 2025, 2026):
                summary = await hours_summary(session, person_id=person, year=year)
                assert summary.total == await _counted_per_record(session, person)
                assert summary.this_year == await _counted_per_record(session, person, year)
                assert await hours_in_period(session, person_id=person, first=date(year, 1, 1),
                                             last=date(year, 12, 31)) == summary.this_year
        assert (await session.exec(select(sa.func.count()).select_from(HourCorrection))).one() > 100


async def test_a_correction_made_without_its_person_takes_the_records(sessions) -> None:
    async with sessions() as session:
        volunteer = await _person(session, "老王")
        other = await _person(session, "别人")
        record = await _record(session, volunteer, 3, date(2026, 2, 1))
        session.add(HourCorrection(record_id=record, old_hours=3, hours=1, reason="更正", requested_by=other,
                                   status="approved"))
        await session.commit()
    async with sessions() as session:
        correction = (await session.exec(select(HourCorrection))).one()
        assert correction.person_id == volunteer
        assert (await hours_summary(session, person_id=volunteer, year=2026)).total == 1
        assert (await hours_summary(session, person_id=other, year=2026)).total == 0


# ---- migration 0019 ------------------------------------------------------------------------------------------
async def _scratch_database(db_url: str, tmp_path) -> tuple[str, str | None]:  # noqa: ANN001
    """An empty database of the same kind as ``db_url``: (its URL, the PostgreSQL name to drop after)."""
    if db_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}", None
    name = f"vb_test_m19_{uuid.uuid4().hex[:8]}"
    await _admin(db_url, f'CREATE DATABASE "{name}"')
    return make_url(db_url).set(database=name).render_as_string(hide_password=False), name


async def _admin(db_url: str, sql: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(sql))
    finally:
        await engine.dispose()


async def _migrate(url: str, direction: str, revision: str) -> None:
    from alembic import command

    def run(connection: sa.Connection) -> None:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        getattr(command, direction)(cfg, revision)

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def test_the_migration_backfills_the_records_person_and_reverts(db_url: str, tmp_path) -> None:  # noqa: ANN001
    url, name = await _scratch_database(db_url, tmp_path)
    try:
        await _migrate(url, "upgrade", "0018")
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                for person in (1, 2):
                    await conn.execute(sa.text("INSERT INTO person (id, name, skills, area, status, created_at) "
                                               "VALUES (:id, 'p', '', '', 'active', :now)"), {"id": person, "now": NOW})
                for record, person, hours in ((1, 1, 3.0), (2, 1, 2.0), (3, 2, 4.0)):
                    await conn.execute(sa.text(
                        "INSERT INTO hour_record (id, person_id, hours, served_on, approved, source, note, created_at) "
                        "VALUES (:id, :person, :hours, :day, true, 'activity', '', :now)"),
                        {"id": record, "person": person, "hours": hours, "day": date(2026, 2, record), "now": NOW})
                # person 2 (a coordinator) corrected person 1's record; person 1 asked about their own
                for record, by, hours, status in ((1, 2, 1.0, "approved"), (2, 1, None, "approved"),
                                                  (3, 2, 5.0, "rejected"), (1, 1, 9.0, "superseded")):
                    await conn.execute(sa.text(
                        "INSERT INTO hour_correction (record_id, old_hours, hours, reason, requested_by, requested_at, "
                        "status, decision_note) VALUES (:record, 0, :hours, 'r', :by, :now, :status, '')"),
                        {"record": record, "hours": hours, "by": by, "now": NOW, "status": status})
            await _migrate(url, "upgrade", "0019")
            async with engine.connect() as conn:
                rows = (await conn.execute(sa.text(
                    "SELECT record_id, person_id, requested_by FROM hour_correction ORDER BY id"))).all()
                assert [tuple(row) for row in rows] == [(1, 1, 2), (2, 1, 1), (3, 2, 2), (1, 1, 1)]
            from models.db import create_session_factory

            async with create_session_factory(engine)() as session:
                summary = await hours_summary(session, person_id=1, year=2026)
                assert (summary.total, summary.this_year) == (1, 1)  # 3 → 1, 2 voided
                assert (await hours_summary(session, person_id=2, year=2026)).total == 4  # rejected: as recorded
            await _migrate(url, "downgrade", "0018")
            async with engine.connect() as conn:
                columns = await conn.run_sync(lambda c: [col["name"] for col in sa.inspect(c).get_columns(
                    "hour_correction")])
                indexes = await conn.run_sync(lambda c: [ix["name"] for ix in sa.inspect(c).get_indexes(
                    "hour_correction")])
                assert (await conn.execute(sa.text("SELECT count(*) FROM hour_correction"))).scalar_one() == 4
            assert "person_id" not in columns and "ix_hour_correction_person_approved" not in indexes
            await _migrate(url, "upgrade", "heads")
        finally:
            await engine.dispose()
    finally:
        if name is not None:
            await _admin(db_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_the_sums_probe_no_correction_per_record(db_url: str, sessions) -> None:  # noqa: ANN001
    """PostgreSQL's plan of the summary for a volunteer with many records: hour_correction is read once for the
    sums (the person's corrections in effect) and a few times for the newest records, not once per record."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's plan")
    async with sessions() as session:
        volunteer = await _person(session, "老志愿者")
        for n in range(300):
            record = await _record(session, volunteer, 2, date(2020 + n % 7, 1 + n % 12, 1 + n % 28))
            if n % 50 == 0:
                session.add(HourCorrection(record_id=record, person_id=volunteer, old_hours=2, hours=1,
                                           reason="更正", requested_by=volunteer, status="approved"))
        await session.commit()
    engine = sessions.kw["bind"].sync_engine
    seen: list[tuple[str, tuple]] = []

    def record(_conn, _cursor, statement: str, params: tuple, *_rest: object) -> None:  # noqa: ANN001
        seen.append((statement, tuple(params)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        async with sessions() as session:
            summary = await hours_summary(session, person_id=volunteer, year=2026)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    statement, params = next((s, p) for s, p in seen if "sums.total" in s)
    async with sessions() as session:
        await session.exec(sa.text("ANALYZE hour_record"))  # type: ignore[call-overload]
        await session.exec(sa.text("ANALYZE hour_correction"))  # type: ignore[call-overload]
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
        plan = (await driver.fetch("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, *params))[0][0]  # type: ignore[union-attr]

    def loops(node: dict) -> list[int]:
        own = [node["Actual Loops"]] if node.get("Relation Name") == "hour_correction" else []
        return own + [n for child in node.get("Plans", []) for n in loops(child)]

    assert summary.total == 300 * 2 - 6
    probes = loops((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    assert probes and max(probes) <= 5, probes


async def test_the_prepared_summary_keeps_its_generic_plan(db_url: str, sessions) -> None:  # noqa: ANN001
    """A community whose few corrected volunteers are all in PostgreSQL's statistics: the summary of the others,
    prepared on the connection, still settles on a generic plan instead of being planned anew each time."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's plan cache")
    async with sessions() as session:
        # as bench/bench_hours.py makes them, small: 400 volunteers with 20 records each, every record of every
        # 20th volunteer corrected (generated in SQL: thousands of rows)
        await session.exec(sa.text(  # type: ignore[call-overload]
            "INSERT INTO person (id, name, skills, status, created_at) "
            "SELECT g, 'v' || g, '', 'active', now() FROM generate_series(1, 400) g"))
        await session.exec(sa.text(  # type: ignore[call-overload]
            "INSERT INTO hour_record (person_id, hours, served_on, approved, source, note, created_at) "
            "SELECT g % 400 + 1, 2, date '2024-01-01' + g % 700, true, 'activity', '', now() "
            "FROM generate_series(1, 8000) g"))
        await session.exec(sa.text(  # type: ignore[call-overload]
            "INSERT INTO hour_correction (record_id, person_id, old_hours, hours, reason, requested_by, requested_at, "
            "status, decision_note) SELECT id, person_id, 2, 1, '更正', person_id, now(), 'approved', '' "
            "FROM hour_record WHERE person_id % 20 = 1"))
        await session.commit()
    corrected, others = [1, 21], [n for n in range(2, 400) if n % 20 != 1]
    async with sessions() as session:
        await session.exec(sa.text("ANALYZE hour_record"))  # type: ignore[call-overload]
        await session.exec(sa.text("ANALYZE hour_correction"))  # type: ignore[call-overload]
        await session.commit()
    async with sessions() as session:
        for person in others[:12]:
            assert (await hours_summary(session, person_id=person, year=2026)).total == 40
        assert (await hours_summary(session, person_id=corrected[0], year=2026)).total == 20
        plans = (await session.exec(sa.text(  # type: ignore[call-overload]
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%sums.total%' "
            "AND statement NOT LIKE '%pg_prepared_statements%'"))).all()
    assert plans and plans[0][0] > 0, plans
