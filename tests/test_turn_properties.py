"""Property tests: whatever a person types, presses or a platform sends, a turn answers and never crashes.

Arbitrary text (CJK, full-width digits, superscripts, huge numbers, control characters, very long),
arbitrary payloads (``name:arg`` for every registered command with random arguments) and events go
through the real Engine on the console channel, on SQLite and PostgreSQL, as a plain user, a
registered volunteer and a coordinator, each example starting from some open dialog. Each turn must
return at least one reply (events may be silent), no exception may escape, and no turn may need the
engine's safety net (an unexpected exception logged as ``turn … failed``): the net is for bugs we do
not know of, so a property that trips it has found one.

``PROPERTY_EXAMPLES=5000`` runs a larger search (default 150 examples per property and database).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.console import ConsoleChannel
from handlers.engine import Engine, default_routers
from handlers.messages import Inbound, Location
from tests.helpers import add_activity, make_coordinator, register

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "150"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("PROPERTY_EXAMPLES"),  # CI: the same inputs every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

ROUTERS = default_routers()
COMMAND_NAMES = sorted({name for router in ROUTERS for name in router.commands} | {"a", "start", "zz"})
WORDS = sorted({word for router in ROUTERS for word in router.words})
ROLES = ("plain", "volunteer", "coordinator")
# what each example types first: nothing, or a command that opens a dialog (some refuse a plain user)
OPENERS = ("", "注册", "发布活动", "我要求助", "记录时长", "/bc", "/obsnew", "/pair", "/withdraw", "/edit", "活动", "帮助")

# ---- inputs -----------------------------------------------------------------------------------
TRICKY = "0123456789０１２３４５６７８９²³¹⁰½①٣१०一二十百千万两零〇-+.,:;_#@/ \t\n\r\x00\x01\x7f\u200b\u202e\ufeff" \
         "：，、。！？（）【】「」ＡＢａｂ中文繁體志愿时长取消确认放弃修改跳过🙂👍🏽\U0001F600\udcff"
numbers = st.one_of(
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.sampled_from(["0", "-1", "2147483647", "2147483648", "9223372036854775807", "9223372036854775808",
                     "99999999999999999999", "1e999", "nan", "inf", "-0", "00000000001", "²", "１２", "٣"]),
)
small_text = st.one_of(st.text(max_size=40), st.text(alphabet=TRICKY, max_size=40), numbers)
long_text = st.builds(lambda chunk, times: chunk * times, st.text(alphabet=TRICKY, min_size=1, max_size=3),
                      st.integers(min_value=500, max_value=3000))
typed_command = st.builds(lambda word, arg: f"{word} {arg}".strip(), st.sampled_from(WORDS + [f"/{n}" for n in COMMAND_NAMES]),
                          st.one_of(small_text, st.builds("_".join, st.lists(small_text, max_size=3))))
texts = st.one_of(small_text, typed_command, long_text, st.sampled_from(["1", "2", "3", "9", "取消", "跳过", "是", "确认"]))
arguments = st.one_of(small_text, st.builds(":".join, st.lists(small_text, min_size=1, max_size=4)),
                      st.builds(lambda k, v: f"{k}_{v}", st.sampled_from(["act", "checkin", "checkout", "x"]), small_text))
payloads = st.builds(lambda name, arg: f"{name}:{arg}" if arg is not None else name,
                     st.sampled_from(COMMAND_NAMES), st.none() | arguments)
coordinates = st.floats(allow_nan=True, allow_infinity=True)
events = st.builds(
    lambda name, payload, location: ("event", name, payload, location),
    st.sampled_from(["subscribe", "unsubscribe", "scan", "menu", "location", "click", "view", ""]),
    st.none() | payloads | small_text,
    st.none() | st.builds(Location, coordinates, coordinates),
)
actions = st.one_of(st.tuples(st.just("text"), texts), st.tuples(st.just("payload"), payloads | small_text), events)


# ---- one world per test: a coordinator with an activity, a registered volunteer, a plain user ----
@dataclass
class World:
    core: Engine
    users: dict[str, str]
    counts: Counter[str] = field(default_factory=Counter)


class _Failures(logging.Handler):
    """Collects the engine's safety-net lines (ERROR on handlers.engine)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def world(core: Engine, sessions, clock) -> AsyncIterator[World]:
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1))
    await register(ConsoleChannel(core, user="vol"), "韩梅梅", serial=80)
    world = World(core, {"plain": "someone", "volunteer": "vol", "coordinator": "coord"})
    yield world
    print(f"\nproperty turns: {dict(world.counts)}")


@pytest.fixture
def failures() -> AsyncIterator[_Failures]:
    handler = _Failures()
    logger = logging.getLogger("handlers.engine")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def inbound_of(user: str, action: tuple) -> Inbound:
    if action[0] == "text":
        return Inbound(channel="console", user_id=user, text=action[1])
    if action[0] == "payload":
        return Inbound(channel="console", user_id=user, payload=action[1])
    _kind, event, payload, location = action
    return Inbound(channel="console", user_id=user, event=event, payload=payload, location=location)


async def take_turns(world: World, failures: _Failures, role: str, opener: str, steps: list[tuple]) -> None:
    user = world.users[role]
    if opener:
        steps = [("text", opener), *steps]
    for action in steps:
        inbound = inbound_of(user, action)
        world.counts[action[0]] += 1
        replies = await world.core.handle(inbound)  # an exception escaping here fails the property
        assert not failures.records, f"the safety net caught {failures.records[0].getMessage()} for {inbound!r}"
        if action[0] != "event":
            assert replies, f"no reply to {inbound!r}"
            assert all(reply.text.strip() for reply in replies), f"an empty reply to {inbound!r}"


@PROPERTY
@given(role=st.sampled_from(ROLES), opener=st.sampled_from(OPENERS), steps=st.lists(st.tuples(st.just("text"), texts), min_size=1, max_size=3))
async def test_any_text_gets_an_answer(world: World, failures: _Failures, role: str, opener: str, steps: list[tuple]) -> None:
    await take_turns(world, failures, role, opener, steps)


@PROPERTY
@given(role=st.sampled_from(ROLES), opener=st.sampled_from(OPENERS),
       steps=st.lists(st.tuples(st.just("payload"), payloads | small_text), min_size=1, max_size=3))
async def test_any_payload_gets_an_answer(world: World, failures: _Failures, role: str, opener: str, steps: list[tuple]) -> None:
    await take_turns(world, failures, role, opener, steps)


@PROPERTY
@given(role=st.sampled_from(ROLES), opener=st.sampled_from(OPENERS), steps=st.lists(actions, min_size=1, max_size=4))
async def test_any_mix_of_texts_payloads_and_events_never_crashes(world: World, failures: _Failures, role: str, opener: str,
                                                                  steps: list[tuple]) -> None:
    await take_turns(world, failures, role, opener, steps)
