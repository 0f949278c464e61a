"""Big-data hours: 我的时长 for one of 1,000,000 volunteers with 20,000,000 hour records (PostgreSQL).

Creates a scratch database (``vb_bench_hours`` or ``--database``, dropped at the end unless ``--keep``),
builds the schema with the migrations, fills it with generate_series (minutes at full size), then asks
我的时长 for random volunteers through the core ``Engine.handle`` on the console channel, and prints p50/p99
and CPU of the whole turn beside 帮助 for other volunteers (the same turn without hours: the baseline) and
the hours statement alone, with its EXPLAIN ANALYZE and, for ``--cold`` volunteers not asked before, the
pages it read from outside shared buffers (what the machine's load does not move). ``--reuse`` measures a
kept database after running the migrations made since it was filled.

    .venv/bin/python bench/bench_hours.py                                  # 1M people, 20M records
    .venv/bin/python bench/bench_hours.py --people 100000 --records 2000000 --database vb_bench_hours_me --keep
    .venv/bin/python bench/bench_hours.py --people 100000 --database vb_bench_hours_me --reuse --keep
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import percentile  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import upgrade_schema  # noqa: E402
from bot.serve import freeze_start_up_objects  # noqa: E402
from handlers.engine import Engine  # noqa: E402
from handlers.messages import Inbound  # noqa: E402
from models.db import create_engine, create_session_factory  # noqa: E402
from services.hours import hours_summary  # noqa: E402

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DATABASE = "vb_bench_hours"
ACTIVITIES = 1000


async def admin(url: str, sql: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")  # CREATE/DROP DATABASE: no transaction
        await conn.execute(sa.text(sql))
    await engine.dispose()


async def _correction_person(conn: AsyncConnection) -> str:
    """", person_id" where hour_correction has the record's person (migration 0019), else "": the same script
    fills and measures the schema before it, for a comparison."""
    found = (await conn.execute(sa.text(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'hour_correction' "
        "AND column_name = 'person_id'"))).scalar_one()
    return ", person_id" if found else ""


async def fill(url: str, people: int, records: int, corrections: int = 0) -> None:
    """Rows straight from generate_series. The hour_record indexes are dropped during the load and made
    again after it (the same definitions), and its foreign-key triggers are off while loading generated
    ids that are known to exist (a scratch database, we are its owner)."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        step = time.perf_counter()
        await conn.execute(sa.text("INSERT INTO organization (id, name, kind) VALUES (1, '基准站', 'station')"))
        await conn.execute(sa.text(
            "INSERT INTO person (id, name, skills, area, status, registered_at, created_at) "
            "SELECT g, 'v' || g, 'elderly', '花家地', 'active', now(), now() FROM generate_series(1, CAST(:n AS integer)) g"),
            {"n": people})
        await conn.execute(sa.text(
            "INSERT INTO identity (channel, external_id, person_id, active, language, created_at) "
            # the code the engine stores (common.lang): anything else costs every first turn an UPDATE
            "SELECT 'console', 'u' || g, g, true, 'zh-Hans', now() FROM generate_series(1, CAST(:n AS integer)) g"), {"n": people})
        await conn.execute(sa.text(
            "INSERT INTO activity (id, title, description, category, place, start_at, end_at, capacity, "
            "organization_id, status, created_at) "
            "SELECT g, '活动' || g, '', 'elderly', '社区', now() - g * interval '1 day', "
            "now() - g * interval '1 day' + interval '3 hours', 50, 1, 'open', now() "
            "FROM generate_series(1, CAST(:n AS integer)) g"), {"n": ACTIVITIES})
        print(f"  people, identities, activities: {time.perf_counter() - step:.1f} s", flush=True)
        indexes = [row[0] for row in await conn.execute(sa.text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'hour_record' AND indexname <> 'hour_record_pkey'"))]
        names = [row[0] for row in await conn.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'hour_record' AND indexname <> 'hour_record_pkey'"))]
        for name in names:
            await conn.execute(sa.text(f'DROP INDEX "{name}"'))
        await conn.execute(sa.text("ALTER TABLE hour_record DISABLE TRIGGER ALL"))
    step = time.perf_counter()
    chunk = 5_000_000  # one transaction per chunk keeps the WAL and memory bounded
    for first in range(1, records + 1, chunk):
        last = min(first + chunk - 1, records)
        async with engine.begin() as conn:
            # person ids interleave, so one person's rows are scattered over the table (the hard case)
            await conn.execute(sa.text(
                "INSERT INTO hour_record (person_id, activity_id, hours, served_on, recorded_by, approved, source, "
                "note, created_at) "
                "SELECT (g % CAST(:people AS integer)) + 1, (g % CAST(:acts AS integer)) + 1, 1 + (g % 8) * 0.5, date '2019-01-01' + (g % 2600), "
                "NULL, (g % 50) <> 0, 'activity', '', now() FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g"),
                {"people": people, "acts": ACTIVITIES, "first": first, "last": last})
        print(f"  hour records {last:,}: {time.perf_counter() - step:.0f} s", flush=True)
    async with engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE hour_record ENABLE TRIGGER ALL"))
        for definition in indexes:
            step = time.perf_counter()
            await conn.execute(sa.text(definition))
            print(f"  {definition.split(' ON ')[0]}: {time.perf_counter() - step:.0f} s", flush=True)
        for table in ("person", "identity", "activity"):
            await conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"(SELECT max(id) FROM {table}))"))
    if corrections:
        async with engine.begin() as conn:
            person = await _correction_person(conn)
            # every ``corrections``-th record has an approved correction in effect (one in ten of them a void)
            await conn.execute(sa.text(
                f"INSERT INTO hour_correction (record_id{person}, organization_id, old_hours, hours, reason, "
                "requested_by, requested_at, status, decided_at, decision_note) "
                f"SELECT id{person}, 1, hours, "
                "CASE WHEN id % (10 * CAST(:every AS integer)) = 0 THEN NULL ELSE hours + 0.5 END, "
                "'bench', person_id, now(), 'approved', now(), '' FROM hour_record WHERE id % CAST(:every AS integer) = 0"),
                {"every": corrections})
        print(f"  corrections (every {corrections}th record): {time.perf_counter() - step:.0f} s", flush=True)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE hour_record"))
        await conn.execute(sa.text("VACUUM ANALYZE hour_correction"))  # index-only probes need its visibility map
        await conn.execute(sa.text("ANALYZE"))
    await engine.dispose()


async def normalize_languages(url: str) -> None:
    """Databases filled before the fill wrote 'zh-Hans' have 'zh-hans': made what the engine stores."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        changed = (await conn.execute(sa.text(
            "UPDATE identity SET language = 'zh-Hans' WHERE language = 'zh-hans'"))).rowcount
    if changed:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM ANALYZE identity"))
        print(f"identity.language 'zh-hans' → 'zh-Hans': {changed:,} rows")
    await engine.dispose()


async def explain(url: str, person_id: int, year: int, people: int, cold: int) -> None:
    """EXPLAIN ANALYZE of the statements ``hours_summary`` runs, with the parameters it sent; then, for
    ``cold`` volunteers not asked yet, the pages each needed from outside shared buffers (a figure the
    machine's load does not move) and PostgreSQL's execution time."""
    engine = create_engine(url)
    statements: list[tuple[str, tuple[object, ...]]] = []

    def capture(conn: object, cursor: object, statement: str, params: tuple[object, ...], context: object,
                executemany: bool) -> None:
        statements.append((statement, tuple(params)))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", capture)
    sessions = create_session_factory(engine)
    async with sessions() as session:
        await hours_summary(session, person_id=person_id, year=year)
    sa.event.remove(engine.sync_engine, "before_cursor_execute", capture)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # asyncpg: the $n statement with the same arguments
        for statement, params in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            plan = await driver.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *params)  # type: ignore[union-attr]
            print("  " + " ".join(statement.split())[:150] + " …")
            print("    " + "\n    ".join(row[0] for row in plan))
        reads: list[int] = []
        hits: list[int] = []
        executions: list[float] = []
        rng = random.Random()  # others than the last run's: theirs may still be in shared buffers
        for who in rng.sample(range(1, people + 1), cold):
            reads.append(0)
            hits.append(0)
            executions.append(0.0)
            for statement, params in statements:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                params = tuple(who if value == person_id else value for value in params)
                plan = await driver.fetch(  # type: ignore[union-attr]
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, *params)
                raw = plan[0][0]  # text, or already decoded where the connection has a json codec
                top = (json.loads(raw) if isinstance(raw, str) else raw)[0]
                reads[-1] += top["Plan"]["Shared Read Blocks"]
                hits[-1] += top["Plan"]["Shared Hit Blocks"]
                executions[-1] += top["Execution Time"]
    if cold:  # --cold 0: no such sample
        print(f"{cold} volunteers not asked before, per summary: pages read from outside shared buffers "
              f"p50 {percentile(reads, 0.5)}, max {max(reads)}; pages hit p50 {percentile(hits, 0.5)}; "
              f"execution p50 {percentile(executions, 0.5):.2f} ms, p99 {percentile(executions, 0.99):.2f} ms "
              f"({len(statements)} statement(s) per summary)")
    await engine.dispose()


async def heavy(url: str, people: int, records: int, rounds: int) -> None:
    """The summary for volunteers with ``records`` records each (the generated ones have records/people): its
    sums read every record (until migration 0019 also probing each one's correction), so it grows with a
    volunteer's history. The last three volunteers get the missing records (served over seven years, like the
    others'), once, and corrections of every 25th of their records where they have none: approved (one in ten a
    void), superseded and, for every 30th, rejected (with ``person_id`` where the schema has it, migration 0019)."""
    engine = create_engine(url)
    heavy_ids = list(range(people - 2, people + 1))
    async with engine.begin() as conn:
        person = await _correction_person(conn)
        for who in heavy_ids:
            have = (await conn.execute(sa.text("SELECT count(*) FROM hour_record WHERE person_id = :p"),
                                       {"p": who})).scalar_one()
            if have < records:
                await conn.execute(sa.text(
                    "INSERT INTO hour_record (person_id, activity_id, hours, served_on, recorded_by, approved, source, "
                    "note, created_at) SELECT :p, (g % CAST(:acts AS integer)) + 1, 1 + (g % 8) * 0.5, "
                    "date '2019-01-01' + (g % 2600), NULL, true, 'activity', '', now() "
                    "FROM generate_series(1, CAST(:n AS integer)) g"), {"p": who, "acts": ACTIVITIES, "n": records - have})
            corrected = (await conn.execute(sa.text(
                "SELECT count(*) FROM hour_correction c JOIN hour_record r ON r.id = c.record_id "
                "WHERE r.person_id = :p"), {"p": who})).scalar_one()
            if not corrected:
                await conn.execute(sa.text(
                    "WITH r AS (SELECT id, person_id, hours, row_number() OVER (ORDER BY id) n FROM hour_record "
                    "WHERE person_id = :p) "
                    f"INSERT INTO hour_correction (record_id{person}, organization_id, old_hours, hours, reason, "
                    "requested_by, requested_at, status, decided_at, decision_note) "
                    f"SELECT id{person}, 1, hours, CASE WHEN n % 250 = 0 THEN NULL ELSE hours + 0.5 END, 'bench heavy', "
                    "person_id, now(), 'approved', now(), '' FROM r WHERE n % 25 = 0 "
                    f"UNION ALL SELECT id{person}, 1, hours, hours + 1, 'bench heavy', person_id, now(), 'superseded', "
                    "now(), '' FROM r WHERE n % 25 = 0 "
                    f"UNION ALL SELECT id{person}, 1, hours, hours + 2, 'bench heavy', person_id, now(), 'rejected', "
                    "now(), '' FROM r WHERE n % 30 = 0"), {"p": who})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("hour_record", "hour_correction"):  # the visibility map: index-only scans for the new rows
            await conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
    sessions = create_session_factory(engine)
    year = datetime.now(UTC).year
    walls: list[float] = []
    async with sessions() as session:
        for n in range(rounds):
            started = time.perf_counter()
            await hours_summary(session, person_id=heavy_ids[n % len(heavy_ids)], year=year)
            walls.append(time.perf_counter() - started)
    print(f"the hours statement for volunteers with {records:,} records (held connection): "
          f"p50 {percentile(walls, 0.5) * 1000:.2f} ms, p99 {percentile(walls, 0.99) * 1000:.2f} ms")
    # the statement as sent, for the first of them: its plan, then PostgreSQL's execution time for each in turn
    statements: list[tuple[str, tuple[object, ...]]] = []

    def capture(conn: object, cursor: object, statement: str, params: tuple[object, ...], context: object,
                executemany: bool) -> None:
        statements.append((statement, tuple(params)))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", capture)
    async with sessions() as session:
        await hours_summary(session, person_id=heavy_ids[0], year=year)
    sa.event.remove(engine.sync_engine, "before_cursor_execute", capture)
    statement, params = next((s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT"))
    executions: list[float] = []
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        plan = await driver.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *params)  # type: ignore[union-attr]
        print(f"EXPLAIN ANALYZE for volunteer {heavy_ids[0]} ({records:,} records):")
        print("    " + "\n    ".join(row[0] for row in plan))
        for n in range(rounds):
            who = heavy_ids[n % len(heavy_ids)]
            raw = (await driver.fetch(  # type: ignore[union-attr]
                "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + statement,
                *(who if value == heavy_ids[0] else value for value in params)))[0][0]
            executions.append((json.loads(raw) if isinstance(raw, str) else raw)[0]["Execution Time"])
    print(f"its execution in PostgreSQL ({rounds} runs): p50 {percentile(executions, 0.5):.2f} ms, "
          f"p99 {percentile(executions, 0.99):.2f} ms")
    await engine.dispose()


async def measure(url: str, people: int, samples: int, seed: int) -> None:
    engine = create_engine(url)
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    sessions = create_session_factory(engine)
    core = Engine(sessions, settings.core_options())
    rng = random.Random(seed)
    year = datetime.now(UTC).year
    # warm-up: connections, imports, plans
    for _ in range(20):
        await core.handle(Inbound(channel="console", user_id=f"u{rng.randint(1, people)}", text="我的时长"))
    # as ``serve`` does once it is set up: start-up's objects out of the collector's way (else a full
    # collection walking them all lands in some turn's p99)
    freeze_start_up_objects()
    turns: list[float] = []
    cpu: list[float] = []
    queries: list[float] = []
    # the statement as a turn sends it: on a connection already checked out and in its transaction
    held: list[float] = []
    held_cpu: list[float] = []
    held_session = sessions()
    await held_session.connection()
    # the baseline beside it: 帮助 (no hours statement) for another volunteer not asked before, in turn with
    # 我的时长, so both see the same load and equally cold identity pages
    helps: list[float] = []
    help_cpu: list[float] = []
    reply = ""

    async def ask(who: int, text: str, n: int, walls: list[float], cpus: list[float]) -> str:
        started, started_cpu = time.perf_counter(), time.process_time()
        replies = await core.handle(Inbound(channel="console", user_id=f"u{who}", text=text,
                                            message_id=f"bench-{seed}-{text}-{n}"))
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - started_cpu)
        return str(replies[0].text) if replies else ""

    for n in range(samples):
        who, other = rng.randint(1, people), rng.randint(1, people)
        if n % 2:
            await ask(other, "帮助", n, helps, help_cpu)
        reply = await ask(who, "我的时长", n, turns, cpu)
        if not n % 2:
            await ask(other, "帮助", n, helps, help_cpu)
        started = time.perf_counter()
        async with sessions() as session:
            await hours_summary(session, person_id=who, year=year)
        queries.append(time.perf_counter() - started)
        started, started_cpu = time.perf_counter(), time.process_time()
        await hours_summary(held_session, person_id=rng.randint(1, people), year=year)
        held.append(time.perf_counter() - started)
        held_cpu.append(time.process_time() - started_cpu)
    held_conn = await held_session.connection()
    plans = (await held_conn.execute(sa.text(  # after 5 custom plans PostgreSQL may keep a generic one
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%sums.total%'"))).all()
    jit = (await held_conn.execute(sa.text("SHOW jit"))).scalar_one()
    await held_session.close()

    def figures(walls: list[float], cpus: list[float]) -> str:
        return (f"p50 {percentile(walls, 0.5) * 1000:.2f} ms, p99 {percentile(walls, 0.99) * 1000:.2f} ms, "
                f"CPU {sum(cpus) / len(cpus) * 1000:.2f} ms/turn")

    print(f"我的时长 through Engine.handle (console), {samples} random volunteers: {figures(turns, cpu)}")
    print(f"帮助 through Engine.handle (the baseline: a turn without hours):  {figures(helps, help_cpu)}")
    print(f"the hours queries alone (hours_summary, own session):          "
          f"p50 {percentile(queries, 0.5) * 1000:.2f} ms, p99 {percentile(queries, 0.99) * 1000:.2f} ms")
    print(f"the hours statement on a held connection (as in a turn):       {figures(held, held_cpu)}")
    print(f"我的时长 minus 帮助: p50 {(percentile(turns, 0.5) - percentile(helps, 0.5)) * 1000:.2f} ms, "
          f"CPU {(sum(cpu) / len(cpu) - sum(help_cpu) / len(help_cpu)) * 1000:.2f} ms/turn")
    print(f"prepared summary statement(s) on the held connection (generic plans, custom plans): {plans}; jit {jit}")
    print("a reply: " + reply.replace("\n", " / ")[:200])
    await engine.dispose()


async def prewarm(url: str) -> None:
    """The hours tables and indexes read once into the OS page cache (pg_prewarm's 'read' mode): an index
    built after the bulk load is on disk only, and a random volunteer's first summary then waits for the
    disk (p99 10–16 ms here), which says how warm the machine is, not what the statement costs."""
    engine = create_engine(url)
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        tables = ("hour_record", "hour_correction", "person", "activity")
        indexes = (await conn.execute(sa.text(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid::regclass::text = ANY(:tables)"),
            {"tables": list(tables)})).scalars().all()
        pages = 0
        for relation in (*tables, *indexes):
            pages += (await conn.execute(sa.text("SELECT pg_prewarm(CAST(:r AS regclass), 'read')"),
                                         {"r": relation})).scalar_one()
    await engine.dispose()
    print(f"prewarmed {pages:,} pages into the OS page cache in {time.perf_counter() - started:.1f} s")


async def main(args: argparse.Namespace) -> None:
    database = args.database
    url = make_url(args.postgres_url).set(database=database).render_as_string(hide_password=False)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.reuse:
        await admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin(args.postgres_url, f'CREATE DATABASE "{database}"')
    # a kept database gets the migrations made since it was filled (their backfills included)
    engine = create_engine(url)
    started = time.perf_counter()
    await upgrade_schema(engine)
    await engine.dispose()
    if args.reuse:
        print(f"migrations brought up to date in {time.perf_counter() - started:.1f} s")
        await normalize_languages(url)
    else:
        started = time.perf_counter()
        print(f"filling {args.people:,} volunteers and {args.records:,} hour records …", flush=True)
        await fill(url, args.people, args.records, args.corrections)
        print(f"filled in {time.perf_counter() - started:.0f} s")
    try:
        if args.prewarm:
            await prewarm(url)
        print(f"EXPLAIN ANALYZE of the hours queries (volunteer {args.people // 2}):")
        await explain(url, args.people // 2, datetime.now(UTC).year, args.people, args.cold)
        await measure(url, args.people, args.samples, seed=int(time.time()))
        if args.heavy:
            await heavy(url, args.people, args.heavy, rounds=300)
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if not args.keep:
            await admin(args.postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=20_000_000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--postgres-url", default=DEFAULT_PG, help="an existing database to connect to as admin")
    parser.add_argument("--corrections", type=int, default=100,
                        help="every Nth record gets an approved correction (0: none)")
    parser.add_argument("--cold", type=int, default=200,
                        help="volunteers whose hours statements are explained for their pages read")
    parser.add_argument("--heavy", type=int, default=0,
                        help="also time the summary for three volunteers given this many records each (0: no)")
    parser.add_argument("--database", default=DATABASE, help="the scratch database's name (dropped unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the database (for --reuse)")
    parser.add_argument("--prewarm", action="store_true",
                        help="read the hours tables and indexes into the OS page cache first (pg_prewarm 'read')")
    parser.add_argument("--reuse", action="store_true", help="measure a database kept by an earlier --keep run")
    asyncio.run(main(parser.parse_args()))
