"""Talk to the real ``/wechat`` endpoint the way WeChat does: signed (and in safe mode encrypted) XML
over HTTP on loopback, against the real app, the core on the test database and a fake WeChat API."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select
from wechatpy.crypto import WeChatCrypto

from bot.admission import Admission
from bot.app import create_app
from bot.channels.wechat import channel as wechat
from bot.config import Settings
from bot.runtime import Runtime
from handlers.engine import Engine, Handled
from handlers.messages import Inbound
from models.db import SessionFactory
from models.inbound_queue import InboundQueued
from tests.conftest import TEST_KEY
from tests.fakes.wechat_api import FakeWeChatAPI

TOKEN = "wechat-test-token"
ACCOUNT = "gh_volunteer_test"
# official WXBizMsgCrypt sample (crypto_vector1.txt): the safe-mode settings of these tests
VECTOR_TOKEN = "spamtest"
VECTOR_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
VECTOR_APP_ID = "wx2c2769f8efd9abc2"
_msg_ids = itertools.count(7_000_000_000_000_000_000)
# nonces unique across harnesses: the endpoint remembers (timestamp, nonce) in the database, and two
# harnesses on one database within one second must not look like a replay to each other
_nonces = itertools.count(100000)


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_xml(openid: str, content: str, *, msg_id: int | None = None, create_time: int | None = None) -> str:
    msg_id = next(_msg_ids) if msg_id is None else msg_id
    return (f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content><MsgId>{msg_id}</MsgId></xml>")


def event_xml(openid: str, event: str, key: str | None = None, *, create_time: int | None = None) -> str:
    key_xml = f"<EventKey>{cdata(key)}</EventKey>" if key is not None else ""
    ticket = "<Ticket><![CDATA[TICKET]]></Ticket>" if event in ("SCAN", "subscribe") and key else ""
    return (f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(openid)}</FromUserName>"
            f"<CreateTime>{create_time or next(_event_times)}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event>{cdata(event)}</Event>{key_xml}{ticket}</xml>")


_event_times = itertools.count(int(time.time()))


def url_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


@dataclass
class Answer:
    status: int
    body: str
    content: str | None  # the reply's Content; None for "success" or an error
    reply: dict[str, str] | None  # the reply XML's fields (decrypted in safe mode)


class WeChatHarness:
    """The app with the WeChat channel on, a TestClient, and a way to post like WeChat."""

    def __init__(self, core: Engine, sessions: SessionFactory, api: FakeWeChatAPI, *, safe: bool = False,
                 reply_deadline: float = wechat.REPLY_DEADLINE_SECONDS, clock: Callable[[], float] = time.time,
                 template_id: str = "") -> None:
        self.safe = safe
        self.clock = clock
        self.token = VECTOR_TOKEN if safe else TOKEN
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url="sqlite+aiosqlite:///unused.db", id_encryption_key=TEST_KEY,
            wechat_token=self.token, wechat_app_id=api.app_id, wechat_app_secret=api.secret,
            wechat_encoding_aes_key=VECTOR_AES_KEY if safe else "", wechat_api_base=api.base_url,
            wechat_mp_base=api.base_url, wechat_template_id=template_id,
        )
        self.crypto = WeChatCrypto(self.token, VECTOR_AES_KEY, api.app_id) if safe else None
        self.runtime = Runtime(settings=self.settings, db=sessions.kw["bind"], sessions=sessions, core=core)
        self.reply_deadline = reply_deadline
        self.api = api

    async def __aenter__(self) -> WeChatHarness:
        async def setup(app, runtime):  # noqa: ANN001, ANN202
            await wechat.setup(app, runtime, reply_deadline=self.reply_deadline, clock=self.clock)

        self.app = await create_app(self.runtime, channels=[setup])
        self.client = TestClient(TestServer(self.app, host="127.0.0.1"))
        await self.client.start_server()
        self.channel = self.app[wechat.WECHAT_CHANNEL_KEY]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.channel.wait_idle()
        await self.client.close()

    def query(self, body: str | None = None, *, timestamp: int | None = None, nonce: str | None = None,
              forge: bool = False) -> dict[str, str]:
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        nonce = nonce or str(next(_nonces))
        signature = url_signature(self.token, ts, nonce)
        query = {"signature": "0" * 40 if forge else signature, "timestamp": ts, "nonce": nonce,
                 "openid": "ignored"}
        if self.safe and body is not None:
            encrypt = xmltodict.parse(body)["xml"]["Encrypt"]
            msg_signature = hashlib.sha1("".join(sorted([self.token, ts, nonce, encrypt])).encode()).hexdigest()
            query.update(encrypt_type="aes", msg_signature="0" * 40 if forge else msg_signature)
        return query

    def wrap(self, plain_xml: str, *, timestamp: int | None = None, nonce: str = "1320562132") -> str:
        """What WeChat posts: the plaintext itself, or in safe mode the <Encrypt> envelope."""
        if not self.safe:
            return plain_xml
        assert self.crypto is not None
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        envelope = xmltodict.parse(self.crypto.encrypt_message(plain_xml, nonce, ts))["xml"]
        return (f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName>"
                f"<Encrypt>{cdata(envelope['Encrypt'])}</Encrypt></xml>")

    async def post(self, plain_xml: str, *, timestamp: int | None = None, raw: bool = False,
                   query: dict[str, str] | None = None) -> Answer:
        body = plain_xml if raw else self.wrap(plain_xml, timestamp=timestamp)
        params = query if query is not None else self.query(body, timestamp=timestamp)
        response = await self.client.post("/wechat", params=params, data=body.encode("utf-8"),
                                          headers={"Content-Type": "text/xml"})
        text = await response.text()
        return self.answer(response.status, text)

    def answer(self, status: int, text: str) -> Answer:
        if status != 200 or text == "success":
            return Answer(status, text, None, None)
        fields = xmltodict.parse(text)["xml"]
        if self.safe:
            assert self.crypto is not None
            plain = self.crypto.decrypt_message(text, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"])
            fields = xmltodict.parse(plain)["xml"]
        return Answer(status, text, fields.get("Content"), dict(fields))

    async def say(self, openid: str, content: str, *, msg_id: int | None = None) -> str:
        answer = await self.post(text_xml(openid, content, msg_id=msg_id))
        assert answer.status == 200, answer.body
        return answer.content or ""

    async def event(self, openid: str, event: str, key: str | None = None) -> Answer:
        answer = await self.post(event_xml(openid, event, key))
        assert answer.status == 200, answer.body
        return answer


class SlowEngine(Engine):
    """The real core, each turn held back by ``delay`` seconds (a slowed core, not a fake one)."""

    def __init__(self, *args: Any, delay: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay

    async def handle_delivery(self, inbound: Inbound) -> Handled:  # what the channels call
        await asyncio.sleep(self.delay)
        return await super().handle_delivery(inbound)


async def overloaded(wx: WeChatHarness) -> Admission:
    """Admission refuses every new turn (the process is overloaded) and the drain is stopped: messages stay queued."""
    await wx.channel.inbox.stop()
    admission = wx.channel.admission = Admission(channel="wechat", concurrency=2, max_wait=30.0, max_queue=0,
                                                 metrics=wx.runtime.metrics)
    return admission


async def queued_rows(sessions: SessionFactory) -> list[InboundQueued]:
    """The inbound queue's rows, oldest first."""
    async with sessions() as session:
        return list((await session.exec(select(InboundQueued).order_by(InboundQueued.id))).all())

