"""The resident's request form: a flow over the slots the first sentence did not fill, then a summary.

The flow (``reqform``) starts with the opening questions (``asking``: the category or the sentence,
the guessed category confirmed) and asks only what is missing (each field's ``when``); the summary,
its edit menu and the submission are steps of their own: the summary shows every slot (the ones the
sentence gave as well, 备注 only when given, a closing line on free service), its 放弃 has its own
answer, and its edit menu offers slots the flow would skip because they are filled. Address and phone are encrypted as soon as they are parsed.
"""

from __future__ import annotations

from common.i18n import N_, _, lines
from common.lang import to_simplified
from common.text import normalize_width
from handlers.flows import Field, Flow
from handlers.messages import Choice
from handlers.privacy import mask_phone
from handlers.requests import asking
from handlers.requests.shared import FLOW, RequestDraft, cat_label, word_set, words
from handlers.turn import FeatureRouter, Turn
from handlers.validation import InvalidInput, parse_mobile
from services import requests as service

router = FeatureRouter("requests.form")


# ---- parsers -----------------------------------------------------------------------------------------
def _parse_community(_turn: Turn, text: str) -> str:
    value = normalize_width(text).strip()
    if not 2 <= len(value) <= 64:
        raise InvalidInput("community")
    return value


def _parse_address(turn: Turn, text: str) -> str:
    value = normalize_width(text).strip()
    if not 2 <= len(value) <= 200:
        raise InvalidInput("address")
    return turn.cipher.encrypt(value)


def _parse_time(_turn: Turn, text: str) -> str:
    value = normalize_width(text).strip()
    if not 1 <= len(value) <= 100:
        raise InvalidInput("time")
    return value


MINE = "mine"


def _parse_phone(turn: Turn, text: str) -> tuple[str, str | None]:
    if text == MINE and turn.person.phone_enc:
        return turn.person.phone_enc, turn.person.phone_masked
    try:
        phone = parse_mobile(text)
    except InvalidInput:
        raise InvalidInput("phone") from None
    return turn.cipher.encrypt(phone), mask_phone(phone)


def _store_phone(draft: RequestDraft, value: tuple[str, str | None]) -> None:
    draft.phone_enc, draft.phone_masked = value


def _parse_name(_turn: Turn, text: str) -> str:
    value = normalize_width(text).strip()
    if not 1 <= len(value) <= 30:
        raise InvalidInput("name")
    return value


def _parse_notes(_turn: Turn, text: str) -> str:
    value = normalize_width(text).strip()
    return "" if to_simplified(value).lower() in word_set("skip_words") else value[:500]


# ---- buttons -----------------------------------------------------------------------------------------
def _area_choice(turn: Turn, _draft: RequestDraft) -> list[Choice]:
    area = turn.person.area
    return [Choice(label=area, value=f"a:{area}"[:64])] if area else []


def _any_time_choice(turn: Turn, _draft: RequestDraft) -> list[Choice]:
    label = _("时间都可以")
    return [turn.choice(label, f"a:{turn.text(label)}")]


def _my_phone_choice(turn: Turn, _draft: RequestDraft) -> list[Choice]:
    if turn.person.phone_enc and turn.person.phone_masked:
        return [turn.choice(_("用 {phone_masked}", phone_masked=turn.person.phone_masked), f"a:{MINE}")]
    return []


def _no_notes_choice(turn: Turn, _draft: RequestDraft) -> list[Choice]:
    return [turn.choice(_("没有"), "a:none")]


async def _show_summary(turn: Turn, draft: RequestDraft) -> None:
    FORM.save(turn, draft)
    ask_summary(turn, draft)


FORM = Flow("reqform", RequestDraft, [
    *asking.OPENING,
    Field("community", _("请问在哪个社区（或小区、街道）？"), parse=_parse_community, choices=_area_choice,
          when=lambda d: not d.community),
    Field("address_enc", _("请告诉我详细地址（楼号、单元、门牌）。地址加密保存，只有接单的志愿者能看到。"),
          parse=_parse_address, when=lambda d: not d.address_enc),
    Field("preferred_time", _("希望什么时间？（如「明天下午」「每周六上午」，也可以回复「都可以」）"), parse=_parse_time,
          choices=_any_time_choice, when=lambda d: not d.preferred_time),
    Field("phone_enc", _("请留一个联系电话（手机号），接单的志愿者会用它联系你："), parse=_parse_phone,
          store=_store_phone, choices=_my_phone_choice, when=lambda d: not d.phone_enc),
    Field("contact_name", _("怎么称呼你？（如「王阿姨」）"), parse=_parse_name, when=lambda d: not d.contact_name),
    Field("notes", _("还有什么需要志愿者提前知道的吗？（如行动不便、家里有宠物）没有请回复「没有」。"), parse=_parse_notes,
          choices=_no_notes_choice, when=lambda d: d.notes is None),
], done=_show_summary, confirm=False, errors={
    "community": _("请输入 2–64 个字的社区或小区名称，例如「花家地社区」。"),
    "address": _("请输入详细地址，例如「3 号楼 2 单元 401」。"),
    "time": _("请简单写一下希望的时间（100 字以内）："),
    "phone": _("手机号应为 11 位，以 1 开头（可带 +86、空格或横线），请重新输入："),
    "name": _("请输入一个称呼（30 字以内）："),
    **asking.OPENING_ERRORS,
})
FORM.register(router)


def draft_of(turn: Turn) -> RequestDraft:
    return FORM.load(turn)


# ---- entry -----------------------------------------------------------------------------------------
@router.command("req", words=words("req"))
async def request_entry(turn: Turn, text: str) -> None:
    text = text.strip()
    if text and await asking.not_a_request(turn, text):
        return
    if not text:
        has_requests = bool(await service.requests_of_resident(turn.session, resident_id=turn.person.id, limit=1))
        await FORM.start(turn, RequestDraft(has_requests=has_requests), at="category")
        return
    draft = RequestDraft()
    asking.understand(turn, draft, text)
    await FORM.start(turn, draft, at="confirm_category")


# ---- summary, edit, submit -----------------------------------------------------------------------------
def ask_summary(turn: Turn, d: RequestDraft) -> None:
    text = lines(
        _("请确认你的求助："),
        _("类别：{value}", value=cat_label(turn, d.category)),
        _("需求：{description}", description=d.description),
        _("社区：{community}", community=d.community or ""),
        _("地址：已填写（加密保存）"),
        _("时间：{preferred_time}", preferred_time=d.preferred_time or ""),
        _("电话：{phone}", phone=d.phone_masked or ""),
        _("称呼：{name}", name=d.contact_name or ""),
        _("备注：{notes}", notes=d.notes) if d.notes else None,
        _("志愿服务是无偿的，志愿者不会向你收取任何费用。"),
    )
    turn.ask(FLOW, "summary", text, [
        turn.choice(_("提交求助"), "a:yes"),
        turn.choice(_("修改"), "a:edit"),
        turn.choice(_("放弃"), "a:no"),
    ])


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
    draft = draft_of(turn)
    if text == "a:edit":
        turn.ask(FLOW, "edit", _("要修改哪一项？"),
                 [turn.choice(label, f"a:edit:{key}") for key, label in EDIT_LABELS.items()])
        return
    if text != "a:yes":
        ask_summary(turn, draft)
        return
    request = await service.create_request(
        turn.session, resident=turn.person, now=turn.now,
        data=service.NewRequest(category=draft.category, description=draft.description,
                                community=draft.community or "", address_enc=draft.address_enc,
                                contact_name=draft.contact_name or "", phone_enc=draft.phone_enc,
                                phone_masked=draft.phone_masked, preferred_time=draft.preferred_time or "",
                                notes=draft.notes or ""),
    )
    turn.end_flow()
    turn.say(_("求助已提交（编号 #{id}），状态：待审核。社区审核后会为你联系志愿者，每一步都会通知你。随时发送「我的求助」查看进度。",
               id=request.id),
             [turn.choice(_("我的求助"), "myreq")])


@router.step(FLOW, "edit")
async def on_edit(turn: Turn, text: str) -> None:
    draft = draft_of(turn)
    key = text.removeprefix("a:edit:")
    if key not in EDIT_LABELS:
        ask_summary(turn, draft)
        return
    if key == "category":
        draft.picking = True
        await FORM.start(turn, draft, at="pick_category")
        return
    if key == "description":
        draft.redo = True
        await FORM.start(turn, draft, at="description")
        return
    field = EDIT_FIELDS[key]
    setattr(draft, field, None)
    if field == "phone_enc":
        draft.phone_masked = None
    await FORM.start(turn, draft, at=field)
