"""An activity's changes on /admin/activities/<id>: edit its fields and cancel it with a reason
(services.activity_changes: the notices go out as from the chat's 修改活动 / 取消活动), mark or unmark a
no-show on the roster, and download the roster as xlsx or CSV (services.roster_export)."""

from __future__ import annotations

from aiohttp import web

from bot.web.core import Ctx, page
from bot.web.pages_activities import edit_form, own_activity, parse_local, render_detail
from common.i18n import Text, _
from handlers.activities_manage import CANCEL_FLOW, CHANGE_ERRORS
from handlers.activities_manage import parse_reason as parse_cancel_reason
from handlers.activities_publish import FLOW as PUBLISH_FLOW
from handlers.activities_publish import parse_capacity, parse_description, parse_place, parse_title
from handlers.activities_roster import NO_SHOW_ERRORS
from handlers.validation import InvalidInput
from models.activity_changes import EDITABLE_FIELDS
from services.activities import ActivityError
from services.activity_changes import EditValue, TimeSpan, cancel_activity, edit_activity, mark_no_show
from services.exports import CONTENT_TYPES, FORMATS, write_table
from services.roster_export import roster_rows, roster_table


def _changed(ctx: Ctx, form: dict[str, str], current: dict[str, str]) -> list[tuple[str, EditValue]]:
    """The fields whose posted value differs from the activity's, read by the chat's rules."""
    changes: list[tuple[str, EditValue]] = []
    for name in EDITABLE_FIELDS:
        if name == "time":
            if (form["start"], form["end"]) == (current["start"], current["end"]):
                continue
            start, end = parse_local(form["start"], "datetime_format"), parse_local(form["end"], "end_format")
            changes.append(("time", TimeSpan(ctx.to_utc(start), ctx.to_utc(end))))
        elif form[name] != current[name]:
            parse = {"title": parse_title, "place": parse_place, "capacity": parse_capacity,
                     "description": parse_description}[name]
            changes.append((name, parse(None, form[name])))  # type: ignore[arg-type,operator]
    return changes


@page
async def edit(ctx: Ctx) -> web.StreamResponse:
    """Every changed field is one change, and one notice to those signed up or waiting, as in the chat."""
    activity = await own_activity(ctx)
    posted = await ctx.request.post()
    current = edit_form(ctx, activity)
    form = {key: " ".join(str(posted.get(key, "")).split()) if key != "description" else str(posted.get(key, "")).strip()
            for key in current}
    error: Text | None = None
    try:
        changes = _changed(ctx, form, current)
        if not changes:
            raise InvalidInput("unchanged")
        async with ctx.session.begin_nested():  # every change or, at the first refusal, none
            for name, value in changes:
                await edit_activity(ctx.session, activity_id=activity.id or 0, changed_by=ctx.user.person.id,
                                    name=name, value=value, now=ctx.now, tz=ctx.tz)
    except InvalidInput as invalid:
        error = (_("没有修改任何一项。") if invalid.key == "unchanged"
                 else PUBLISH_FLOW.errors.get(invalid.key, _("输入有误，请检查后重新提交。")))
    except ActivityError as refused:
        error = CHANGE_ERRORS.get(refused.reason, _("修改失败。"))
    if error is not None:
        response = await render_detail(ctx, activity, error=ctx.render_text(error))
        response.set_status(400)
        return response
    raise web.HTTPSeeOther(f"/admin/activities/{activity.id}?ok=activity_edited")


@page
async def cancel(ctx: Ctx) -> web.StreamResponse:
    activity = await own_activity(ctx)
    posted = await ctx.request.post()
    try:
        reason = parse_cancel_reason(None, " ".join(str(posted.get("reason", "")).split()))  # type: ignore[arg-type]
        await cancel_activity(ctx.session, activity_id=activity.id or 0, changed_by=ctx.user.person.id,
                              reason=reason, now=ctx.now, tz=ctx.tz)
    except InvalidInput:
        error, status = CANCEL_FLOW.errors["reason"], 400
    except ActivityError as refused:
        error, status = CHANGE_ERRORS.get(refused.reason, _("取消失败。")), 409
    else:
        raise web.HTTPSeeOther(f"/admin/activities/{activity.id}?ok=activity_cancelled")
    response = await render_detail(ctx, activity, error=ctx.render_text(error))
    response.set_status(status)
    return response


@page
async def no_show(ctx: Ctx) -> web.StreamResponse:
    """``noshow=<person id>:1`` marks, ``:0`` unmarks (a button of the roster form)."""
    activity = await own_activity(ctx)
    posted = await ctx.request.post()
    person, _sep, mark = str(posted.get("noshow", "")).partition(":")
    try:
        if not person.isdigit() or len(person) > 9 or mark not in ("0", "1"):
            raise ActivityError("not_signed_up")
        await mark_no_show(ctx.session, activity_id=activity.id or 0, person_id=int(person), no_show=mark == "1",
                           now=ctx.now)
    except ActivityError as refused:
        response = await render_detail(ctx, activity, error=ctx.render_text(
            NO_SHOW_ERRORS.get(refused.reason, _("没有标记成功。"))))
        response.set_status(409)
        return response
    raise web.HTTPSeeOther(f"/admin/activities/{activity.id}?ok=" + ("no_show" if mark == "1" else "no_show_undone"))


def download(fmt: str):  # noqa: ANN201 - a page handler
    @page
    async def roster_download(ctx: Ctx) -> web.StreamResponse:
        activity = await own_activity(ctx)
        rows = await roster_rows(ctx.session, activity_id=activity.id or 0, tz=ctx.tz)
        body = write_table(roster_table(activity, rows), fmt, lang=ctx.user.lang)
        return web.Response(body=body, content_type=CONTENT_TYPES[fmt], charset="utf-8" if fmt == "csv" else None,
                            headers={"Content-Disposition": f'attachment; filename="roster-{activity.id}.{fmt}"',
                                     "Cache-Control": "no-store"})
    return roster_download


def setup(app: web.Application) -> None:
    app.router.add_post("/admin/activities/{id}/edit", edit)
    app.router.add_post("/admin/activities/{id}/cancel", cancel)
    app.router.add_post("/admin/activities/{id}/noshow", no_show)
    for fmt in FORMATS:
        app.router.add_get(f"/admin/activities/{{id}}/roster.{fmt}", download(fmt))
