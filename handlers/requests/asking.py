"""A resident asks for help: one sentence (or a category), the category confirmed, then only what is missing.

Address and phone are encrypted as soon as they are typed; the description never keeps the phone.
"""

from __future__ import annotations

import re

from common.i18n import N_, _, lines
from common.lang import to_simplified
from common.taxonomy import CATEGORIES
from common.text import normalize_width
from handlers.messages import Choice
from handlers.nlu import classify_category
from handlers.privacy import mask_phone
from handlers.requests import pairing, volunteer
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
    if not text:
        choices = category_choices(turn)
        if await service.requests_of_resident(turn.session, resident_id=turn.person.id, limit=1):
            choices.append(turn.choice(_("查看我的求助"), "myreq"))
        turn.ask(FLOW, "category",
                 _("需要什么帮助？请选择服务类别，或直接用一句话描述，例如「家里老人一个人住，想请人每周来陪他聊天」。"),
                 choices)
        return
    _absorb_description(turn, text)
    turn.set_data(category=classify_category(text))
    ask_category_confirm(turn)


def _absorb_description(turn: Turn, text: str) -> None:
    phone = extract_phone(text)
    values: dict[str, object] = {"description": _strip_phone(text, phone)[:1000]}
    community = extract_community(text)
    if community and not turn.data.get("community"):
        values["community"] = community
    when = extract_time(text)
    if when and not turn.data.get("preferred_time"):
        values["preferred_time"] = when
    if phone and not turn.data.get("phone_enc"):
        values.update(phone_enc=turn.cipher.encrypt(phone), phone_masked=mask_phone(phone))
    turn.set_data(**values)


def ask_category_confirm(turn: Turn) -> None:
    label = cat_label(turn, turn.data["category"])
    turn.ask(FLOW, "confirm_category",
             _("收到你的求助。我理解这属于「{label}」，对吗？", label=label),
             [turn.choice(_("对"), "a:yes"), turn.choice(_("换一个类别"), "a:change")])


def ask_category_list(turn: Turn) -> None:
    turn.ask(FLOW, "pick_category", _("请选择服务类别："), category_choices(turn))


def _category_answer(text: str) -> str | None:
    code = text.removeprefix("a:cat:") if text.startswith("a:cat:") else None
    return code if code in CATEGORIES else None


@router.step(FLOW, "category")
async def on_category(turn: Turn, text: str) -> None:
    code = _category_answer(text)
    if code is not None:
        turn.set_data(category=code, category_confirmed=True)
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
    _absorb_description(turn, text.strip())
    await ask_next(turn)


@router.step(FLOW, "confirm_category")
async def on_confirm_category(turn: Turn, text: str) -> None:
    folded = to_simplified(text).strip().lower()
    if text == "a:yes" or folded in word_set("yes_words"):
        turn.set_data(category_confirmed=True)
        await ask_next(turn)
    elif text == "a:change" or folded in word_set("no_words"):
        ask_category_list(turn)
    else:
        ask_category_confirm(turn)


@router.step(FLOW, "pick_category")
async def on_pick_category(turn: Turn, text: str) -> None:
    code = _category_answer(text)
    if code is None:
        ask_category_list(turn)
        return
    turn.set_data(category=code, category_confirmed=True)
    await ask_next(turn)


# ---- the form ----------------------------------------------------------------------------------------
async def ask_next(turn: Turn) -> None:
    """Ask the first missing item; when nothing is missing, show the summary."""
    d = turn.data
    if not d.get("community"):
        choices = [Choice(label=turn.person.area, value=f"a:area:{turn.person.area}"[:64])] if turn.person.area else []
        turn.ask(FLOW, "community", _("请问在哪个社区（或小区、街道）？"), choices)
    elif not d.get("address_enc"):
        turn.ask(FLOW, "address", _("请告诉我详细地址（楼号、单元、门牌）。地址加密保存，只有接单的志愿者能看到。"))
    elif not d.get("preferred_time"):
        turn.ask(FLOW, "time", _("希望什么时间？（如「明天下午」「每周六上午」，也可以回复「都可以」）"),
                 [turn.choice(_("时间都可以"), "a:any")])
    elif not d.get("phone_enc"):
        choices = []
        if turn.person.phone_enc and turn.person.phone_masked:
            choices.append(turn.choice(_("用 {phone_masked}", phone_masked=turn.person.phone_masked), "a:mine"))
        turn.ask(FLOW, "phone", _("请留一个联系电话（手机号），接单的志愿者会用它联系你："), choices)
    elif not d.get("contact_name"):
        turn.ask(FLOW, "name", _("怎么称呼你？（如「王阿姨」）"))
    elif "notes" not in d:
        turn.ask(FLOW, "notes", _("还有什么需要志愿者提前知道的吗？（如行动不便、家里有宠物）没有请回复「没有」。"),
                 [turn.choice(_("没有"), "a:none")])
    else:
        ask_summary(turn)


def ask_summary(turn: Turn) -> None:
    d = turn.data
    text = lines(
        _("请确认你的求助："),
        _("类别：{value}", value=cat_label(turn, d["category"])),
        _("需求：{description}", description=d["description"]),
        _("社区：{community}", community=d["community"]),
        _("地址：已填写（加密保存）"),
        _("时间：{preferred_time}", preferred_time=d["preferred_time"]),
        _("电话：{phone}", phone=d["phone_masked"]),
        _("称呼：{name}", name=d["contact_name"]),
        _("备注：{notes}", notes=d["notes"]) if d.get("notes") else None,
        _("志愿服务是无偿的，志愿者不会向你收取任何费用。"),
    )
    turn.ask(FLOW, "summary", text, [
        turn.choice(_("提交求助"), "a:yes"),
        turn.choice(_("修改"), "a:edit"),
        turn.choice(_("放弃"), "a:no"),
    ])


@router.step(FLOW, "community")
async def on_community(turn: Turn, text: str) -> None:
    value = text.removeprefix("a:area:") if text.startswith("a:area:") else normalize_width(text).strip()
    if not 2 <= len(value) <= 64 or value.startswith("a:"):
        turn.ask(FLOW, "community", _("请输入 2–64 个字的社区或小区名称，例如「花家地社区」。"))
        return
    turn.set_data(community=value)
    await ask_next(turn)


@router.step(FLOW, "address")
async def on_address(turn: Turn, text: str) -> None:
    value = normalize_width(text).strip()
    if not 2 <= len(value) <= 200 or value.startswith("a:"):
        turn.ask(FLOW, "address", _("请输入详细地址，例如「3 号楼 2 单元 401」。"))
        return
    turn.set_data(address_enc=turn.cipher.encrypt(value))
    await ask_next(turn)


@router.step(FLOW, "time")
async def on_time(turn: Turn, text: str) -> None:
    value = turn.text(_("时间都可以")) if text == "a:any" else normalize_width(text).strip()
    if not 1 <= len(value) <= 100 or value.startswith("a:"):
        turn.ask(FLOW, "time", _("请简单写一下希望的时间（100 字以内）："))
        return
    turn.set_data(preferred_time=value)
    await ask_next(turn)


@router.step(FLOW, "phone")
async def on_phone(turn: Turn, text: str) -> None:
    if text == "a:mine" and turn.person.phone_enc:
        turn.set_data(phone_enc=turn.person.phone_enc, phone_masked=turn.person.phone_masked)
        await ask_next(turn)
        return
    try:
        phone = parse_mobile(text)
    except InvalidInput:
        turn.ask(FLOW, "phone", _("手机号应为 11 位，以 1 开头（可带 +86、空格或横线），请重新输入："))
        return
    turn.set_data(phone_enc=turn.cipher.encrypt(phone), phone_masked=mask_phone(phone))
    await ask_next(turn)


@router.step(FLOW, "name")
async def on_name(turn: Turn, text: str) -> None:
    value = normalize_width(text).strip()
    if not 1 <= len(value) <= 30 or value.startswith("a:"):
        turn.ask(FLOW, "name", _("请输入一个称呼（30 字以内）："))
        return
    turn.set_data(contact_name=value)
    await ask_next(turn)


@router.step(FLOW, "notes")
async def on_notes(turn: Turn, text: str) -> None:
    value = normalize_width(text).strip()
    if text == "a:none" or to_simplified(value).lower() in word_set("skip_words"):
        value = ""
    turn.set_data(notes=value[:500])
    await ask_next(turn)


EDIT_LABELS = {"category": N_("类别"), "description": N_("需求"), "community": N_("社区"), "address": N_("地址"),
               "time": N_("时间"), "phone": N_("电话"), "name": N_("称呼"), "notes": N_("备注")}
EDIT_FIELDS = {"community": "community", "address": "address_enc", "time": "preferred_time",
               "phone": "phone_enc", "name": "contact_name", "notes": "notes"}


@router.step(FLOW, "summary")
async def on_summary(turn: Turn, text: str) -> None:
    if text == "a:no":
        turn.end_flow()
        turn.say(_("好的，这条求助没有提交。需要时随时找我。"))
        return
    if text == "a:edit":
        turn.ask(FLOW, "edit", _("要修改哪一项？"),
                 [turn.choice(label, f"a:edit:{key}") for key, label in EDIT_LABELS.items()])
        return
    if text != "a:yes":
        ask_summary(turn)
        return
    d = turn.data
    request = await service.create_request(
        turn.session, resident=turn.person, now=turn.now,
        data=service.NewRequest(category=d["category"], description=d["description"], community=d["community"],
                                address_enc=d["address_enc"], contact_name=d["contact_name"],
                                phone_enc=d["phone_enc"], phone_masked=d["phone_masked"],
                                preferred_time=d["preferred_time"], notes=d.get("notes", "")),
    )
    turn.end_flow()
    turn.say(_("求助已提交（编号 #{id}），状态：待审核。社区审核后会为你联系志愿者，每一步都会通知你。随时发送「我的求助」查看进度。",
               id=request.id),
             [turn.choice(_("我的求助"), "myreq")])


@router.step(FLOW, "edit")
async def on_edit(turn: Turn, text: str) -> None:
    key = text.removeprefix("a:edit:")
    if key not in EDIT_LABELS:
        ask_summary(turn)
        return
    if key == "category":
        ask_category_list(turn)
        return
    if key == "description":
        turn.ask(FLOW, "description", _("请重新描述需要什么帮助："))
        return
    data = dict(turn.data)
    data.pop(EDIT_FIELDS[key], None)
    turn.state.data = data
    await ask_next(turn)
