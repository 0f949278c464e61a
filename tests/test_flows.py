"""Declarative dialogs and typed payloads, through the real engine on both databases.

A small flow of its own (a pet-sitting sign-up with a conditional field, an optional field, a
parser that rejects input and a confirm step) exercises what every feature's flow gets for free.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from handlers.engine import Engine, default_routers
from handlers.flows import Answered, Field, Flow
from handlers.messages import Choice, Inbound
from handlers.payloads import MAX_ID, InvalidPayload, Payload, payload
from handlers.turn import FeatureRouter, Role, Turn
from handlers.validation import InvalidInput
from models import DialogState, Identity
from tests.helpers import make_coordinator


class PetDraft(BaseModel):
    name: str | None = None
    kind: str | None = None
    breed: str | None = None
    notes: str | None = None


def parse_name(_turn: Turn, text: str) -> str:
    if len(text) < 2:
        raise InvalidInput("short")
    return text


def parse_kind(_turn: Turn, text: str) -> str:
    if text not in ("dog", "cat"):
        raise InvalidInput("kind")
    return text


SAVED: list[PetDraft] = []


async def save(turn: Turn, draft: PetDraft) -> None:
    SAVED.append(draft)
    turn.say(f"saved {draft.name}")


@payload("pet")
class OpenPet(Payload):
    pet_id: int


def pet_router() -> FeatureRouter:
    router = FeatureRouter("pets")
    flow = Flow("pets", PetDraft, [
        Field("name", "name?", parse_name, label="name"),
        Field("kind", "kind?", parse_kind, label="kind",
              choices=lambda turn, draft: [Choice("dog", "a:dog"), Choice("cat", "a:cat")]),
        Field("breed", "breed?", lambda turn, text: text, label="breed", when=lambda d: d.kind == "dog"),
        Field("notes", "notes?", lambda turn, text: text, label="notes", optional=True),
    ], done=save, title="check:", errors={"short": "too short", "kind": "dog or cat"})
    flow.register(router)

    @router.command("pets", words=("pets", "宠物"))
    async def start(turn: Turn, _arg: str) -> None:
        await flow.start(turn)

    class AgeDraft(BaseModel):
        age: int | None = None

    def parse_age(turn: Turn, text: str) -> int:
        if text == "why":
            turn.say("ages are whole numbers")
            raise Answered
        if not text.isdigit():
            raise InvalidInput("age")
        return int(text)

    async def say_age(turn: Turn, draft: AgeDraft) -> None:
        turn.say(f"age {draft.age}")

    ages = Flow("ages", AgeDraft, [
        Field("age", "how old is your pet?", parse_age, reprompt=False,
              choices=lambda turn, draft: [Choice("one", "a:1")],
              confirm=lambda turn, draft: f"{draft.age} years" if draft.age >= 30 else None),
    ], done=say_age, confirm=False, errors={"age": "a number, please:"})
    ages.register(router)

    @router.command("age", words=("age",))
    async def start_age(turn: Turn, _arg: str) -> None:
        await ages.start(turn)

    @router.command("pet", payload=OpenPet)
    async def open_pet(turn: Turn, pet: OpenPet) -> None:
        turn.say(f"pet #{pet.pet_id}")

    @router.command("secret", words=("机密",), requires=Role.COORDINATOR)
    async def secret(turn: Turn, _arg: str) -> None:
        turn.say("the secret")

    return router


@pytest.fixture
def engine(sessions, options, clock) -> Engine:
    SAVED.clear()
    return Engine(sessions, options, clock=clock, routers=[*default_routers(), pet_router()])


class Chat:
    def __init__(self, engine: Engine, user: str = "p1") -> None:
        self.engine, self.user = engine, user

    async def __call__(self, text: str | None = None, *, payload: str | None = None) -> str:
        replies = await self.engine.handle(Inbound(channel="test", user_id=self.user, text=text, payload=payload))
        return "\n".join(reply.text for reply in replies)


async def test_a_flow_asks_in_order_re_asks_on_bad_input_and_skips_what_does_not_apply(engine: Engine) -> None:
    chat = Chat(engine)
    assert await chat("宠物") == "name?"
    assert await chat("x") == "too short\nname?"
    assert await chat("Rex") == "kind?"
    assert "dog or cat" in await chat("fish")
    assert await chat("2") == "notes?"  # a cat: no breed asked
    summary = await chat("跳过")
    assert summary.startswith("check:") and "name：Rex" in summary and "kind：cat" in summary
    assert "breed" not in summary
    assert await chat("确认提交") == "saved Rex"
    assert SAVED == [PetDraft(name="Rex", kind="cat")]


async def test_an_error_may_stand_in_for_the_question(engine: Engine) -> None:
    chat = Chat(engine)
    assert await chat("age") == "how old is your pet?"
    replies = await engine.handle(Inbound(channel="test", user_id=chat.user, text="old"))
    assert [r.text for r in replies] == ["a number, please:"] and [c.label for c in replies[0].choices] == ["one"]
    assert await chat("why") == "ages are whole numbers"  # answered by the parser, the question stays open
    assert await chat("3") == "age 3"


async def test_a_field_may_show_its_reading_and_ask_back_before_keeping_it(engine: Engine) -> None:
    chat = Chat(engine)
    await chat("age")
    replies = await engine.handle(Inbound(channel="test", user_id=chat.user, text="35"))
    assert replies[0].text == "35 years，对吗？" and [c.label for c in replies[0].choices] == ["对", "不对"]
    assert await chat("不对") == "好的，请重新输入。"  # the field again (its error stands in for the question)
    assert await chat("40") == "40 years，对吗？"
    assert await chat("41") == "41 years，对吗？"  # a new answer instead of 对/不对
    assert await chat("是的") == "age 41"


async def test_editing_a_field_returns_to_the_summary_and_asks_what_now_applies(engine: Engine) -> None:
    chat = Chat(engine)
    for answer in ("宠物", "Mia", "cat"):
        await chat(answer)
    await chat("no notes")
    await chat("修改")
    assert await chat("kind") == "kind?"
    assert await chat("dog") == "breed?"  # the change made the breed apply
    summary = await chat("柴犬")
    assert "kind：dog" in summary and "breed：柴犬" in summary and "notes：no notes" in summary
    assert await chat("放弃") == "好的，已放弃，没有保存任何信息。"
    assert SAVED == []


async def test_an_idle_flow_ends_and_its_draft_is_deleted(engine: Engine, sessions, clock) -> None:
    chat = Chat(engine)
    await chat("宠物")
    await chat("Rex")
    clock.advance(minutes=31)
    reply = await chat("cat")
    assert reply.startswith("上次没有完成的对话已超时结束")
    async with sessions() as session:
        identity = (await session.exec(Identity.__table__.select().where(Identity.external_id == "p1"))).one()
        state = await session.get(DialogState, identity.id)
        assert state is not None and state.flow is None and state.data == {}
    # within the timeout the dialog goes on
    await chat("宠物")
    clock.advance(minutes=29)
    assert await chat("Rex") == "kind?"


async def test_typed_payloads_are_bounds_checked_not_crashed_on(engine: Engine) -> None:
    chat = Chat(engine)
    assert await chat(payload=OpenPet(42).pack()) == "pet #42"
    for bad in ("pet:99999999999999999999", "pet:²", "pet:-1", "pet:1:2", "pet:"):
        reply = await chat(payload=bad)
        assert reply.startswith("这个选项已经过期了"), bad
    assert (await chat("/pet 7")) == "pet #7"


def test_payload_packing_checks_the_64_byte_limit() -> None:
    @payload("long")
    class Long(Payload):
        word: str

    with pytest.raises(ValueError):
        Long("x" * 80).pack()
    with pytest.raises(InvalidPayload):
        OpenPet.unpack(f"pet:{MAX_ID + 1}")
    assert OpenPet.unpack(f"pet:{MAX_ID}") == OpenPet(MAX_ID)


async def test_a_declared_role_is_checked_before_the_handler(engine: Engine, sessions) -> None:
    assert await Chat(engine, "nobody")("机密") == "抱歉，只有协调员或管理员可以这样做。"
    await make_coordinator(sessions, channel="test", user="boss", org="花家地社区")
    assert await Chat(engine, "boss")("机密") == "the secret"
