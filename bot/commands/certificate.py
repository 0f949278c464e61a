"""``volunteer-bot certificate``: issue a 志愿服务证明 PDF for a user, or revoke one by its number."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from bot.commands.common import AT_HELP, clock_at, fail, load_settings
from bot.texts import cli_text
from common.i18n import _

certificate_app = typer.Typer(
    help=f"Volunteer service certificates ({cli_text(_('志愿服务证明'))}): "
         "certificate --channel C --user U [--from D --to D] --out FILE.pdf; certificate revoke NUMBER --reason R.",
    invoke_without_command=True)


@certificate_app.callback()
def certificate_issue(
    ctx: typer.Context,
    channel: Annotated[str | None, typer.Option(help="The volunteer's channel (console, telegram, wechat).")] = None,
    user: Annotated[str | None, typer.Option(help="The volunteer's id on that channel.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: the first record).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (default: today).")] = None,
    out: Annotated[Path | None, typer.Option(help="PDF file to write.")] = None,
    at: Annotated[str | None, typer.Option(help=AT_HELP)] = None,
) -> None:
    """Issue a certificate of a volunteer's approved hours and write it as a PDF."""
    if ctx.invoked_subcommand is not None:
        return
    if not channel or not user or out is None:
        typer.echo(ctx.get_help())
        fail("certificate needs --channel, --user and --out")
    from datetime import date

    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
    except ValueError:
        fail("dates look like 2026-03-05")
    if first and last and first > last:
        fail("--from is after --to")
    pdf, number, hours, url = asyncio.run(_issue(channel, user, first, last, at))
    out.write_bytes(pdf)
    typer.echo(f"wrote {out}: {number}, {hours:g} h" + (f", {url}" if url else ""))


async def _issue(channel: str, user: str, first: object, last: object, at: str | None) -> tuple[bytes, str, float, str]:
    from datetime import date
    from zoneinfo import ZoneInfo

    from sqlmodel import select

    from bot.certificates.web import CertificateFiles, verify_url
    from bot.runtime import Runtime
    from models import Identity
    from services.certificates import CertificateError, facts_of, format_number, issue_certificate

    settings = load_settings()
    now = clock_at(at, settings.timezone)()
    runtime = await Runtime.start(settings)
    try:
        today = now.astimezone(ZoneInfo(settings.timezone)).date()
        async with runtime.sessions() as session:
            identity = (await session.exec(
                select(Identity).where(Identity.channel == channel, Identity.external_id == user))).first()
            if identity is None:
                fail(f"no user {user} on {channel}")
            assert isinstance(first, date | None) and isinstance(last, date | None)
            try:
                certificate = await issue_certificate(session, person_id=identity.person_id, start=first,
                                                      end=min(last or today, today), now=now)
            except CertificateError as error:
                fail({"not_registered": "this user has not completed real-name registration",
                      "no_hours": "no approved hours in that period"}.get(error.reason, error.reason))
            await session.commit()
            facts = facts_of(certificate, timezone=settings.timezone)
        pdf = await CertificateFiles(runtime.sessions, settings).pdf(facts)
        return pdf, format_number(facts.number), facts.total_hours, verify_url(settings, facts.number)
    finally:
        await runtime.close()


@certificate_app.command("revoke")
def certificate_revoke(
    number: Annotated[str, typer.Argument(help="The certificate number (dashes optional).")],
    reason: Annotated[str, typer.Option(help="Why it is revoked (shown on the verification page).")],
) -> None:
    """Revoke a certificate: /verify/<number> then says it is revoked, and its download links stop."""
    if not reason.strip():
        fail("--reason must say why")
    asyncio.run(_revoke(number, reason))
    typer.echo(f"revoked {number}")


async def _revoke(number: str, reason: str) -> None:
    from bot.runtime import Runtime
    from models import utcnow
    from services.certificates import CertificateError, revoke_certificate

    runtime = await Runtime.start(load_settings())
    try:
        async with runtime.sessions() as session:
            try:
                await revoke_certificate(session, number=number, reason=reason, now=utcnow())
            except CertificateError as error:
                fail({"unknown": f"no certificate numbered {number}",
                      "revoked": f"certificate {number} is already revoked"}[error.reason])
            await session.commit()
    finally:
        await runtime.close()
