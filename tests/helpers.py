"""Conversation helpers shared by the tests (drive a channel like a person would)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.channels.console import ConsoleChannel
from handlers.validation import make_id_number
from models import Activity, ActivityBase, Delivery, Identity, Person
from models.db import SessionFactory
from services.activities import create_activity
from services.notify import notice_text
from services.people import get_or_create_identity, get_or_create_organization, grant_role
from tests.conversation import Conversation, as_conversation, joined

ORG_QUESTION = "请选择你所属的志愿服务组织"


def adult_id(serial: int = 123, birth: str = "19900307") -> str:
    return make_id_number(f"110101{birth}{serial:03d}")


async def register(conv: Conversation | ConsoleChannel, name: str, *, serial: int = 123,
                   birth: str = "19900307", phone: str = "13800138000", skills: str = "1,3",
                   area: str = "花家地社区", start: str = "注册", org: str | None = None) -> str:
    """Walk the whole registration dialog on any channel and return the last reply's texts.

    ``conv`` is a ``Conversation`` (tests/conversation.py) or a console channel; each step's replies
    stay in ``conv.history`` for tests that check them. The last step types "1" (确认提交), as a
    user of a text channel would; Telegram maps a typed number to the choice the same way.
    When organizations exist and the area names none of them, the organization is asked: ``org``
    (a name typed) answers it, else it is skipped.
    """
    conv = as_conversation(conv)
    for answer in (start, name, adult_id(serial, birth), phone, skills, area):
        replies = await conv.send(answer)
    if ORG_QUESTION in joined(replies):
        replies = await conv.send(org or "跳过")
    replies = await conv.send("1")
    return joined(replies)


async def make_coordinator(sessions: SessionFactory, *, channel: str, user: str, org: str) -> int:
    async with sessions() as session:
        organization = await get_or_create_organization(session, name=org)
        _, person = await get_or_create_identity(session, channel=channel, external_id=user,
                                                 now=datetime.now().astimezone())
        await grant_role(session, person_id=person.id, role="coordinator", organization_id=organization.id)
        await session.commit()
        assert organization.id is not None
        return organization.id


async def add_activity(sessions: SessionFactory, *, org_id: int, start: datetime, hours: float = 3,
                       capacity: int = 10, title: str = "社区敬老院探访", lat: float | None = None,
                       lon: float | None = None) -> Activity:
    async with sessions() as session:
        activity = await create_activity(
            session,
            data=ActivityBase(title=title, description="陪老人聊天、读报", category="elderly", place="幸福敬老院",
                              latitude=lat, longitude=lon, start_at=start, end_at=start + timedelta(hours=hours),
                              capacity=capacity, organization_id=org_id),
            created_by=None, now=start - timedelta(days=5),
        )
        await session.commit()
        return activity


async def person_of(sessions: SessionFactory, channel: str, user: str) -> Person:
    from sqlmodel import select

    async with sessions() as session:
        identity = (await session.exec(
            select(Identity).where(Identity.channel == channel, Identity.external_id == user))).one()
        person = await session.get(Person, identity.person_id)
        assert person is not None
        return person


def shown(row: Delivery, lang: str = "zh-Hans") -> str:
    """An outbox row's text as its recipient reads it (notices are stored as message ids)."""
    return notice_text(row, lang)


class CountingFactory:
    """The engine's session factory, counting the sessions its turns open (a turn opens one only when a
    feature needs the ORM: tests/test_engine_turn.py, tests/test_turn_reads.py)."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self.opened = 0

    def __call__(self, **kw: Any) -> Any:
        self.opened += 1
        return self.sessions(**kw)
