"""Shared set-up for the reminder, outbox and broadcast tests: volunteers written straight to the DB."""

from __future__ import annotations

from datetime import datetime, timedelta

from models import Activity, Identity, Person, Signup, utcnow
from models.db import SessionFactory
from tests.helpers import add_activity, make_coordinator


async def add_volunteers(sessions: SessionFactory, count: int, *, channel: str = "telegram", start_id: int = 1000,
                         activity_id: int | None = None, skills: str = "elderly", area: str = "花家地社区",
                         language: str | None = None, now: datetime | None = None) -> list[int]:
    """Registered volunteers with one identity each (external id = start_id + n), signed up to an activity."""
    now = now or utcnow()
    people = []
    async with sessions() as session:
        for n in range(count):
            person = Person(name=f"志愿者{n}", status="active", skills=skills, area=area, registered_at=now,
                            created_at=now)
            session.add(person)
            await session.flush()
            session.add(Identity(channel=channel, external_id=str(start_id + n), person_id=person.id,
                                 language=language, last_inbound_at=now, created_at=now))
            if activity_id is not None:
                session.add(Signup(activity_id=activity_id, person_id=person.id, status="confirmed",
                                   created_at=now - timedelta(days=3), updated_at=now))
            assert person.id is not None
            people.append(person.id)
        await session.commit()
    return people


async def org_with_activity(sessions: SessionFactory, *, org: str = "花家地社区服务站", coordinator: str = "coord",
                            start: datetime, category: str = "elderly", capacity: int = 50) -> tuple[int, Activity]:
    org_id = await make_coordinator(sessions, channel="console", user=coordinator, org=org)
    activity = await add_activity(sessions, org_id=org_id, start=start, capacity=capacity)
    if category != "elderly":
        async with sessions() as session:
            row = await session.get(Activity, activity.id)
            assert row is not None
            row.category = category
            session.add(row)
            await session.commit()
            activity = row
    return org_id, activity
