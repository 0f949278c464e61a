"""Fuzzing both real endpoints (issue 10): mutated signed WeChat XML (plaintext and safe mode, real
wechatpy crypto) and mutated Telegram updates (real aiogram dispatch, fake Bot API) over loopback.
Whatever arrives, the answer is never a 5xx and the endpoint still answers a good message afterwards.

CI runs ``FUZZ_EXAMPLES`` (default 100) inputs per endpoint and mode, derandomized, no example
database. By hand: ``FUZZ_EXAMPLES=20000 pytest tests/test_endpoint_fuzz.py -k sqlite -s`` prints
the counts (inputs tried, status codes seen).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.telegram_api import FakeTelegramAPI, callback_update, location_update, message_update
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.telegram_harness import SECRET, TelegramHarness, texts
from tests.wechat_harness import ACCOUNT, VECTOR_APP_ID, WeChatHarness, cdata

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))

# ---- WeChat messages as lists of (tag, value) fields ------------------------------------------
OPENIDS = ("o_fuzz_a", "o_fuzz_b", "oyORnuP8q7ou2gfYjqLzSIWZf0rs")
TEMPLATES: list[list[tuple[str, str]]] = [
    [("MsgType", "text"), ("Content", "帮助"), ("MsgId", "1")],
    [("MsgType", "text"), ("Content", "注册")],  # no MsgId
    [("MsgType", "event"), ("Event", "CLICK"), ("EventKey", "hrs")],
    [("MsgType", "event"), ("Event", "subscribe"), ("EventKey", "qrscene_checkin_x"), ("Ticket", "T")],
    [("MsgType", "event"), ("Event", "SCAN"), ("EventKey", "checkin_abc"), ("Ticket", "T")],
    [("MsgType", "event"), ("Event", "LOCATION"), ("Latitude", "39.9"), ("Longitude", "116.4"), ("Precision", "1")],
    [("MsgType", "event"), ("Event", "TEMPLATESENDJOBFINISH"), ("MsgID", "200163836"), ("Status", "success")],
    [("MsgType", "event"), ("Event", "unsubscribe")],
    [("MsgType", "location"), ("Location_X", "39.9"), ("Location_Y", "116.4"), ("Scale", "20"), ("Label", "x"),
     ("MsgId", "2")],
    [("MsgType", "voice"), ("MediaId", "m"), ("Format", "amr"), ("Recognition", "我的时长"), ("MsgId", "3")],
    [("MsgType", "image"), ("PicUrl", "http://x/y.jpg"), ("MediaId", "m"), ("MsgId", "4")],
]
TAGS = ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "MsgID", "Event", "EventKey",
        "Latitude", "Location_X", "Recognition", "Status", "Encrypt", "xml")
VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "0", "-1", "1e400", "nan", "inf", str(2**63), str(2**64), "o" * 129, "o" * 5000,
                     "<a>x</a>", "<a><b>1</b></a>", "&amp;", "&#0;", "&#x1F600;", "&lol;", "]]>", "\x00",
                     "event", "text", "CLICK", "subscribe", "TEMPLATESENDJOBFINISH", "<a>" * 1100 + "</a>" * 1100]),
)


def raw_or_cdata(value: str, use_cdata: bool) -> str:
    return cdata(value) if use_cdata else value


@st.composite
def wechat_messages(draw: st.DrawFn) -> str:
    fields = [("ToUserName", ACCOUNT), ("FromUserName", draw(st.sampled_from(OPENIDS))),
              ("CreateTime", str(draw(st.integers(min_value=1_700_000_000, max_value=1_900_000_000))))]
    fields += draw(st.sampled_from(TEMPLATES))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        op = draw(st.sampled_from(["drop", "duplicate", "set", "add"]))
        if op == "add" or not fields:
            fields.insert(draw(st.integers(0, len(fields))), (draw(st.sampled_from(TAGS)), draw(VALUES)))
            continue
        index = draw(st.integers(0, len(fields) - 1))
        if op == "drop":
            del fields[index]
        elif op == "duplicate":
            fields.insert(index, fields[index])
        else:
            fields[index] = (fields[index][0], draw(VALUES))
    use_cdata = draw(st.booleans())
    xml = "<xml>" + "".join(f"<{tag}>{raw_or_cdata(value, use_cdata)}</{tag}>" for tag, value in fields) + "</xml>"
    if draw(st.integers(0, 4)) == 0:  # character-level damage
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(xml)))
            xml = xml[:at] + draw(st.text(max_size=3)) + xml[at + draw(st.integers(0, 3)):]
    return xml


STATUSES: dict[str, Counter[int]] = {}


def report(name: str) -> None:
    statuses = STATUSES.get(name, Counter())
    print(f"\nfuzz {name}: {sum(statuses.values())} inputs, status codes {dict(sorted(statuses.items()))}, "
          f"5xx: {sum(n for s, n in statuses.items() if s >= 500)}")
    assert sum(statuses.values()) >= min(EXAMPLES, 50)


@pytest.fixture
async def wechat_api() -> AsyncIterator[FakeWeChatAPI]:
    async with FakeWeChatAPI(app_id=VECTOR_APP_ID) as fake:
        yield fake


@pytest.fixture(params=["plaintext", "safe"])
async def wx(request: pytest.FixtureRequest, core, sessions, wechat_api) -> AsyncIterator[WeChatHarness]:  # noqa: ANN001
    """One server for every example of a test; afterwards it must still answer a good message."""
    name = f"wechat {request.param}"
    STATUSES[name] = Counter()
    async with WeChatHarness(core, sessions, wechat_api, safe=request.param == "safe") as harness:
        harness.fuzz_name = name  # type: ignore[attr-defined]
        yield harness
        answer = await harness.post(
            f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>o_after</FromUserName>"
            f"<CreateTime>{int(harness.clock())}</CreateTime><MsgType>text</MsgType>"
            "<Content>帮助</Content><MsgId>77</MsgId></xml>")
        assert answer.status == 200 and "我是志愿助手" in (answer.content or "")
    report(name)


@FUZZ
@given(xml=wechat_messages(), damage_envelope=st.integers(0, 9), cut=st.integers(0, 400))
async def test_mutated_signed_wechat_messages_never_get_a_5xx(wx: WeChatHarness, xml: str, damage_envelope: int,
                                                              cut: int) -> None:
    body = wx.wrap(xml)
    query = wx.query(body)
    if wx.safe and damage_envelope == 0:  # the signed envelope itself cut short after signing
        body = body[:cut] + body[cut + 7:]
    answer = await wx.post(body, raw=True, query=query)
    STATUSES[wx.fuzz_name][answer.status] += 1  # type: ignore[attr-defined]
    assert answer.status < 500, (xml[:300], answer.body[:300])


# ---- Telegram updates ---------------------------------------------------------------------------
JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(max_size=30),
    st.sampled_from(["/start act_1", "/help", "help", "join:1", "x" * 5000, "private", "group", "supergroup"]),
)
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=3)), max_leaves=8)
UPDATE_KEYS = ("update_id", "message", "callback_query", "from", "chat", "id", "text", "data", "type", "date",
               "location", "latitude", "entities", "offset", "length", "language_code", "message_id",
               "reply_to_message", "my_chat_member")


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def telegram_bodies(draw: st.DrawFn) -> bytes:
    update_id = draw(st.integers(min_value=1, max_value=10**6))
    user = draw(st.sampled_from([7001, 7002, 7003]))
    update = draw(st.sampled_from([
        message_update(update_id, user_id=user, text=draw(st.sampled_from(["/help", "帮助", "注册", "/start x"]))),
        callback_update(update_id, user_id=user, data=draw(st.sampled_from(["help", "hrs", "join:1", "acts"]))),
        location_update(update_id, user_id=user, latitude=39.9, longitude=116.4),
        message_update(update_id, user_id=user, text="@volunteer_test_bot 活动", chat_id=-100, chat_type="supergroup"),
    ]))
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(_paths(update)))
        parent = update
        for step in path[:-1]:
            parent = parent[step]
        op = draw(st.sampled_from(["set", "delete", "add"]))
        if not path or op == "add":
            target = parent[path[-1]] if path else update
            if isinstance(target, dict):
                target[draw(st.sampled_from(UPDATE_KEYS))] = draw(JSON_VALUES)
            continue
        if op == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    body = json.dumps(update, ensure_ascii=draw(st.booleans())).encode("utf-8")
    if draw(st.integers(0, 4)) == 0:  # byte-level damage
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(body)))
            body = body[:at] + draw(st.binary(max_size=3)) + body[at + draw(st.integers(0, 3)):]
    return body


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def tg(telegram_api, core, sessions, db_url) -> AsyncIterator[TelegramHarness]:  # noqa: ANN001
    STATUSES["telegram"] = Counter()
    async with TelegramHarness(telegram_api, core, sessions, db_url, webhook=True) as harness:
        yield harness
        await harness.channel.updates.wait(idle=True)
        # (harness.say counts finished updates, and the fuzzed ones finished too: wait for the reply itself)
        response = await harness.post(message_update(10**7, user_id=7999, text="/help"))
        assert response.status == 200
        await telegram_api.wait_for_sent(7999)
        assert "我是志愿助手" in texts(telegram_api.sent(7999))
    report("telegram")


@FUZZ
@given(body=telegram_bodies(), header=st.one_of(st.just(SECRET), st.binary(max_size=30)))
async def test_mutated_telegram_updates_never_get_a_5xx(tg: TelegramHarness, body: bytes, header: str | bytes) -> None:
    assert tg.client is not None
    # raw header bytes (latin-1 on the wire); control characters are refused by the client itself
    secret = header if isinstance(header, str) else "".join(
        chr(b) for b in header if b >= 0x20 and b != 0x7F).strip()
    response = await tg.client.post("/telegram", data=body, headers={
        "X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"})
    STATUSES["telegram"][response.status] += 1
    assert response.status < 500, (body[:300], await response.text())
