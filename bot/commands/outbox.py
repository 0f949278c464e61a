"""``volunteer-bot outbox …``: run one channel's sender on its own, or see the queue."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from bot.commands.common import load_settings, setup_logging

outbox_app = typer.Typer(help="Outbox: the queue of outgoing messages and its senders.", no_args_is_help=True)


@outbox_app.command("drain")
def outbox_drain(
    channel: Annotated[str, typer.Option(help="telegram or wechat")],
    until_empty: Annotated[bool, typer.Option("--until-empty", help="Stop when nothing is due.")] = False,
) -> None:
    """Send due outbox rows of one channel (the same drainer ``serve`` runs; one per deployment)."""
    from bot.channels.registry import all_channels
    from bot.locks import DeploymentLock
    from bot.outbox import OutboxDrainer
    from bot.runtime import Runtime
    from bot.scheduler import drain_options

    settings = load_settings()
    setup_logging(settings.log_level)

    async def main() -> int:
        runtime = await Runtime.start(settings)
        found = [c for c in all_channels(settings) if c.name == channel and c.can_push]
        sender = found[0].sender(runtime) if found else None
        if sender is None:
            typer.echo(f"channel {channel!r} has no configured sender (check its token settings)", err=True)
            await runtime.close()
            return 1
        lock = DeploymentLock(runtime.db, name=f"outbox-{channel}", lock_file=settings.scheduler_lock_file)
        try:
            if not await lock.try_acquire():
                typer.echo(f"another process is sending the {channel} outbox", err=True)
                return 1
            drainer = OutboxDrainer(runtime.sessions, sender, options=drain_options(settings))
            await drainer.recover_unknown()
            if until_empty:
                stats = await drainer.drain_until_idle(max_seconds=3600)
            else:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await drainer.run(stop)
                stats = drainer.stats
            typer.echo(f"sent {stats.sent}, retried {stats.retried}, failed {stats.failed}, held {stats.held}, "
                       f"blocked {stats.blocked}")
            return 0
        finally:
            await lock.release()
            await sender.close()
            await runtime.close()

    raise typer.Exit(asyncio.run(main()))


@outbox_app.command("status")
def outbox_status() -> None:
    """Rows per channel and status."""
    import sqlalchemy as sa

    from bot.runtime import Runtime
    from models import Delivery

    async def main() -> list[tuple[str, str, int]]:
        runtime = await Runtime.start(load_settings())
        try:
            async with runtime.sessions() as session:
                table = Delivery.__table__
                rows = await session.execute(sa.select(table.c.channel, table.c.status, sa.func.count())
                                             .group_by(table.c.channel, table.c.status)
                                             .order_by(table.c.channel, table.c.status))
                return [(c, s, int(n)) for c, s, n in rows]
        finally:
            await runtime.close()

    for channel, status, count in asyncio.run(main()):
        typer.echo(f"{channel:10} {status:8} {count}")
