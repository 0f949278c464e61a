"""The reminder calendar in the web console over HTTP on SQLite and PostgreSQL: a station's coordinator
switches and rewrites their own days, never a national one (the admins'), nor another station's."""

from __future__ import annotations

from sqlmodel import select

from bot.scheduler import read_default_observances
from models.reminders import Observance
from services.calendar import Rule, load_defaults
from services.observances import add_observance
from tests.test_web_console import options, two_orgs, web  # noqa: F401 - the console's fixtures
from tests.web_harness import WebHarness


async def _calendar(sessions, clock, two_orgs) -> dict[str, int]:  # noqa: ANN001, F811
    async with sessions() as session:
        await load_defaults(session, read_default_observances(), now=clock.now)
        ids = {}
        for author, key, name in ((1, "a", "花家地邻里节"), (2, "b", "望京邻里节")):  # codes differ by author
            day = await add_observance(session, author_id=author, name=name, rule=Rule(kind="solar", month=6, day=13),
                                       reminder_text="邻里节到了", organization_id=two_orgs[key], admin=True,
                                       now=clock.now)
            ids[key] = day.id
        ids["national"] = (await session.exec(select(Observance).where(Observance.name == "重阳节"))).one().id
        await session.commit()
    return ids


async def _stored(sessions, observance_id: int) -> tuple[bool, str]:  # noqa: ANN001
    async with sessions() as session:
        row = await session.get(Observance, observance_id)
        return row.active, row.reminder_text


async def test_the_calendar_is_kept_by_the_chats_rules(web, two_orgs, sessions, clock, core) -> None:  # noqa: ANN001, F811
    ids = await _calendar(sessions, clock, two_orgs)
    coordinator = await web.signed_in("console", "coord_a")
    status, body = await coordinator.get("/admin/observances?year=2026")
    assert status == 200 and "重阳节" in body and "2026-10-18" in body and "花家地邻里节" in body
    assert "望京邻里节" not in body and f'data-switch="{ids["national"]}"' not in body
    status, where = await coordinator.post(f"/admin/observances/{ids['a']}", {"action": "off"})
    assert (status, where) == (303, f"/admin/observances?ok=observance_off#o{ids['a']}")
    status, body = await coordinator.post(f"/admin/observances/{ids['a']}", {"action": "text", "text": "x"})
    assert status == 400 and "提醒文字需要 2–500 个字" in body
    assert (await coordinator.post(f"/admin/observances/{ids['a']}",
                                   {"action": "text", "text": "邻里节：一起包饺子"}))[0] == 303
    assert await _stored(sessions, ids["a"]) == (False, "邻里节：一起包饺子")
    async with WebHarness(core, sessions, admins="console:root") as admins_web:  # an admin: national days too
        root = await admins_web.signed_in("console", "root")
        assert (await root.get("/admin/observances"))[0] == 200
        assert (await root.post(f"/admin/observances/{ids['national']}", {"action": "off"}))[0] == 303
    assert (await _stored(sessions, ids["national"]))[0] is False


async def test_the_calendar_refuses_national_days_others_days_volunteers_and_forged_forms(
        web, two_orgs, sessions, clock) -> None:  # noqa: ANN001, F811
    ids = await _calendar(sessions, clock, two_orgs)
    coordinator = await web.signed_in("console", "coord_a")
    volunteer = await web.signed_in("console", "alice")
    await coordinator.get("/admin/observances")
    status, body = await coordinator.post(f"/admin/observances/{ids['national']}", {"action": "off"})
    assert status == 403 and "全国性的节日只有管理员可以修改" in body
    for action in ({"action": "off"}, {"action": "text", "text": "改掉的文字"}):
        assert (await coordinator.post(f"/admin/observances/{ids['b']}", action))[0] == 403
        assert (await volunteer.post(f"/admin/observances/{ids['a']}", action))[0] == 403
        assert (await coordinator.post(f"/admin/observances/{ids['a']}", action, csrf=False))[0] == 403
    assert (await volunteer.get("/admin/observances"))[0] == 403
    for key in ("a", "b", "national"):
        active, text = await _stored(sessions, ids[key])
        assert active is True and text != "改掉的文字"
    for path, form in (("/admin/observances/abc", {"action": "on"}), ("/admin/observances/99999999", {"action": "on"}),
                       (f"/admin/observances/{ids['a']}", {"action": "explode"}),
                       (f"/admin/observances/{ids['a']}", {"action": "text", "text": "好" * 5000})):
        assert 400 <= (await coordinator.post(path, form))[0] < 500, (path, form)
    assert (await coordinator.get("/admin/observances?year=99999"))[0] == 200
