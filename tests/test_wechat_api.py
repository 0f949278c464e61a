"""The asyncio WeChat API client against the local fake: one shared token, bounded refreshes."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.channels.wechat.api import (
    MAX_TOKEN_REFRESHES,
    DatabaseTokenStore,
    RedisTokenStore,
    WeChatApiClient,
    WeChatApiError,
)
from models.db import create_engine, create_session_factory
from tests.fakes.wechat_api import FakeWeChatAPI

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatAPI]:
    async with FakeWeChatAPI() as fake:
        yield fake


def client_for(api: FakeWeChatAPI, store, session: aiohttp.ClientSession | None = None) -> WeChatApiClient:  # noqa: ANN001
    return WeChatApiClient(app_id=api.app_id, app_secret=api.secret, tokens=store, api_base=api.base_url,
                           mp_base=api.base_url, session=session)


async def test_two_processes_share_one_token_fetched_once(api: FakeWeChatAPI, db_url: str) -> None:
    # two "processes": separate engines and HTTP sessions on the same database
    engines = [create_engine(db_url), create_engine(db_url)]
    clients = [client_for(api, DatabaseTokenStore(create_session_factory(e), api.app_id)) for e in engines]
    try:
        await asyncio.gather(*[c.send_text(f"o_{i}", "你好") for i, c in enumerate(clients * 3)])
        assert api.token_requests == 1
        assert [c.errcode for c in api.calls_to("message/custom/send")] == [0] * 6
        # another process refreshed (the old token is dead): one refresh, and both use the new one
        api.invalidate_tokens()
        await asyncio.gather(*[c.send_text("o_x", "再见") for c in clients])
        assert api.token_requests == 2
    finally:
        for c in clients:
            await c.close()
        for e in engines:
            await e.dispose()


async def test_persistent_40001_is_bounded_not_recursive(api: FakeWeChatAPI, sessions) -> None:  # noqa: ANN001
    client = client_for(api, DatabaseTokenStore(sessions, api.app_id))
    try:
        api.fail("message/custom/send", 40001, times=None)
        with pytest.raises(WeChatApiError) as caught:
            await client.send_text("o_1", "hi")
        assert caught.value.errcode == 40001
        assert api.token_requests == 1 + MAX_TOKEN_REFRESHES
        assert len(api.calls_to("message/custom/send")) == 1 + MAX_TOKEN_REFRESHES
        # 42001 once: refreshed and sent
        api._failures.clear()
        api.fail("message/custom/send", 42001)
        await client.send_text("o_1", "hi")
        assert api.calls_to("message/custom/send")[-1].errcode == 0
    finally:
        await client.close()


async def test_redis_token_store_is_shared(api: FakeWeChatAPI) -> None:
    import redis.asyncio as redis

    probe = redis.from_url(REDIS_URL)
    try:
        await probe.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    await probe.delete(f"volunteer-bot:wechat:access_token:{api.app_id}",
                       f"volunteer-bot:wechat:access_token:{api.app_id}:lock")
    await probe.aclose()
    clients = [client_for(api, RedisTokenStore(REDIS_URL, api.app_id)) for _ in range(3)]
    try:
        await asyncio.gather(*[c.send_text("o_r", "你好") for c in clients])
        assert api.token_requests == 1
        api.invalidate_tokens()
        await asyncio.gather(*[c.send_text("o_r", "再见") for c in clients])
        assert api.token_requests == 2
    finally:
        for c in clients:
            await c.close()


async def test_menu_qrcode_and_template_calls(api: FakeWeChatAPI, sessions) -> None:  # noqa: ANN001
    from bot.commands.wechat import MENU_FILE

    async with aiohttp.ClientSession() as http:
        client = client_for(api, DatabaseTokenStore(sessions, api.app_id), session=http)
        menu = json.loads(MENU_FILE.read_text(encoding="utf-8"))
        await client.create_menu(menu)
        assert api.menu == menu
        raw = api.calls_to("menu/create")[0].raw.decode("utf-8")
        assert "开志愿服务证明" in raw and "\\u" not in raw  # UTF-8 as is: WeChat shows \u escapes literally
        keys = [b.get("key") for top in menu["button"] for b in top.get("sub_button", [top])]
        assert keys == ["acts:1", "search", "mine", "reg", "req", "hrs", "records", "certificate", "profile", "myorg",
                        "help", "myreq", "webadmin"]
        with pytest.raises(WeChatApiError) as caught:
            await client.create_menu({"button": [{"type": "click", "name": "x", "key": "help"}] * 4})
        assert caught.value.errcode == 40016

        code = await client.create_temporary_qrcode("checkin_AbC-12_x", 3600)
        assert code.expire_seconds == 3600
        async with http.get(code.image_url) as response:
            assert response.status == 200 and (await response.read()).endswith(b"checkin_AbC-12_x")
        with pytest.raises(ValueError):
            await client.create_temporary_qrcode("x" * 65, 60)

        msgid = await client.send_template("o_t", "TEMPLATE", {"content": {"value": "提醒"}})
        assert msgid > 0
        await client.close()
        assert not http.closed  # a session handed in belongs to the caller
