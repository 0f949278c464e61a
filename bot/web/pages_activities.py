"""/admin/activities: list and filter, create (the chat's checks), roster, and hours for the roster in one form.

Editing, cancelling, no-shows, the roster's downloads and the check-in poster: pages_activity_changes.py.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from aiohttp import web

from bot.web.core import Ctx, Paging, manages, page, paging, sort_param
from common.i18n import Text, _
from common.taxonomy import CATEGORIES, category_label
from handlers.activities_publish import FLOW as PUBLISH_FLOW
from handlers.activities_publish import MAX_DAYS, parse_capacity, parse_description, parse_place, parse_title
from handlers.hours import recording_refusal
from handlers.permissions import ORG_DENIED
from handlers.validation import InvalidInput, parse_hours
from models import Activity, ActivityBase
from services.activities import ActivityError, create_activity, roster
from services.hours import HoursError, activity_length_hours, record_hours_for
from services.people import PermissionDenied, require_manager
from services.web_reads import activities_page, roster_hours

WHEN = ("upcoming", "past", "all")
# the chat's errors ask to "reply with a number" for these: a form says it its own way
WEB_ERRORS: dict[str, Text] = {"org": ORG_DENIED, "category": _("请选择一个类别。")}


@page
async def activity_list(ctx: Ctx) -> web.StreamResponse:
    when = ctx.request.query.get("when", "upcoming")
    when = when if when in WHEN else "upcoming"
    _key, descending = sort_param(ctx.request, ("start",), "-start" if when == "past" else "start")
    query_text = ctx.request.query.get("q", "").strip()[:60]
    category = ctx.request.query.get("category", "")
    category = category if category in CATEGORIES else ""
    first = paging(ctx.request)
    rows, total = await activities_page(ctx.session, organization_ids=ctx.user.org_ids, when=when,
                                        query_text=query_text, now=ctx.now, descending=descending,
                                        offset=first.offset, limit=first.size, category=category)
    return ctx.render("activities.html", rows=rows, when=when, q=query_text, desc=descending, chosen=category,
                      categories=[(code, category_label(code, ctx.user.lang)) for code in CATEGORIES],
                      pager=Paging(first.page, first.size, total),
                      category=lambda code: category_label(code, ctx.user.lang))


def _form_defaults(ctx: Ctx) -> dict[str, str]:
    start = (ctx.local(ctx.now) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    return {"title": "", "description": "", "category": "other", "place": "", "capacity": "10",
            "start": f"{start:%Y-%m-%dT%H:%M}", "end": f"{start + timedelta(hours=2):%Y-%m-%dT%H:%M}",
            "organization_id": str(ctx.user.org_ids[0])}


def parse_local(text: str, key: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise InvalidInput(key) from error


def edit_form(ctx: Ctx, activity: Activity) -> dict[str, str]:
    """The activity's editable fields as the edit form shows them (local times)."""
    return {"title": activity.title, "place": activity.place, "capacity": str(activity.capacity),
            "description": activity.description or "", "start": f"{ctx.local(activity.start_at):%Y-%m-%dT%H:%M}",
            "end": f"{ctx.local(activity.end_at):%Y-%m-%dT%H:%M}"}


def parse_activity(ctx: Ctx, form: dict[str, str]) -> ActivityBase:
    """The chat's rules for 发布活动, field by field; InvalidInput carries the chat's error key."""
    title = parse_title(None, form.get("title", "").strip())  # type: ignore[arg-type]
    description = parse_description(None, form.get("description", "").strip()) if form.get("description", "").strip() else ""  # type: ignore[arg-type]
    category = form.get("category", "")
    if category not in CATEGORIES:
        raise InvalidInput("category")
    place = parse_place(None, form.get("place", "").strip())  # type: ignore[arg-type]
    start = parse_local(form.get("start", ""), "datetime_format")
    if ctx.to_utc(start) <= ctx.now:
        raise InvalidInput("start_past")
    end = parse_local(form.get("end", ""), "end_format")
    if end <= start or end - start > timedelta(days=MAX_DAYS):
        raise InvalidInput("end_order")
    capacity = parse_capacity(None, form.get("capacity", "").strip())  # type: ignore[arg-type]
    org_raw = form.get("organization_id", "")
    if not org_raw.isdigit() or not manages(ctx, int(org_raw)):
        raise InvalidInput("org")
    return ActivityBase(title=title, description=description, category=category, place=place,
                        start_at=ctx.to_utc(start), end_at=ctx.to_utc(end), capacity=capacity,
                        organization_id=int(org_raw))


@page
async def activity_new(ctx: Ctx) -> web.StreamResponse:
    form = _form_defaults(ctx)
    error: Text | None = None
    if ctx.request.method == "POST":
        posted = await ctx.request.post()
        form.update({key: str(posted.get(key, "")) for key in form})
        try:
            data = parse_activity(ctx, form)
            await require_manager(ctx.session, person_id=ctx.user.person.id or 0, admin=ctx.user.admin,
                                  organization_id=data.organization_id)
            activity = await create_activity(ctx.session, data=data, created_by=ctx.user.person.id, now=ctx.now)
        except InvalidInput as invalid:
            error = WEB_ERRORS.get(invalid.key) or PUBLISH_FLOW.errors.get(invalid.key, _("输入有误，请检查后重新提交。"))
        except PermissionDenied:
            error = ORG_DENIED
        except ActivityError:
            error = PUBLISH_FLOW.errors["end_order"]
        else:
            raise web.HTTPSeeOther(f"/admin/activities/{activity.id}?ok=created")
    rendered = None if error is None else ctx.render_text(error)
    return ctx.render("activity_new.html", form=form, error=rendered, categories=[
        (code, category_label(code, ctx.user.lang)) for code in CATEGORIES])


async def own_activity(ctx: Ctx) -> Activity:
    raw = ctx.request.match_info.get("id", "")
    activity = await ctx.session.get(Activity, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    if activity is None:
        raise web.HTTPNotFound(text="404")
    if not manages(ctx, activity.organization_id):
        raise web.HTTPForbidden(text=ctx.render_text(ORG_DENIED))
    return activity


@page
async def activity_detail(ctx: Ctx) -> web.StreamResponse:
    activity = await own_activity(ctx)
    return await render_detail(ctx, activity, error=None)


async def render_detail(ctx: Ctx, activity: Activity, *, error: str | None) -> web.StreamResponse:
    assert activity.id is not None
    people = await roster(ctx.session, activity_id=activity.id)
    records = await roster_hours(ctx.session, activity_id=activity.id)
    return ctx.render("activity.html", activity=activity, people=people, records=records, error=error,
                      form=edit_form(ctx, activity), started=activity.start_at <= ctx.now,
                      changeable=activity.status == "open" and activity.end_at > ctx.now,
                      length=activity_length_hours(activity), category=category_label(activity.category, ctx.user.lang),
                      organization=next((o.name for o in ctx.user.organizations if o.id == activity.organization_id), ""))


@page
async def record_roster_hours(ctx: Ctx) -> web.StreamResponse:
    """One form for the whole roster: each ticked attendee gets the hours typed on their line."""
    activity = await own_activity(ctx)
    assert activity.id is not None
    form = await ctx.request.post()
    confirmed = {signup.person_id for signup, _person in await roster(ctx.session, activity_id=activity.id)
                 if signup.status == "confirmed"}
    groups: dict[float, list[int]] = defaultdict(list)
    try:
        for raw in form.getall("person", []):
            person_id = int(raw) if str(raw).isdigit() and len(str(raw)) < 10 else 0
            if person_id not in confirmed:
                raise HoursError("not_attendee")
            groups[parse_hours(str(form.get(f"hours_{person_id}", "")))].append(person_id)
        if not groups:
            raise InvalidInput("nobody")
        async with ctx.session.begin_nested():  # everyone or, at the first refusal, no one
            for hours, ids in groups.items():
                await record_hours_for(ctx.session, activity=activity, person_ids=ids, hours=hours,
                                       recorded_by=ctx.user.person.id or 0, served_on=ctx.local(activity.start_at).date(),
                                       now=ctx.now, admin=ctx.user.admin)
    except InvalidInput as invalid:
        message: Text = (_("请勾选要记录时长的参加者。") if invalid.key == "nobody"
                         else _("请输入数字，如 2 或 2.5："))
        return await render_detail(ctx, activity, error=ctx.render_text(message))
    except HoursError as refused:
        return await render_detail(ctx, activity, error=ctx.render_text(_hours_refusal(refused)))
    raise web.HTTPSeeOther(f"/admin/activities/{activity.id}?ok=hours_recorded")


def _hours_refusal(error: HoursError) -> Text:
    if error.reason == "not_manager":
        return ORG_DENIED
    return recording_refusal(error)


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/activities", activity_list)
    app.router.add_route("*", "/admin/activities/new", activity_new)
    app.router.add_get("/admin/activities/{id}", activity_detail)
    app.router.add_post("/admin/activities/{id}/hours", record_roster_hours)
