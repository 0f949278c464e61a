"""The Telegram webhook behind admission (bot/admission.py): every update is acknowledged at once, at most
``CORE_CONCURRENCY`` run at a time, a bounded queue holds the rest, and past it the POST is answered 503
(not acknowledged: Telegram delivers the update again later) instead of piling up tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from handlers.engine import Engine, Handled
from handlers.messages import Inbound
from tests.fakes.telegram_api import FakeTelegramAPI, message_update
from tests.telegram_harness import TelegramHarness, texts

CONCURRENCY = 2
MAX_QUEUE = 5


class GatedCore:
    """The real core, but each turn first waits for ``gate`` (a burst that outruns the core); counts the
    turns running at once."""

    def __init__(self, core: Engine) -> None:
        self._core = core
        self.gate = asyncio.Event()
        self.running = 0
        self.most_at_once = 0

    async def handle_delivery(self, inbound: Inbound) -> Handled:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.gate.wait()
            return await self._core.handle_delivery(inbound)
        finally:
            self.running -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
def gated(core: Engine) -> GatedCore:
    return GatedCore(core)


@pytest.fixture
async def tg(api, gated, sessions, db_url) -> AsyncIterator[TelegramHarness]:  # noqa: ANN001
    async with TelegramHarness(api, gated, sessions, db_url, webhook=True, core_concurrency=CONCURRENCY) as harness:
        harness.channel.admission.max_queue = MAX_QUEUE
        yield harness


async def test_a_burst_is_acknowledged_and_bounded_and_the_overflow_is_left_to_telegram(
        tg: TelegramHarness, api: FakeTelegramAPI, gated: GatedCore) -> None:
    users = range(6001, 6021)
    updates = {user: message_update(tg.next_update_id(), user_id=user, text="/help") for user in users}
    statuses = {user: (await tg.post(update)).status for user, update in updates.items()}
    admitted = [user for user, status in statuses.items() if status == 200]
    refused = [user for user, status in statuses.items() if status != 200]
    assert set(statuses.values()) == {200, 503}
    # bounded: what runs plus what waits, never a task per update
    assert MAX_QUEUE <= len(admitted) <= CONCURRENCY + MAX_QUEUE
    assert tg.channel.admission.in_flight == len(admitted)
    assert gated.running <= CONCURRENCY and api.sent() == []

    gated.gate.set()
    await tg.channel.admission.wait_idle()
    assert gated.most_at_once == CONCURRENCY
    assert all("志愿助手" in texts(api.sent(user)) for user in admitted)
    assert all(api.sent(user) == [] for user in refused)

    # Telegram delivers a refused update again: now it is handled
    again = refused[0]
    assert (await tg.post(updates[again])).status == 200
    await tg.channel.admission.wait_idle()
    assert "志愿助手" in texts(api.sent(again))


async def test_a_redelivery_of_a_queued_update_joins_it(tg: TelegramHarness, api: FakeTelegramAPI,
                                                       gated: GatedCore) -> None:
    update = message_update(tg.next_update_id(), user_id=6100, text="/help")
    assert (await tg.post(update)).status == 200
    assert (await tg.post(update)).status == 200  # Telegram did not see our first 200 in time
    assert tg.channel.admission.in_flight == 1
    gated.gate.set()
    await tg.channel.admission.wait_idle()
    assert len(api.sent(6100)) == len(api.sent()) >= 1
    assert gated.most_at_once == 1


async def test_shutdown_lets_admitted_updates_finish(api: FakeTelegramAPI, gated: GatedCore, sessions,  # noqa: ANN001
                                                     db_url: str) -> None:
    async with TelegramHarness(api, gated, sessions, db_url, webhook=True, core_concurrency=1) as tg:
        for user in (6201, 6202, 6203):
            assert (await tg.post(message_update(tg.next_update_id(), user_id=user, text="/help"))).status == 200
        asyncio.get_running_loop().call_later(0.2, gated.gate.set)
    assert all("志愿助手" in texts(api.sent(user)) for user in (6201, 6202, 6203))
