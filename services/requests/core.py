"""What every part of the request lifecycle shares: the station rule, who may see and do what, notices.

See ``services/requests/__init__.py`` for the rules.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.i18n import SOURCE_LANGUAGE, ByLanguage, Msg, Text, _, render
from common.pinyin import pinyin_matches
from common.resources import load_json
from common.taxonomy import CATEGORY_LABELS
from models import Organization, Role
from models.requests import ACTIVE_ASSIGNMENT_STATUSES, ServiceRequest
from services.notify import notify_person
from services.orgs import best_match, managed_org_ids

OFFER_BATCH = 3
MAX_OPEN_ASSIGNMENTS = 2  # K: a volunteer with this many open assignments gets no new offers
MAX_SERVICE_HOURS = 24.0

Choices = list[tuple[Text, str]]


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = load_json("requests.json")
    return data


@cache
def pattern(name: str, flags: int = 0) -> re.Pattern[str]:
    """A pattern of ``common/data/requests.json`` (CJK words are data, not code)."""
    return re.compile(_data()["patterns"][name], flags)


class RequestError(Exception):
    """A lifecycle rule was broken; ``reason`` is a stable code the dialog explains."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def category_text(code: str) -> ByLanguage:
    """A category's name in every language (the taxonomy is data)."""
    return ByLanguage(dict(CATEGORY_LABELS.get(code, CATEGORY_LABELS["other"])))


def rating_text(rating: int) -> ByLanguage:
    """1–5 stars: ★★★ in Chinese, 3/5 in English."""
    stars = "★" * rating
    return ByLanguage({"zh-Hans": stars, "zh-Hant": stars, "en": f"{rating}/5"})


def stored_text(text: Text) -> str:
    """A text kept in a database column that is not translated later (an hour record's note): 简体."""
    return render(text, SOURCE_LANGUAGE)


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", text or "")


def same_area(a: str | None, b: str | None) -> bool:
    """'花家地社区' and '朝阳区花家地社区' are the same area, and so is 'Huajiadi'; short fragments never match."""
    left, right = _fold(a or ""), _fold(b or "")
    if len(left) < 2 or len(right) < 2:
        return False
    # "Huajiadi" (typed in pinyin or English) is 花家地社区 too
    return left in right or right in left or pinyin_matches(left, right) or pinyin_matches(right, left)


async def station_for(session: AsyncSession, *, community: str, area: str | None) -> Organization | None:
    """The organization whose name matches the community, else the resident's area (see package doc)."""
    organizations = list(await session.exec(select(Organization).order_by(Organization.id)))
    for place in (community, area):
        # the longest matching name wins: 「花家地社区站」 over a street-level 「花家地站」
        found = best_match(organizations, place) if place else None
        if found is not None:
            return found
    return None


# ---- who may see and do what ----------------------------------------------------------------------
async def station_coordinators(session: AsyncSession, *, organization_id: int | None) -> list[int]:
    """People who review a request: the station's coordinators; when it has none, those of the nearest
    organization above it that has some (a center manages its stations); the admins when nobody does."""
    ids: list[int] = []
    seen: set[int] = set()
    while organization_id is not None and organization_id not in seen and not ids:
        seen.add(organization_id)
        rows = await session.exec(
            select(Role.person_id).where(Role.role == "coordinator", Role.organization_id == organization_id)
        )
        ids = sorted(set(rows))
        org = await session.get(Organization, organization_id) if not ids else None
        organization_id = org.parent_id if org is not None else None
    if not ids:
        ids = sorted(set(await session.exec(select(Role.person_id).where(Role.role == "admin"))))
    return ids


async def can_manage(session: AsyncSession, *, request: ServiceRequest, person_id: int, admin: bool) -> bool:
    """An admin, or a coordinator of the request's station or of an organization above it."""
    if admin:
        return True
    if request.organization_id is None:
        return False
    return request.organization_id in await managed_org_ids(session, person_id=person_id)


async def can_see_details(session: AsyncSession, *, request: ServiceRequest, person_id: int, admin: bool) -> bool:
    """Name, address and phone: the resident, the assignee, the station's coordinators and admins."""
    if person_id in (request.resident_id, request.assignee_id):
        return True
    return await can_manage(session, request=request, person_id=person_id, admin=admin)


async def get_request(session: AsyncSession, *, request_id: int) -> ServiceRequest:
    request = await session.get(ServiceRequest, request_id)
    if request is None:
        raise RequestError("not_found")
    return request


def summary(request: ServiceRequest) -> Msg:
    """What anybody may see: category, community, time (and the number)."""
    return _("#{id} {category}｜{community}｜{when}", id=request.id, category=category_text(request.category),
             community=request.community, when=request.preferred_time or _("时间可商量"))


# ---- notices ---------------------------------------------------------------------------------------
async def notify_many(session: AsyncSession, person_ids: list[int], *, now: datetime, message: Text,
                      choices: Choices | None = None, urgent: bool = False, source: str = "request") -> None:
    for person_id in person_ids:
        await notify_person(session, person_id=person_id, message=message, now=now, source=source,
                            choices=choices, urgent=urgent)


async def notify_station(session: AsyncSession, *, request: ServiceRequest, message: Text, now: datetime,
                         urgent: bool = False, choices: Choices | None = None) -> None:
    """Tell the people who review this request (the station's coordinators, or the admins)."""
    await notify_many(session, await station_coordinators(session, organization_id=request.organization_id),
                      message=message, now=now, urgent=urgent, choices=choices)


async def notify_resident(session: AsyncSession, request: ServiceRequest, *, message: Text, now: datetime,
                          choices: Choices | None = None) -> None:
    await notify_person(session, person_id=request.resident_id, message=message, now=now, source="request",
                        choices=choices)


async def transition(session: AsyncSession, request: ServiceRequest, *, allowed: tuple[str, ...],
                     values: dict[str, object]) -> None:
    """Conditional UPDATE: the change happens only if nobody else moved the request meanwhile."""
    result = await session.exec(  # type: ignore[call-overload]
        update(ServiceRequest)
        .where(col(ServiceRequest.id) == request.id, col(ServiceRequest.status).in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        await session.refresh(request)
        raise RequestError("status_changed")
    await session.refresh(request)


# ---- lists ----------------------------------------------------------------------------------------
async def requests_of_resident(session: AsyncSession, *, resident_id: int, limit: int = 10) -> list[ServiceRequest]:
    rows = await session.exec(
        select(ServiceRequest).where(ServiceRequest.resident_id == resident_id)
        .order_by(col(ServiceRequest.created_at).desc(), col(ServiceRequest.id).desc()).limit(limit)
    )
    return list(rows)


async def tasks_of_volunteer(session: AsyncSession, *, volunteer_id: int) -> list[ServiceRequest]:
    rows = await session.exec(
        select(ServiceRequest).where(ServiceRequest.assignee_id == volunteer_id,
                                     col(ServiceRequest.status).in_(ACTIVE_ASSIGNMENT_STATUSES + ("done",)))
        .order_by(col(ServiceRequest.assigned_at), col(ServiceRequest.id))
    )
    return list(rows)


async def review_queue(session: AsyncSession, *, organization_ids: list[int] | None) -> list[ServiceRequest]:
    """Requests waiting for a coordinator: to review, unaccepted, or done but unconfirmed.

    ``organization_ids=None`` means every station (an admin), including requests without one.
    """
    query = select(ServiceRequest).where(
        col(ServiceRequest.status).in_(("pending_review", "approved"))
        | ((ServiceRequest.status == "done") & col(ServiceRequest.confirmed_at).is_(None))
    )
    if organization_ids is not None:
        query = query.where(col(ServiceRequest.organization_id).in_(organization_ids))
    rows = await session.exec(query.order_by(col(ServiceRequest.created_at), col(ServiceRequest.id)).limit(20))
    return list(rows)
