"""A resident asks for help: one sentence (or a category), the category confirmed, then only what is missing.

Address and phone are encrypted as soon as they are typed; the description never keeps the phone.
"""

from __future__ import annotations

import re

from common.i18n import _
from common.lang import to_simplified
from common.taxonomy import CATEGORIES
from common.text import normalize_width
from handlers.nlu import classify_category
from handlers.privacy import mask_phone
from handlers.requests import pairing, volunteer
from handlers.requests.request_form import FORM, RequestDraft, ask_category_list, ask_next, draft_of
from handlers.requests.resident import my_requests
from handlers.requests.shared import FLOW, cat_label, category_choices, pattern, word_set, words
from handlers.turn import FeatureRouter, Turn
from handlers.validation import InvalidInput, parse_mobile
from services import requests as service

router = FeatureRouter("requests.asking")

_PHONE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")


# ---- extraction: "ask only what is missing" ----------------------------------------------------------
def extract_community(text: str) -> str | None:
    match = pattern("community").search(to_simplified(text))
    if not match:
        return None
    value = match.group(1)
    trimmed = pattern("lead").sub("", value)
    return trimmed if len(trimmed) >= 4 else value


def extract_phone(text: str) -> str | None:
    for match in _PHONE.finditer(normalize_width(text)):
        try:
            return parse_mobile(match.group(0))
        except InvalidInput:
            continue
    return None


def extract_time(text: str) -> str | None:
    matches = list(pattern("time", re.IGNORECASE).finditer(text))
    if not matches:
        return None
    start, end = matches[0].start(), matches[0].end()
    for match in matches[1:]:  # join neighbouring pieces: 每周六 + 下午 + 3点
        if match.start() - end > 2:
            break
        end = match.end()
    return text[start:end].strip()


def _strip_phone(text: str, phone: str | None) -> str:
    """The description is shown to reviewers and kept unencrypted: the phone never stays in it."""
    if not phone:
        return text
    return _PHONE.sub(mask_phone(phone), normalize_width(text))


# ---- entry -----------------------------------------------------------------------------------------
@router.command("req", words=words("req"))
async def request_entry(turn: Turn, text: str) -> None:
    text = text.strip()
    if text and pattern("money", re.IGNORECASE).search(to_simplified(text)):
        await volunteer.money_reminder(turn, text)
        return
    if text and await pairing.maybe_visit(turn, text):
        return
    if text and pattern("status_question", re.IGNORECASE).search(to_simplified(text)):
        await my_requests(turn, "")
        return
    turn.state.data = {}
    draft = RequestDraft()
    if not text:
        choices = category_choices(turn)
        if await service.requests_of_resident(turn.session, resident_id=turn.person.id, limit=1):
            choices.append(turn.choice(_("查看我的求助"), "myreq"))
        FORM.save(turn, draft)
        turn.ask(FLOW, "category",
                 _("需要什么帮助？请选择服务类别，或直接用一句话描述，例如「家里老人一个人住，想请人每周来陪他聊天」。"),
                 choices)
        return
    _absorb_description(turn, draft, text)
    draft.category = classify_category(text)
    FORM.save(turn, draft)
    ask_category_confirm(turn, draft)


def _absorb_description(turn: Turn, draft: RequestDraft, text: str) -> None:
    """What the sentence says: the description (without the phone), and community, time, phone if given."""
    phone = extract_phone(text)
    draft.description = _strip_phone(text, phone)[:1000]
    community = extract_community(text)
    if community and not draft.community:
        draft.community = community
    when = extract_time(text)
    if when and not draft.preferred_time:
        draft.preferred_time = when
    if phone and not draft.phone_enc:
        draft.phone_enc, draft.phone_masked = turn.cipher.encrypt(phone), mask_phone(phone)


def ask_category_confirm(turn: Turn, draft: RequestDraft) -> None:
    label = cat_label(turn, draft.category)
    turn.ask(FLOW, "confirm_category",
             _("收到你的求助。我理解这属于「{label}」，对吗？", label=label),
             [turn.choice(_("对"), "a:yes"), turn.choice(_("换一个类别"), "a:change")])


def _category_answer(text: str) -> str | None:
    code = text.removeprefix("a:cat:") if text.startswith("a:cat:") else None
    return code if code in CATEGORIES else None


@router.step(FLOW, "category")
async def on_category(turn: Turn, text: str) -> None:
    code = _category_answer(text)
    if code is not None:
        draft = draft_of(turn)
        draft.category = code
        FORM.save(turn, draft)
        turn.ask(FLOW, "description", _("好的，「{value}」。请用一句话说说具体需要什么帮助：", value=cat_label(turn, code)))
        return
    if text.startswith("a:"):
        ask_category_list(turn)
        return
    await request_entry(turn, text)


@router.step(FLOW, "description")
async def on_description(turn: Turn, text: str) -> None:
    if len(text.strip()) < 2:
        turn.ask(FLOW, "description", _("请多写几个字，说明需要什么帮助："))
        return
    draft = draft_of(turn)
    _absorb_description(turn, draft, text.strip())
    await ask_next(turn, draft)


@router.step(FLOW, "confirm_category")
async def on_confirm_category(turn: Turn, text: str) -> None:
    folded = to_simplified(text).strip().lower()
    draft = draft_of(turn)
    if text == "a:yes" or folded in word_set("yes_words"):
        await ask_next(turn, draft)
    elif text == "a:change" or folded in word_set("no_words"):
        ask_category_list(turn)
    else:
        ask_category_confirm(turn, draft)


@router.step(FLOW, "pick_category")
async def on_pick_category(turn: Turn, text: str) -> None:
    code = _category_answer(text)
    if code is None:
        ask_category_list(turn)
        return
    draft = draft_of(turn)
    draft.category = code
    await ask_next(turn, draft)
