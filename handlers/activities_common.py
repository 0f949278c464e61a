"""What the activity handlers share: the router, category names, who may manage, list lines."""

from __future__ import annotations

from collections.abc import Callable

from common.i18n import Text, _, join
from common.taxonomy import category_label
from handlers.menu import help_
from handlers.messages import Choice
from handlers.payloads import EXPIRED, Payload
from handlers.permissions import ORG_DENIED
from handlers.turn import FeatureRouter, Turn
from models import Activity, Organization
from services.activities import ActivityLine
from services.activity_changes import managed_activities
from services.people import PermissionDenied, managed_organizations, require_manager

router = FeatureRouter("activities")


def category_name(turn: Turn, code: str) -> str:
    """An activity category in the reader's language (category names are data: common/taxonomy)."""
    return category_label(code, turn.lang)


async def managed(turn: Turn) -> list[Organization]:
    return await managed_organizations(turn.session, person_id=turn.person.id, admin=await turn.admin())


async def can_manage(turn: Turn, organization_id: int) -> bool:
    # the turn's roles answer most cases without the session: an admin, a coordinator of this very
    # organization, and anyone coordinating nothing (a volunteer's details page then opens no session)
    if await turn.admin() or organization_id in (roles := await turn.roles()).coordinates:
        return True
    if not roles.coordinates:
        return False
    try:  # a coordinator of another organization: maybe one above this one
        await require_manager(turn.session, person_id=turn.person.id, admin=False, organization_id=organization_id)
    except PermissionDenied:
        return False
    return True


def deny(turn: Turn) -> None:
    turn.say(ORG_DENIED)


async def expired(turn: Turn) -> None:
    """An argument this version did not make (an old or forged button): as the engine answers it."""
    turn.say(EXPIRED)
    await help_(turn, "")


async def load(turn: Turn, activity_id: int) -> Activity | None:
    activity = await turn.session.get(Activity, activity_id)
    if activity is None:
        turn.say(_("找不到这个活动。"))
    return activity


async def managed_activity(turn: Turn, activity_id: int) -> Activity | None:
    """The activity, when it exists and this person manages its organization; otherwise says why not."""
    activity = await load(turn, activity_id)
    if activity is not None and not await can_manage(turn, activity.organization_id):
        deny(turn)
        return None
    return activity


def line(turn: Turn, index: int, activity: Activity | ActivityLine) -> str:
    return f"{index}. {activity.title}\n   {turn.fmt_span(activity.start_at, activity.end_at)} · {activity.place}"


async def choose_activity(turn: Turn, button: Callable[[int], Payload], prompt: Text, *,
                          include_recent: bool = False) -> None:
    """A command typed without its number: the activities this person manages, one button each."""
    organization_ids = [o.id for o in await managed(turn) if o.id is not None]
    rows = await managed_activities(turn.session, organization_ids=organization_ids, now=turn.now,
                                    limit=10, include_recent=include_recent)
    if not rows:
        turn.say(_("你管理的组织目前没有进行中的活动。"))
        return
    items: list[Text] = [prompt, *(line(turn, i, a) for i, a in enumerate(rows, 1))]
    turn.say(join(items), [Choice(label=a.title[:30], value=button(a.id).pack()) for a in rows if a.id is not None])
