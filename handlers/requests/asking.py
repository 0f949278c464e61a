"""A resident asks for help: one sentence (or a category), the category confirmed, then only what is missing.

This module understands the first sentence and holds the form's opening questions (category,
description, the guessed category confirmed or another picked); the form itself, its entry and
its summary are in ``request_form``.

Address and phone are encrypted as soon as they are typed; the description keeps neither: both are
masked in it (``common.masking.scrub``) and moved to the encrypted fields when those are empty.
"""

from __future__ import annotations

import re

from common.i18n import Text, _
from common.lang import to_simplified
from common.masking import scrub
from common.taxonomy import CATEGORIES
from handlers.flows import Again, Answered, Field
from handlers.messages import Choice
from handlers.nlu import rank_categories
from handlers.privacy import mask_phone
from handlers.requests import pairing, volunteer
from handlers.requests.resident import my_requests
from handlers.requests.shared import RequestDraft, cat_label, category_choices, pattern, word_set
from handlers.turn import Turn
from handlers.validation import InvalidInput


# ---- extraction: "ask only what is missing" ----------------------------------------------------------
def extract_community(text: str) -> str | None:
    match = pattern("community").search(to_simplified(text))
    if not match:  # "I live in Huajiadi Community": matched to 花家地社区 by pinyin (services.requests)
        english = pattern("community_en").search(text)
        return english.group(1) if english else None
    value = match.group(1)
    trimmed = pattern("lead").sub("", value)
    return trimmed if len(trimmed) >= 4 else value


def extract_time(text: str) -> str | None:
    """The preferred time as typed (繁體 read through 简体: 週六下午 is 周六下午)."""
    simplified = to_simplified(text)
    source = text if len(simplified) == len(text) else simplified
    matches = list(pattern("time", re.IGNORECASE).finditer(simplified))
    if not matches:
        return None
    start, end = matches[0].start(), matches[0].end()
    for match in matches[1:]:  # join neighbouring pieces: 每周六 + 下午 + 3点
        if match.start() - end > 2:
            break
        end = match.end()
    return source[start:end].strip()


# ---- the sentence ----------------------------------------------------------------------------------
async def not_a_request(turn: Turn, text: str) -> bool:
    """A sentence about money, a visit or the status of one's requests is answered as such."""
    if pattern("money", re.IGNORECASE).search(to_simplified(text)):
        await volunteer.money_reminder(turn, text)
        return True
    if await pairing.maybe_visit(turn, text):
        return True
    if pattern("status_question", re.IGNORECASE).search(to_simplified(text)):
        await my_requests(turn, "")
        return True
    return False


CATEGORY_ASK_BELOW = 0.6  # the category's probability under which the resident is asked which it is
CATEGORY_OFFER_ABOVE = 0.1
MORE = "more"


def understand(turn: Turn, draft: RequestDraft, text: str) -> None:
    """A sentence: its slots, and a category guessed from it, to be confirmed, or, when the classifier
    is unsure, the two or three likeliest offered to choose from."""
    _absorb_description(turn, draft, text)
    ranked = rank_categories(text)
    draft.category = ranked[0][0]
    offered = [code for code, p in ranked[:3] if p >= CATEGORY_OFFER_ABOVE]
    if ranked[0][1] < CATEGORY_ASK_BELOW and len(offered) >= 2:
        draft.candidates, draft.guessed = offered, False
    else:
        draft.candidates, draft.guessed = [], True


def _absorb_description(turn: Turn, draft: RequestDraft, text: str) -> None:
    """What the sentence says: the description (phone and address masked), and community, time, phone, address."""
    found = scrub(text)
    draft.description = found.text[:1000]
    community = extract_community(text)
    if community and not draft.community:
        draft.community = community
    when = extract_time(text)
    if when and not draft.preferred_time:
        draft.preferred_time = when
    if found.phone and not draft.phone_enc:
        draft.phone_enc, draft.phone_masked = turn.cipher.encrypt(found.phone), mask_phone(found.phone)
    if found.address and not draft.address_enc:
        draft.address_enc = turn.cipher.encrypt(found.address)


# ---- the opening questions of the form (handlers/requests/request_form.py) -------------------------------
def _category_answer(text: str) -> str | None:
    code = text.removeprefix("cat:") if text.startswith("cat:") else None
    return code if code in CATEGORIES else None


async def parse_category(turn: Turn, text: str, draft: RequestDraft) -> str:
    """The opening question: a category button, or a sentence understood as the whole request."""
    code = _category_answer(text)
    if code is not None:
        return code
    if text.startswith("cat:"):
        raise InvalidInput("category")
    if await not_a_request(turn, text):
        raise Answered
    understand(turn, draft, text)
    return draft.category


def parse_description(turn: Turn, text: str, draft: RequestDraft) -> str:
    if len(text.strip()) < 2:
        raise InvalidInput("description")
    draft.redo = False
    _absorb_description(turn, draft, text.strip())
    return draft.description


def parse_category_confirmed(_turn: Turn, text: str) -> bool:
    folded = to_simplified(text).strip().lower()
    if text == "yes" or folded in word_set("yes_words"):
        return True
    if text == "change" or folded in word_set("no_words"):
        return False
    raise Again


def parse_which_category(_turn: Turn, text: str) -> str | None:
    """One of the offered categories, or None: 其他类别 (the full list is asked next)."""
    if text == MORE:
        return None
    code = _category_answer(text)
    if code is None:
        raise Again
    return code


def _store_which(draft: RequestDraft, code: str | None) -> None:
    draft.candidates, draft.guessed = [], False
    draft.picking = code is None
    if code is not None:
        draft.category = code


def _which_choices(turn: Turn, draft: RequestDraft) -> list[Choice]:
    return [Choice(label=cat_label(turn, code), value=f"a:cat:{code}") for code in draft.candidates] + [
        turn.choice(_("其他类别"), "a:" + MORE)]


def parse_picked_category(_turn: Turn, text: str) -> str:
    code = _category_answer(text)
    if code is None:
        raise Again
    return code


# ---- prompts and buttons ----------------------------------------------------------------------------------
def _category_choices(turn: Turn, draft: RequestDraft) -> list[Choice]:
    choices = category_choices(turn)
    if draft.has_requests:
        choices.append(turn.choice(_("查看我的求助"), "myreq"))
    return choices


def _description_prompt(turn: Turn, draft: RequestDraft) -> Text:
    if draft.redo:
        return _("请重新描述需要什么帮助：")
    return _("好的，「{value}」。请用一句话说说具体需要什么帮助：", value=cat_label(turn, draft.category))


def _confirm_prompt(turn: Turn, draft: RequestDraft) -> Text:
    return _("收到你的求助。我理解这属于「{label}」，对吗？", label=cat_label(turn, draft.category))


def _store_confirmed(draft: RequestDraft, confirmed: bool) -> None:
    draft.guessed, draft.picking = False, not confirmed


def _store_picked(draft: RequestDraft, code: str) -> None:
    draft.category, draft.picking = code, False


OPENING = [
    # asked only when the dialog starts there (Flow.start(at=...)): 我要求助 alone, or the summary's 修改
    Field("category", _("需要什么帮助？请选择服务类别，或直接用一句话描述，例如「家里老人一个人住，想请人每周来陪他聊天」。"),
          parse=parse_category, choices=_category_choices, when=lambda d: False, reprompt=False),
    Field("description", _description_prompt, parse=parse_description, when=lambda d: not d.description,
          reprompt=False),
    Field("which_category", _("收到你的求助。这件事更接近哪一类？"), parse=parse_which_category, store=_store_which,
          choices=_which_choices, when=lambda d: bool(d.candidates)),
    Field("confirm_category", _confirm_prompt, parse=parse_category_confirmed, store=_store_confirmed,
          choices=lambda turn, _d: [turn.choice(_("对"), "a:yes"), turn.choice(_("换一个类别"), "a:change")],
          when=lambda d: d.guessed),
    Field("pick_category", _("请选择服务类别："), parse=parse_picked_category, store=_store_picked,
          choices=lambda turn, _d: category_choices(turn), when=lambda d: d.picking),
]
OPENING_ERRORS = {
    "category": _("请选择服务类别："),
    "description": _("请多写几个字，说明需要什么帮助："),
}
