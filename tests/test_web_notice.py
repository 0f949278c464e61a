"""Notices outside WeChat's 48 h window: a template message of short one-line fields and a link to a
signed page (/n/<token>) with the whole notice, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.channels.wechat.api import DatabaseTokenStore, WeChatApiClient
from bot.channels.wechat.sender import WeChatSender, parse_template_fields
from bot.sender import OutboundMessage
from common.i18n import _
from services.notice_links import sign_notice, verify_notice
from services.notify import notice_text, notify_person
from services.people import get_or_create_identity
from tests.conftest import TEST_KEY
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.web_harness import WebHarness

LONG = _("好消息：有人取消了报名，你已从候补转为正式参加「{title}」。", title="重阳节社区敬老院探访与文艺演出\n（请带上身份证）")


@pytest.fixture
async def web(core, sessions) -> AsyncIterator[WebHarness]:  # noqa: ANN001
    async with WebHarness(core, sessions) as harness:
        yield harness


async def test_a_template_message_has_short_fields_and_links_to_the_whole_notice(api, sessions, web, clock) -> None:  # noqa: ANN001
    async with sessions() as session:
        identity, person = await get_or_create_identity(session, channel="wechat", external_id="o_far", now=clock.now)
        [row] = await notify_person(session, person_id=person.id, now=clock.now, message=LONG,
                                    choices=[(_("查看活动"), "act:1")])
        await session.commit()
        whole = notice_text(row, "zh-Hans")
    client = WeChatApiClient(app_id=api.app_id, app_secret=api.secret, tokens=DatabaseTokenStore(sessions, api.app_id),
                             api_base=api.base_url)
    sender = WeChatSender(client, template_id="TPL", clock=lambda: clock.now.timestamp(), base_url=web.base,
                          secret=TEST_KEY, template_fields="thing1=title,thing2=summary,time3=time")
    result = await sender.send(OutboundMessage(delivery_id=row.id, channel="wechat", external_id="o_far", text=whole,
                                               choices=[{"label": "查看活动", "value": "act:1"}]))
    await sender.close()
    assert result.outcome == "sent"
    body = api.calls_to("message/template/send")[0].body
    assert body is not None
    values = [field["value"] for field in body["data"].values()]
    assert all(len(value) <= 20 and "\n" not in value for value in values), values
    assert values[0].startswith("好消息：有人取消了报名") and values[0].endswith("…")
    assert values[2] == "2026-03-01 10:00"  # TIMEZONE
    url = body["url"]
    assert url.startswith(web.base + "/n/")
    status, page = await web.browser().get(url[len(web.base):])
    assert status == 200 and "重阳节社区敬老院探访与文艺演出" in page and "（请带上身份证）" in page and "查看活动" in page
    assert 'name="viewport"' in page


async def test_a_forged_or_expired_notice_link_shows_nothing(web, clock) -> None:  # noqa: ANN001
    token = sign_notice(1, secret=TEST_KEY, now=clock.now)
    assert verify_notice(token, secret=TEST_KEY, now=clock.now) == 1
    assert verify_notice(token, secret="another-key-0123456789", now=clock.now) is None
    assert verify_notice(token, secret=TEST_KEY, now=datetime(2027, 1, 1, tzinfo=UTC)) is None
    forged = sign_notice(2, secret="another-key-0123456789", now=clock.now)
    for path in (f"/n/{forged}", "/n/garbage", f"/n/{token}"):  # delivery 1 does not exist either
        status, body = await web.browser().get(path)
        assert status == 404 and "不存在或链接已过期" in body


def test_template_fields_are_checked() -> None:
    assert parse_template_fields("thing1=title, time2=time") == {"thing1": "title", "time2": "time"}
    with pytest.raises(ValueError):
        parse_template_fields("thing1=content")


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatAPI]:
    async with FakeWeChatAPI() as fake:
        yield fake
