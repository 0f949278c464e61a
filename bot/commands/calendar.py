"""``volunteer-bot calendar YEAR`` and ``volunteer-bot observance …``: the reminder calendar."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

import typer

from bot.commands.common import load_settings
from bot.texts import bilingual, cli_text
from common.i18n import N_, Text, _
from common.lunar_names import lunar_day_name, lunar_month_name

observance_app = typer.Typer(help="Observance days (reminder calendar): load defaults, add, edit, switch off.",
                             no_args_is_help=True)

# date.weekday() order: the day in a calendar line (周一) and in a rule (星期一)
SHORT_WEEKDAYS = (N_("周一"), N_("周二"), N_("周三"), N_("周四"), N_("周五"), N_("周六"), N_("周日"))
WEEKDAY_NAMES = (N_("星期一"), N_("星期二"), N_("星期三"), N_("星期四"), N_("星期五"), N_("星期六"), N_("星期日"))


def rule_text(rule: str, month: int, day: int | None, weekday: int | None, nth: int | None) -> Text:
    if rule == "lunar" and day is not None:
        return _("农历{month}月{day}", month=lunar_month_name(month), day=lunar_day_name(day))
    if rule == "nth_weekday" and weekday is not None and nth is not None:
        if nth == -1:
            return _("{month}月最后一个{weekday}", month=month, weekday=WEEKDAY_NAMES[weekday])
        return _("{month}月第{nth}个{weekday}", month=month, nth=nth, weekday=WEEKDAY_NAMES[weekday])
    return _("{month}月{day}日", month=month, day=day)


def describe_rule(rule: str, month: int, day: int | None, weekday: int | None, nth: int | None) -> str:
    """The rule as the CLI prints it: 农历九月初九, 11月最后一个星期四, 3月12日."""
    return cli_text(rule_text(rule, month, day, weekday, nth))


def calendar_command(
    year: Annotated[int, typer.Argument(help="e.g. 2026", min=1901, max=2099)],
    show_all: Annotated[bool, typer.Option("--all", help="Include days that are switched off.")] = False,
) -> None:
    """Print the year's observance days with their dates (defaults are loaded on first use)."""
    from sqlmodel import select

    from bot.runtime import Runtime
    from bot.scheduler import load_default_observances
    from models.reminders import Observance
    from services.calendar import year_calendar

    async def main() -> None:
        runtime = await Runtime.start(load_settings())
        try:
            async with runtime.sessions() as session:
                empty = (await session.exec(select(Observance.id).limit(1))).first() is None
            if empty:
                await load_default_observances(runtime)
            async with runtime.sessions() as session:
                entries = await year_calendar(session, year=year, include_inactive=show_all)
        finally:
            await runtime.close()
        for entry in entries:
            o = entry.observance
            off = "" if o.active else "  [" + bilingual(_("已关闭"), sep=" ") + "]"
            rule = describe_rule(o.rule, o.month, o.day, o.weekday, o.nth)
            weekday = cli_text(SHORT_WEEKDAYS[entry.day.weekday()])
            typer.echo(f"{entry.day.isoformat()} {weekday}  {o.name}  ({rule}; {o.code}){off}")

    asyncio.run(main())


async def _edit(code: str, **changes: object) -> str:
    from sqlmodel import select

    from bot.runtime import Runtime
    from models import utcnow
    from models.reminders import Observance
    from services.calendar import Rule, RuleError, date_in_year, validate

    runtime = await Runtime.start(load_settings())
    try:
        async with runtime.sessions() as session:
            row = (await session.exec(select(Observance).where(Observance.code == code))).first()
            creating = row is None
            if row is None:
                if "name" not in changes or "month" not in changes:
                    raise typer.BadParameter(f"no observance {code!r}; to add one give --name and --month")
                row = Observance(code=code, name=str(changes["name"]), month=int(changes["month"]))  # type: ignore[arg-type]
            for key, value in changes.items():
                if value is not None:
                    setattr(row, key, value)
            try:
                validate(Rule(row.rule, row.month, row.day, row.weekday, row.nth))
            except RuleError as exc:
                raise typer.BadParameter(str(exc)) from exc
            row.updated_at = utcnow()
            session.add(row)
            await session.commit()
            upcoming = date_in_year(Rule.of(row), date.today().year)
            return f"{'added' if creating else 'updated'} {row.code} {row.name} (this year: {upcoming})"
    finally:
        await runtime.close()


@observance_app.command("load")
def observance_load(
    overwrite: Annotated[bool, typer.Option(help="Also reset days that exist (undoes edits).")] = False,
) -> None:
    """Load the default days (bot/data/observances.json); existing days are kept unless --overwrite."""
    from bot.runtime import Runtime
    from bot.scheduler import load_default_observances

    async def main() -> tuple[int, int]:
        runtime = await Runtime.start(load_settings())
        try:
            return await load_default_observances(runtime, overwrite=overwrite)
        finally:
            await runtime.close()

    added, updated = asyncio.run(main())
    typer.echo(f"observances: {added} added, {updated} reset")


@observance_app.command("set")
def observance_set(
    code: Annotated[str, typer.Argument(help="Stable key, e.g. arbor_day (new code → a new day).")],
    name: Annotated[str | None, typer.Option()] = None,
    rule: Annotated[str | None, typer.Option(help="solar, lunar or nth_weekday")] = None,
    month: Annotated[int | None, typer.Option(min=1, max=12)] = None,
    day: Annotated[int | None, typer.Option(min=1, max=31)] = None,
    weekday: Annotated[int | None, typer.Option(min=0, max=6, help="0 = Monday … 6 = Sunday")] = None,
    nth: Annotated[int | None, typer.Option(min=-1, max=5, help="1-5, or -1 for the last")] = None,
    text: Annotated[str | None, typer.Option(help="Reminder text (Simplified Chinese).")] = None,
    text_en: Annotated[str | None, typer.Option(help="Reminder text (English).")] = None,
    categories: Annotated[str | None, typer.Option(help="Activity categories to suggest, comma-separated.")] = None,
    days_before: Annotated[int | None, typer.Option(min=0, max=30)] = None,
) -> None:
    """Add a day or edit one (only the options given change)."""
    if rule is not None and rule not in ("solar", "lunar", "nth_weekday"):
        raise typer.BadParameter("rule must be solar, lunar or nth_weekday")
    typer.echo(asyncio.run(_edit(code, name=name, rule=rule, month=month, day=day, weekday=weekday, nth=nth,
                                 reminder_text=text, reminder_text_en=text_en, categories=categories,
                                 days_before=days_before)))


@observance_app.command("off")
def observance_off(code: Annotated[str, typer.Argument()]) -> None:
    """Switch a day off (no reminders)."""
    typer.echo(asyncio.run(_edit(code, active=False)))


@observance_app.command("on")
def observance_on(code: Annotated[str, typer.Argument()]) -> None:
    """Switch a day back on."""
    typer.echo(asyncio.run(_edit(code, active=True)))
