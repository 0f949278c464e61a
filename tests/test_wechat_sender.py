"""The WeChat push sender against the fake API: 48 h window, template fallback, held, blocked, retry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.wechat.api import DatabaseTokenStore, WeChatApiClient
from bot.channels.wechat.sender import WeChatSender
from bot.sender import OutboundMessage
from tests.fakes.wechat_api import FakeWeChatAPI

NOW = 1_780_000_000.0
HOUR = 3600.0


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatAPI]:
    async with FakeWeChatAPI() as fake:
        yield fake


def make_sender(api: FakeWeChatAPI, sessions, template_id: str = "") -> WeChatSender:  # noqa: ANN001
    client = WeChatApiClient(app_id=api.app_id, app_secret=api.secret, tokens=DatabaseTokenStore(sessions, api.app_id),
                             api_base=api.base_url)
    return WeChatSender(client, template_id=template_id, clock=lambda: NOW)


def message(openid: str = "o_1", *, hours_ago: float | None = 1.0) -> OutboundMessage:
    return OutboundMessage(delivery_id=1, channel="wechat", external_id=openid, text="明天 9:00 敬老院探访",
                           choices=[{"label": "查看活动", "value": "act:1"}],
                           last_inbound_at_ts=None if hours_ago is None else NOW - hours_ago * HOUR)


async def test_inside_48h_is_a_customer_service_text_with_numbered_choices(api, sessions) -> None:  # noqa: ANN001
    sender = make_sender(api, sessions, template_id="TPL")
    result = await sender.send(message(hours_ago=47.9))
    assert result.outcome == "sent"
    assert api.sent_texts("o_1") == ["明天 9:00 敬老院探访\n\n1. 查看活动"]
    assert api.calls_to("message/template/send") == []
    await sender.close()


async def test_outside_48h_uses_the_template_or_holds(api, sessions) -> None:  # noqa: ANN001
    with_template = make_sender(api, sessions, template_id="TPL")
    assert (await with_template.send(message(hours_ago=48.1))).outcome == "sent"
    call = api.calls_to("message/template/send")[0]
    assert call.body is not None and call.body["template_id"] == "TPL"
    assert call.body["data"] == {"thing1": {"value": "明天 9:00 敬老院探访"}, "time2": {"value": "2026-05-29 04:26"}}
    assert "url" not in call.body  # no PUBLIC_BASE_URL: no notice page to link to
    assert api.calls_to("message/custom/send") == []
    without = make_sender(api, sessions)
    result = await without.send(message(hours_ago=None))
    assert result.outcome == "held"
    assert len(api.calls_to("message/template/send")) == 1  # nothing more was called
    await with_template.close()
    await without.close()


@pytest.mark.parametrize("errcode", [45015, 45047])
async def test_window_errors_fall_back_to_template_or_hold(api, sessions, errcode: int) -> None:  # noqa: ANN001
    api.fail("message/custom/send", errcode, times=2)
    held = make_sender(api, sessions)
    assert (await held.send(message())).outcome == "held"
    templated = make_sender(api, sessions, template_id="TPL")
    assert (await templated.send(message())).outcome == "sent"
    assert len(api.calls_to("message/template/send")) == 1
    await held.close()
    await templated.close()


async def test_unsubscribed_is_blocked_and_errors_map_to_retry_or_failed(api, sessions) -> None:  # noqa: ANN001
    sender = make_sender(api, sessions, template_id="TPL")
    api.unsubscribe("o_gone")
    assert (await sender.send(message("o_gone"))).outcome == "blocked"
    assert (await sender.send(message("o_gone", hours_ago=100))).outcome == "blocked"
    api.fail("message/custom/send", -1)
    busy = await sender.send(message())
    assert busy.outcome == "retry" and busy.retry_after
    api.fail("message/custom/send", 40001, times=None)  # the token never sticks: bounded, then retry later
    stuck = await sender.send(message())
    assert stuck.outcome == "retry" and api.token_requests == 3
    api._failures.clear()
    api.fail("message/custom/send", 40003)
    assert (await sender.send(message())).outcome == "failed"
    await sender.close()


async def test_network_failure_is_retry(sessions) -> None:  # noqa: ANN001
    async with FakeWeChatAPI() as api:
        sender = make_sender(api, sessions)
    # the fake is gone: connection refused
    result = await sender.send(message())
    assert result.outcome == "retry"
    await sender.close()
