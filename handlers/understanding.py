"""What a free-text message means, and asking back when that is not clear.

The engine hands every message no command, button or open dialog took to :func:`route`. The
classifier's intent runs its command; when its confidence is below ``ASK_BELOW`` the assistant asks
instead ("你是想：1. 找志愿者帮忙 2. 报名当志愿者 3. 查活动"), keeping the message (encrypted) in the
dialog state until a button is chosen: the choice proceeds as if the message had been understood so.
Nothing is learned from the answer. Anything typed instead of a choice is a new message.

Hours questions that name a certificate or a correction go to those commands when the deployment has
them (``certificate``, ``correction``), else to the hours summary, which answers star / period /
activity questions with that figure first (``handlers.hours``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from common.i18n import N_, Msg, _
from common.lang import to_simplified
from handlers.hours_questions import period_words
from handlers.nlu import Classification, classify
from handlers.turn import Turn
from handlers.words import load_words
from services.requests.pairings import parse_visit_line

__all__ = ["ASK_BELOW", "FLOW", "STEP", "answer", "route"]

FLOW, STEP = "nluask", "pick"
ASK_BELOW = 0.6  # the intent's probability under which the assistant asks
OFFER_ABOVE = 0.05  # an intent is offered as a button when at least this likely ("other" never is)
MAX_OPTIONS = 3
OTHER_CONTENDER = 0.3  # when small talk is likeliest, ask only if another intent is at least this likely

Run = Callable[[str, str], Awaitable[None]]  # run a command by name with an argument
Has = Callable[[str], bool]  # is a command of that name registered

INTENT_LABELS: dict[str, Msg] = {
    "request_service": N_("找志愿者帮忙"),
    "register": N_("报名当志愿者"),
    "activities": N_("查活动"),
    "hours": N_("查服务时长"),
    "help": N_("看看能做什么"),
    "other": N_("只是聊聊"),
}
INTENT_COMMANDS = {"register": "reg", "activities": "acts", "hours": "hrs", "help": "help"}

_ENGINE_WORDS = load_words("engine_words")
LEAVE_WORDS = re.compile(_ENGINE_WORDS["leave_pattern"])
_WORDS = load_words("understanding_words")
CERTIFICATE = re.compile(_WORDS["certificate"])
CORRECTION = re.compile(_WORDS["correction"])


def options(result: Classification) -> list[str]:
    """The intents worth offering, most likely first; empty when the classifier is sure enough."""
    if result.confidence >= ASK_BELOW or not result.alternatives:
        return []
    offered = [(name, p) for name, p in result.alternatives if p >= OFFER_ABOVE and name != "other"][:MAX_OPTIONS]
    if len(offered) < 2 or (result.intent == "other" and offered[0][1] < OTHER_CONTENDER):
        return []  # small talk already answers "not sure" with what the assistant can do
    return [name for name, _p in offered]


async def route(turn: Turn, text: str, run: Run, has: Has) -> None:
    """Understand a free-text message: run what it asks for, or ask which of two or three it means."""
    result = classify(text)
    offered = options(result)
    if offered and parse_visit_line(text) is not None:
        # a paired volunteer's one-line visit log (「看望王奶奶 24 小时」) is a format, not a guess: the request
        # path logs it (handlers/requests/asking.py) before it would start a request
        await proceed(turn, "request_service", text, run, has)
        return
    if offered:
        turn.state.data = {"text": turn.cipher.encrypt(text)}
        turn.ask(FLOW, STEP, _("你是想："), [turn.choice(INTENT_LABELS[name], "a:" + name) for name in offered])
        return
    await proceed(turn, result.intent, text, run, has)


async def answer(turn: Turn, text: str, run: Run, has: Has) -> None:
    """The answer to "你是想…": a chosen intent proceeds with the kept message; anything else is new."""
    sealed = turn.state.data.get("text")
    turn.end_flow()
    chosen = text.removeprefix("a:") if text.startswith("a:") else None
    if chosen in INTENT_LABELS and isinstance(sealed, str):
        await proceed(turn, chosen, turn.cipher.decrypt(sealed), run, has)
        return
    if chosen is not None:  # an old button
        await run("help", "")
        return
    await route(turn, text, run, has)


async def proceed(turn: Turn, intent: str, text: str, run: Run, has: Has) -> None:
    simplified = to_simplified(text).lower()
    if intent == "request_service":
        await run("req", text)
    elif intent == "activities" and LEAVE_WORDS.search(simplified):
        await run("mine", "")
    elif intent == "activities" and has("findacts"):  # "周末的助老活动": the activities it names
        await run("findacts", text)
    elif intent == "hours":
        if CERTIFICATE.search(simplified) and has("certificate"):
            await run("certificate", period_words(text))  # "" is the whole history
        elif CORRECTION.search(simplified) and has("correction"):
            await run("correction", "")
        else:
            await run("hrs", text)
    elif intent in INTENT_COMMANDS:
        await run(INTENT_COMMANDS[intent], "")
    else:
        await run("smalltalk", text)
