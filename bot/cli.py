"""``volunteer-bot``: assembles the command groups of ``bot/commands/`` into one typer app."""

from __future__ import annotations

import typer

from bot.commands.admin import admin_app, org_app
from bot.commands.calendar import calendar_command, observance_app
from bot.commands.certificate import certificate_app
from bot.commands.ledger import ledger_app
from bot.commands.nlu import nlu_app
from bot.commands.outbox import outbox_app
from bot.commands.server import chat, classify, db_app, serve
from bot.commands.telegram import telegram_app
from bot.commands.web import web_app
from bot.commands.wechat import wechat_app
from bot.texts import bilingual
from common.i18n import _

app = typer.Typer(help=bilingual(_("志愿助手"), sep=" — "), no_args_is_help=True, add_completion=False)
app.command()(serve)
app.command()(chat)
app.command()(classify)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(org_app, name="org")
app.add_typer(ledger_app, name="ledger")
app.add_typer(nlu_app, name="nlu")
app.add_typer(certificate_app, name="certificate")
app.add_typer(telegram_app, name="telegram")
app.add_typer(wechat_app, name="wechat")
app.command("calendar")(calendar_command)
app.add_typer(observance_app, name="observance")
app.add_typer(outbox_app, name="outbox")
app.add_typer(web_app, name="web")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
