"""Residents' service requests in conversation: asking, following, reviewing, taking, closing, pairing.

Residents write one sentence (or pick a category); the dialog confirms the category and asks only
for what the sentence did not say. Volunteers get offers with category, community and time only,
and accept with one reply (「接单」). Coordinators of the request's station review, assign by
hand and confirm. The rules (station, matching, privacy, race-safe accept) live in
``services/requests.py``.
"""

from __future__ import annotations

import re

from sqlmodel import select

from common.i18n import _
from common.lang import to_simplified
from common.taxonomy import CATEGORIES, CATEGORY_LABELS
from common.text import normalize_width
from handlers.messages import Choice
from handlers.nlu import classify_category
from handlers.privacy import mask_phone
from handlers.turn import FeatureRouter, Turn
from handlers.validation import InvalidInput, parse_hours, parse_mobile, parse_positive_int
from models import Person
from models.requests import OPEN_STATUSES, REQUEST_STATUSES, ServiceRequest
from services import requests as service
from services.people import managed_organizations

router = FeatureRouter("requests")
FLOW = "req"

ERRORS: dict[str, tuple[str, str]] = {
    "not_found": ("找不到这条求助，或你无权查看。", "That request does not exist or is not yours to see."),
    "not_offered": ("这条求助没有推送给你，或你已经回复过了。", "That request was not offered to you, or you already answered."),
    "declined": ("你已经婉拒了这条求助。", "You already declined that request."),
    "taken": ("手慢了一步：这条求助已由其他志愿者接单。谢谢你的热心！",
              "Just missed it: another volunteer took that request. Thank you!"),
    "status_changed": ("这条求助的状态已经变了（可能已被取消或处理），请查看最新状态。",
                       "That request has changed meanwhile (cancelled or handled); please check its status."),
    "cancelled": ("这条求助已被居民取消，不用再接单了。", "The resident cancelled that request; nothing to do."),
    "not_pending": ("这条求助已经审核过了。", "That request has already been reviewed."),
    "not_assignee": ("这条求助不是派给你的。", "That request is not assigned to you."),
    "not_resident": ("只有发起求助的居民可以这样做。", "Only the resident who asked can do that."),
    "not_done": ("志愿者还没有报告完成。", "The volunteer has not reported it done yet."),
    "already_confirmed": ("这条求助已经确认过了。", "That request is already confirmed."),
    "not_volunteer": ("只能派给已注册的志愿者（且不是求助人本人）。", "Only a registered volunteer (not the resident) can be assigned."),
    "bad_hours": ("服务时长应在 0–24 小时之间。", "Hours must be between 0 and 24."),
    "bad_interval": ("看望间隔应在 1–90 天之间。", "The interval must be 1–90 days."),
}

# 条例 Art 21: volunteers may not charge residents, openly or in disguise
MONEY = re.compile(r"收费|要钱|收钱|给钱|付钱|报酬|红包|酬劳|辛苦费|跑腿费|费用|多少钱|\b(?:pay|paid|fee|charge|money|tip)\b",
                   re.IGNORECASE)
STATUS_QUESTION = re.compile(
    r"(?:我的|上次的?|之前的?|我那个)求助|求助(?:的)?(?:进度|状态|怎么样)|怎么样了|有人接(?:了)?吗|有进展吗"
    r"|\bmy requests?\b|\bstatus of my\b", re.IGNORECASE)
_COMMUNITY = re.compile(r"([\u4e00-\u9fff]{2,12}?(?:社区|小区|新村|村|花园|家园|公寓|大院|街道))")
_LEAD = re.compile(r"^.*?(?:住在|家住|家在|位于|我在|在)")
_PHONE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
_TIME = re.compile(
    r"(?:每(?:周|天|月|星期|个星期)[一二三四五六日天末]?|今天|明天|后天|今晚|明早|这周[一二三四五六日天末]?|本周[一二三四五六日天末]?"
    r"|下周[一二三四五六日天末]?|周[一二三四五六日天末]|星期[一二三四五六日天]|礼拜[一二三四五六日天]|\d{1,2}月\d{1,2}[日号]"
    r"|上午|下午|晚上|早上|中午|傍晚|\d{1,2}[点:：]\d{0,2}|[一二三四五六七八九十]{1,3}点(?:半)?"
    r"|\b(?:today|tonight|tomorrow|weekends?|mornings?|afternoons?|evenings?|every (?:day|week)"
    r"|(?:mon|tues|wednes|thurs|fri|satur|sun)days?|\d{1,2}(?::\d{2})? ?(?:am|pm))\b)",
    re.IGNORECASE)
SKIP_WORDS = frozenset({"没有", "无", "没", "不用", "跳过", "没了", "none", "no", "skip", "nothing"})


def _err(turn: Turn, error: service.RequestError) -> None:
    turn.say(*ERRORS.get(error.reason, ("操作没有成功，请稍后再试。", "That did not work; please try again.")))


def cat_label(turn: Turn, code: str) -> str:
    label = CATEGORY_LABELS.get(code, CATEGORY_LABELS["other"])
    return label["en"] if turn.lang == "en" else turn.t(label["zh-Hans"], label["en"])


def status_label(turn: Turn, status: str) -> str:
    zh, en = REQUEST_STATUSES.get(status, (status, status))
    return turn.t(zh, en)


def _id(arg: str) -> int | None:
    arg = normalize_width(arg).strip().lstrip("#")
    return int(arg) if arg.isdigit() else None



def _contact_name(turn: Turn) -> str:
    return turn.person.name or turn.identity.display_name or ""


# ---- extraction: "ask only what is missing" ----------------------------------------------------------
def extract_community(text: str) -> str | None:
    match = _COMMUNITY.search(to_simplified(text))
    if not match:
        return None
    value = match.group(1)
    trimmed = _LEAD.sub("", value)
    return trimmed if len(trimmed) >= 4 else value


def extract_phone(text: str) -> str | None:
    for match in _PHONE.finditer(normalize_width(text)):
        try:
            return parse_mobile(match.group(0))
        except InvalidInput:
            continue
    return None


def extract_time(text: str) -> str | None:
    matches = list(_TIME.finditer(text))
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
@router.command("req")
async def request_entry(turn: Turn, text: str) -> None:
    text = text.strip()
    if text and MONEY.search(to_simplified(text)):
        await money_reminder(turn, text)
        return
    if text and await _maybe_visit(turn, text):
        return
    if text and STATUS_QUESTION.search(to_simplified(text)):
        await my_requests(turn, "")
        return
    turn.state.data = {}
    if not text:
        choices = [Choice(label=cat_label(turn, code), value=f"a:cat:{code}") for code in CATEGORIES]
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
    turn.ask(FLOW, "pick_category", _("请选择服务类别："),
             [Choice(label=cat_label(turn, code), value=f"a:cat:{code}") for code in CATEGORIES])


@router.step(FLOW, "category")
async def on_category(turn: Turn, text: str) -> None:
    if text.startswith("a:cat:") and text[6:] in CATEGORIES:
        turn.set_data(category=text[6:], category_confirmed=True)
        turn.ask(FLOW, "description", _("好的，「{value}」。请用一句话说说具体需要什么帮助：", value=cat_label(turn, text[6:])))
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
    if text == "a:yes" or folded in ("对", "是", "是的", "对的", "没错", "yes", "y", "ok", "好"):
        turn.set_data(category_confirmed=True)
        await ask_next(turn)
    elif text == "a:change" or folded in ("不对", "不是", "no", "换", "换一个"):
        ask_category_list(turn)
    else:
        ask_category_confirm(turn)


@router.step(FLOW, "pick_category")
async def on_pick_category(turn: Turn, text: str) -> None:
    code = text[6:] if text.startswith("a:cat:") else None
    if code not in CATEGORIES:
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
        turn.ask(FLOW, "community", _("请问在哪个社区（或小区、街道）？"),
                 choices)
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
    lines_zh = ["请确认你的求助：", f"类别：{cat_label(turn, d['category'])}", f"需求：{d['description']}",
                f"社区：{d['community']}", "地址：已填写（加密保存）", f"时间：{d['preferred_time']}",
                f"电话：{d['phone_masked']}", f"称呼：{d['contact_name']}"]
    lines_en = ["Please confirm your request:", f"Category: {cat_label(turn, d['category'])}",
                f"Need: {d['description']}", f"Community: {d['community']}", "Address: given (stored encrypted)",
                f"When: {d['preferred_time']}", f"Phone: {d['phone_masked']}", f"Name: {d['contact_name']}"]
    if d.get("notes"):
        lines_zh.append(f"备注：{d['notes']}")
        lines_en.append(f"Notes: {d['notes']}")
    lines_zh.append("志愿服务是无偿的，志愿者不会向你收取任何费用。")
    lines_en.append("Volunteer service is free: no volunteer may ask you for money.")
    turn.ask(FLOW, "summary", "\n".join(lines_zh), "\n".join(lines_en), [
        turn.choice(_("提交求助"), "a:yes"),
        turn.choice(_("修改"), "a:edit"),
        turn.choice(_("放弃"), "a:no"),
    ])


@router.step(FLOW, "community")
async def on_community(turn: Turn, text: str) -> None:
    value = text[7:] if text.startswith("a:area:") else normalize_width(text).strip()
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
    value = turn.t(_("时间都可以")) if text == "a:any" else normalize_width(text).strip()
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
    if text == "a:none" or to_simplified(value).lower() in SKIP_WORDS:
        value = ""
    turn.set_data(notes=value[:500])
    await ask_next(turn)


EDITABLE = ("category", "description", "community", "address", "time", "phone", "name", "notes")


@router.step(FLOW, "summary")
async def on_summary(turn: Turn, text: str) -> None:
    if text == "a:no":
        turn.end_flow()
        turn.say(_("好的，这条求助没有提交。需要时随时找我。"))
        return
    if text == "a:edit":
        labels = {"category": ("类别", "Category"), "description": ("需求", "Need"), "community": ("社区", "Community"),
                  "address": ("地址", "Address"), "time": ("时间", "When"), "phone": ("电话", "Phone"),
                  "name": ("称呼", "Name"), "notes": ("备注", "Notes")}
        turn.ask(FLOW, "edit", _("要修改哪一项？"),
                 [turn.choice(*labels[key], f"a:edit:{key}") for key in EDITABLE])
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
    turn.say(_("求助已提交（编号 #{id}），状态：待审核。社区审核后会为你联系志愿者，每一步都会通知你。随时发送「我的求助」查看进度。", id=request.id),
             [turn.choice(_("我的求助"), "myreq")])


@router.step(FLOW, "edit")
async def on_edit(turn: Turn, text: str) -> None:
    key = text.removeprefix("a:edit:")
    if key not in EDITABLE:
        ask_summary(turn)
        return
    if key == "category":
        ask_category_list(turn)
        return
    if key == "description":
        turn.ask(FLOW, "description", _("请重新描述需要什么帮助："))
        return
    field = {"community": "community", "address": "address_enc", "time": "preferred_time",
             "phone": "phone_enc", "name": "contact_name", "notes": "notes"}[key]
    data = dict(turn.data)
    data.pop(field, None)
    turn.state.data = data
    await ask_next(turn)


# ---- following one's requests --------------------------------------------------------------------------
@router.command("myreq")
async def my_requests(turn: Turn, _arg: str) -> None:
    rows = await service.requests_of_resident(turn.session, resident_id=turn.person.id)
    if not rows:
        turn.say(_("你还没有提交过求助。"), [turn.choice(_("我要求助"), "req")])
        return
    lines = [turn.t(_("我的求助："))]
    for request in rows:
        lines.append(f"#{request.id} {cat_label(turn, request.category)} · {status_label(turn, request.status)}"
                     f" · {turn.fmt_dt(request.created_at)}")
    lines.append(turn.t(_("回复序号查看详情。")))
    text = "\n".join(lines)
    turn.say(text, [Choice(label=f"#{r.id} {cat_label(turn, r.category)}"[:30], value=f"reqv:{r.id}")
                          for r in rows])


def _public_lines(turn: Turn, request: ServiceRequest) -> list[str]:
    return [
        turn.t(_("求助 #{id}（{value}）", id=request.id, value=status_label(turn, request.status))),
        turn.t(_("类别：{value}", value=cat_label(turn, request.category))),
        turn.t(_("社区：{community}", community=request.community)),
        turn.t(_("时间：{preferred_time}", preferred_time=request.preferred_time)),
    ]


async def _detail_lines(turn: Turn, request: ServiceRequest, *, private: bool) -> list[str]:
    """``private``: the address and full phone — for the resident and the assigned volunteer only."""
    lines = _public_lines(turn, request)
    address = turn.t(_("（仅接单志愿者可见）"))
    phone = request.phone_masked or "-"
    if private:
        address = turn.cipher.decrypt(request.address_enc) if request.address_enc else "-"
        phone = turn.cipher.decrypt(request.phone_enc) if request.phone_enc else phone
    lines += [
        turn.t(_("需求：{description}", description=request.description)),
        turn.t(_("地址：{address}", address=address)),
        turn.t(_("联系人：{contact_name}\u3000电话：{phone}", contact_name=request.contact_name, phone=phone)),
    ]
    if request.notes:
        lines.append(turn.t(_("备注：{notes}", notes=request.notes)))
    if request.assignee_id:
        assignee = await turn.session.get(Person, request.assignee_id)
        name = (assignee.name if assignee else None) or "-"
        lines.append(turn.t(_("志愿者：{name}", name=name)))
    if request.reason and request.status in ("rejected", "cancelled"):
        lines.append(turn.t(_("原因：{reason}", reason=request.reason)))
    if request.hours:
        lines.append(turn.t(_("服务时长：{hours} 小时", hours=f'{request.hours:g}')))
    if request.rating:
        lines.append(turn.t(f"评价：{'★' * request.rating}", f"Rating: {request.rating}/5")
                     + (f" {request.comment}" if request.comment else ""))
    return lines


@router.command("reqv")
async def view_request(turn: Turn, arg: str) -> None:
    request_id = _id(arg)
    request = await turn.session.get(ServiceRequest, request_id) if request_id else None
    if request is None:
        _err(turn, service.RequestError("not_found"))
        return
    me = turn.person.id
    admin = await turn.admin()
    manager = await service.can_manage(turn.session, request=request, person_id=me, admin=admin)
    choices: list[Choice] = []
    if me == request.resident_id:
        lines = await _detail_lines(turn, request, private=True)
        if request.status in OPEN_STATUSES:
            choices.append(turn.choice(_("取消求助"), f"cancelreq:{request.id}"))
        if request.status == "done":
            choices.append(turn.choice(_("确认并评价"), f"rate:{request.id}"))
    elif me == request.assignee_id:
        lines = await _detail_lines(turn, request, private=True)
        if request.status == "assigned":
            choices.append(turn.choice(_("开始服务"), f"svcstart:{request.id}"))
        if request.status in ("assigned", "in_progress"):
            choices.append(turn.choice(_("服务完成"), f"svcdone:{request.id}"))
    elif manager:
        # coordinators review without the address (PIPL: only the assignee needs to go there)
        lines = await _detail_lines(turn, request, private=False)
        if request.status == "pending_review":
            choices += [turn.choice(_("通过"), f"approve:{request.id}"),
                        turn.choice(_("驳回"), f"reject:{request.id}"),
                        turn.choice(_("改类别"), f"recat:{request.id}")]
        if request.status in ("pending_review", "approved"):
            choices.append(turn.choice(_("手动派单"), f"assign:{request.id}"))
        if request.status == "done" and request.confirmed_at is None:
            choices.append(turn.choice(_("确认完成"), f"reqconfirm:{request.id}"))
    else:
        offers = await service.open_offers(turn.session, volunteer_id=me)
        if not any(o.request_id == request.id for o, _ in offers):
            _err(turn, service.RequestError("not_found"))
            return
        # an offer: category, community and time only
        lines = _public_lines(turn, request)
        choices = [turn.choice(_("接单"), f"take:{request.id}"),
                   turn.choice(_("不接"), f"decline:{request.id}")]
    text = "\n".join(lines)
    turn.say(text, choices)


@router.command("cancelreq")
async def cancel_entry(turn: Turn, arg: str) -> None:
    request_id = _id(arg)
    if request_id is None:
        rows = [r for r in await service.requests_of_resident(turn.session, resident_id=turn.person.id)
                if r.status in OPEN_STATUSES]
        if len(rows) != 1:
            if not rows:
                turn.say(_("你没有可以取消的求助。"))
            else:
                await my_requests(turn, "")
            return
        request_id = rows[0].id
    turn.state.data = {"request_id": request_id}
    turn.ask(FLOW, "cancel_reason", _("确定取消求助 #{request_id} 吗？请说一下原因（或选择下面的选项）：", request_id=request_id),
             [turn.choice(_("已经不需要了"), "a:r:不需要了"),
              turn.choice(_("已找到其他帮助"), "a:r:已找到其他帮助"),
              turn.choice(_("不取消了"), "a:keep")])


@router.step(FLOW, "cancel_reason")
async def on_cancel_reason(turn: Turn, text: str) -> None:
    request_id = int(turn.data["request_id"])
    turn.end_flow()
    if text == "a:keep":
        turn.say(_("好的，求助保留。"))
        return
    reason = text[4:] if text.startswith("a:r:") else normalize_width(text).strip()
    try:
        await service.cancel_request(turn.session, request_id=request_id, resident_id=turn.person.id,
                                     reason=reason, now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    turn.say(_("求助 #{request_id} 已取消。", request_id=request_id))


# ---- volunteers: offers, tasks, closing ------------------------------------------------------------
@router.command("take")
async def take(turn: Turn, arg: str) -> None:
    request_id = _id(arg)
    if request_id is None:
        offers = await service.open_offers(turn.session, volunteer_id=turn.person.id)
        if not offers:
            latest = await service.latest_offer(turn.session, volunteer_id=turn.person.id)
            if latest is not None and latest.status in ("taken", "cancelled"):
                _err(turn, service.RequestError(latest.status))
            else:
                turn.say(_("目前没有推送给你的求助。"))
            return
        if len(offers) > 1:
            lines = [turn.t(_("有几条求助等你回复，要接哪一条？"))]
            lines += ["· " + "｜".join(_public_lines(turn, r)[1:]) + f" #{r.id}" for _offer, r in offers]
            text = "\n".join(lines)
            turn.say(text, [Choice(label=f"#{r.id} {cat_label(turn, r.category)}"[:30], value=f"take:{r.id}")
                                  for _offer, r in offers])
            return
        request_id = offers[0][1].id
    try:
        request = await service.accept_offer(turn.session, request_id=request_id, volunteer_id=turn.person.id,
                                             now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    lines = await _detail_lines(turn, request, private=True)
    turn.say("接单成功！请尽快联系居民确认时间。\n" + "\n".join(lines)
             + "\n提醒：志愿服务是无偿的，不得向居民收取或变相收取任何费用（《志愿服务条例》第二十一条）。",
             "It's yours! Please contact the resident soon to agree a time.\n" + "\n".join(lines)
             + "\nReminder: volunteer service is free; never ask residents for money (Volunteer Service "
               "Regulations, Art. 21).",
             [turn.choice(_("开始服务"), f"svcstart:{request.id}"),
              turn.choice(_("服务完成"), f"svcdone:{request.id}")])


@router.command("decline")
async def decline(turn: Turn, arg: str) -> None:
    request_id = _id(arg)
    if request_id is None:
        offers = await service.open_offers(turn.session, volunteer_id=turn.person.id)
        if len(offers) != 1:
            turn.say("请说明要婉拒哪一条，例如「不接 12」。" if offers else "目前没有推送给你的求助。",
                     "Which one? e.g. \"decline 12\"." if offers else "There is no request waiting for your answer.")
            return
        request_id = offers[0][1].id
    try:
        await service.decline_offer(turn.session, request_id=request_id, volunteer_id=turn.person.id, now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    turn.say(_("好的，已婉拒，我们会联系其他志愿者。"))


@router.command("tasks")
async def my_tasks(turn: Turn, _arg: str) -> None:
    rows = await service.tasks_of_volunteer(turn.session, volunteer_id=turn.person.id)
    offers = await service.open_offers(turn.session, volunteer_id=turn.person.id)
    if not rows and not offers:
        turn.say(_("你目前没有接下的居民求助。"))
        return
    lines = [turn.t(_("我的接单："))]
    lines += [f"#{r.id} {cat_label(turn, r.category)} · {r.community} · {status_label(turn, r.status)}" for r in rows]
    if offers:
        lines.append(turn.t(_("另有 {count} 条求助等你回复（发送「接单」）。", count=len(offers))))
    text = "\n".join(lines)
    turn.say(text, [Choice(label=f"#{r.id} {cat_label(turn, r.category)}"[:30], value=f"reqv:{r.id}")
                          for r in rows])


async def _my_task(turn: Turn, arg: str, statuses: tuple[str, ...]) -> int | None:
    request_id = _id(arg)
    if request_id is not None:
        return request_id
    rows = [r for r in await service.tasks_of_volunteer(turn.session, volunteer_id=turn.person.id)
            if r.status in statuses]
    if len(rows) == 1:
        return rows[0].id
    if not rows:
        turn.say(_("你目前没有进行中的求助。"))
    else:
        await my_tasks(turn, "")
    return None


@router.command("svcstart")
async def start_service(turn: Turn, arg: str) -> None:
    request_id = await _my_task(turn, arg, ("assigned",))
    if request_id is None:
        return
    try:
        await service.start_service(turn.session, request_id=request_id, volunteer_id=turn.person.id, now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    turn.say(_("已开始服务（#{request_id}），已通知居民。完成后发送「服务完成」并填写时长。", request_id=request_id),
             [turn.choice(_("服务完成"), f"svcdone:{request_id}")])


@router.command("svcdone")
async def done_entry(turn: Turn, arg: str) -> None:
    request_id = await _my_task(turn, arg, ("assigned", "in_progress"))
    if request_id is None:
        return
    request = await turn.session.get(ServiceRequest, request_id)
    if request is None or request.assignee_id != turn.person.id:
        _err(turn, service.RequestError("not_assignee"))
        return
    turn.state.data = {"request_id": request_id}
    turn.ask(FLOW, "done_hours", _("辛苦了！这次服务（#{request_id}）用了多少小时？（如 1.5）", request_id=request_id))


@router.step(FLOW, "done_hours")
async def on_done_hours(turn: Turn, text: str) -> None:
    if MONEY.search(to_simplified(text)):
        _say_money_rule_to_volunteer(turn)
    try:
        hours = parse_hours(text)
        await service.mark_done(turn.session, request_id=int(turn.data["request_id"]), volunteer_id=turn.person.id,
                                hours=hours, now=turn.now)
    except InvalidInput:
        turn.ask(FLOW, "done_hours", _("请回复小时数，例如 2 或 1.5："))
        return
    except service.RequestError as error:
        if error.reason == "bad_hours":
            turn.ask(FLOW, "done_hours", _("服务时长应在 0–24 小时之间，请重新输入："))
            return
        turn.end_flow()
        _err(turn, error)
        return
    turn.end_flow()
    turn.say(_("已记录：服务完成，{hours} 小时。居民确认后时长会记入你的志愿时长。", hours=f'{hours:g}'))


@router.command("rate")
async def rate_entry(turn: Turn, arg: str) -> None:
    request_id = _id(arg)
    if request_id is None:
        rows = [r for r in await service.requests_of_resident(turn.session, resident_id=turn.person.id)
                if r.status == "done" and r.rating is None]
        if len(rows) != 1:
            if not rows:
                turn.say(_("目前没有等你确认的求助。"))
            else:
                await my_requests(turn, "")
            return
        request_id = rows[0].id
    request = await turn.session.get(ServiceRequest, request_id)
    if request is None or request.resident_id != turn.person.id:
        _err(turn, service.RequestError("not_found"))
        return
    if request.status != "done":
        _err(turn, service.RequestError("already_confirmed" if request.status == "rated" else "not_done"))
        return
    turn.state.data = {"request_id": request_id}
    turn.ask(FLOW, "rating", _("志愿者报告求助 #{request_id} 已完成（{value} 小时）。确认的话，请给这次服务打分（1–5 星）：", request_id=request_id, value=f'{request.hours or 0:g}'),
             [Choice(label="★" * n, value=f"a:r:{n}") for n in range(1, 6)]
             + [turn.choice(_("还没有完成"), "a:notdone")])


@router.step(FLOW, "rating")
async def on_rating(turn: Turn, text: str) -> None:
    if text == "a:notdone":
        request = await turn.session.get(ServiceRequest, int(turn.data["request_id"]))
        turn.end_flow()
        turn.say(_("好的，已告诉社区协调员，他们会跟进。"))
        if request is not None:
            await service.notify_station(
                turn.session, request=request, now=turn.now, message=_("居民表示求助 #{id} 还没有完成，请跟进。", id=request.id))
        return
    match = re.fullmatch(r"(?:a:r:)?([1-5])\s*(?:星|颗星|分|stars?)?", normalize_width(text).strip())
    if not match:
        turn.say(_("请回复 1 到 5 的数字。"))
        return
    turn.set_data(rating=int(match.group(1)))
    turn.ask(FLOW, "comment", _("谢谢！想对志愿者说点什么吗？（可以跳过）"),
             [turn.choice(_("跳过"), "a:skip")])


@router.step(FLOW, "comment")
async def on_comment(turn: Turn, text: str) -> None:
    comment = "" if text == "a:skip" or to_simplified(text).strip().lower() in SKIP_WORDS else text.strip()
    request_id = int(turn.data["request_id"])
    rating = int(turn.data["rating"])
    turn.end_flow()
    try:
        request = await service.confirm_done(turn.session, request_id=request_id, confirmer_id=turn.person.id,
                                             served_on=turn.today, now=turn.now, rating=rating, comment=comment)
    except service.RequestError as error:
        _err(turn, error)
        return
    turn.say(f"感谢评价！求助 #{request.id} 已完成（{'★' * rating}），志愿者的服务时长已记录。",
             f"Thank you! Request #{request.id} is closed ({rating}/5) and the volunteer's hours are recorded.")


# ---- coordinators ----------------------------------------------------------------------------------------
async def _managed_request(turn: Turn, arg: str) -> ServiceRequest | None:
    request_id = _id(arg)
    request = await turn.session.get(ServiceRequest, request_id) if request_id else None
    if request is None or not await service.can_manage(turn.session, request=request, person_id=turn.person.id,
                                                       admin=await turn.admin()):
        turn.say(_("找不到这条求助，或你不是该社区的协调员。"))
        return None
    return request


@router.command("reqs")
async def review_list(turn: Turn, _arg: str) -> None:
    admin = await turn.admin()
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=False)
    if not admin and not orgs:
        turn.say(_("只有社区协调员可以审核求助。"))
        return
    rows = await service.review_queue(turn.session, organization_ids=None if admin else [o.id for o in orgs])
    if not rows:
        turn.say(_("没有待处理的求助。"))
        return
    lines = [turn.t(_("待处理的求助："))]
    lines += [f"#{r.id} {cat_label(turn, r.category)} · {r.community} · {status_label(turn, r.status)}" for r in rows]
    text = "\n".join(lines)
    turn.say(text, [Choice(label=f"#{r.id} {cat_label(turn, r.category)}"[:30], value=f"reqv:{r.id}")
                          for r in rows])


@router.command("approve")
async def approve(turn: Turn, arg: str) -> None:
    request = await _managed_request(turn, arg)
    if request is None:
        return
    try:
        offers = await service.approve_request(turn.session, request_id=request.id, reviewer_id=turn.person.id,
                                               now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    if offers:
        turn.say(_("已通过求助 #{id}，已推送给 {count} 位合适的志愿者。", id=request.id, count=len(offers)))
    else:
        turn.say(_("已通过求助 #{id}，但暂时没有合适的志愿者（技能、社区、空闲都符合），请手动派单。", id=request.id),
                 [turn.choice(_("手动派单"), f"assign:{request.id}")])


@router.command("reject")
async def reject_entry(turn: Turn, arg: str) -> None:
    request = await _managed_request(turn, arg)
    if request is None:
        return
    turn.state.data = {"request_id": request.id}
    turn.ask(FLOW, "reject_reason", _("驳回求助 #{id}：请写明原因（居民会看到）：", id=request.id),
             [turn.choice(_("不属于志愿服务范围"), "a:r:不属于志愿服务范围"),
              turn.choice(_("信息不完整，请补充后重新提交"), "a:r:信息不完整，请补充后重新提交")])


@router.step(FLOW, "reject_reason")
async def on_reject_reason(turn: Turn, text: str) -> None:
    reason = text[4:] if text.startswith("a:r:") else normalize_width(text).strip()
    if len(reason) < 2 or reason.startswith("a:"):
        turn.ask(FLOW, "reject_reason", _("请写明驳回原因："))
        return
    request_id = int(turn.data["request_id"])
    turn.end_flow()
    try:
        await service.reject_request(turn.session, request_id=request_id, reviewer_id=turn.person.id, reason=reason,
                                     now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    turn.say(_("已驳回求助 #{request_id}，已通知居民。", request_id=request_id))


@router.command("recat")
async def recategorize(turn: Turn, arg: str) -> None:
    request = await _managed_request(turn, arg)
    if request is None:
        return
    turn.state.data = {"request_id": request.id}
    turn.ask(FLOW, "recat", _("求助 #{id} 当前类别：{value}。改为：", id=request.id, value=cat_label(turn, request.category)),
             [Choice(label=cat_label(turn, code), value=f"a:cat:{code}") for code in CATEGORIES])


@router.step(FLOW, "recat")
async def on_recat(turn: Turn, text: str) -> None:
    code = text[6:] if text.startswith("a:cat:") else None
    if code not in CATEGORIES:
        turn.say(_("请从列表中选择类别。"))
        return
    request_id = int(turn.data["request_id"])
    turn.end_flow()
    try:
        await service.change_category(turn.session, request_id=request_id, category=code, now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    await view_request(turn, str(request_id))


@router.command("assign")
async def assign_entry(turn: Turn, arg: str) -> None:
    request = await _managed_request(turn, arg)
    if request is None:
        return
    candidates = await service.rank_volunteers(turn.session, request=request, require_fit=False, limit=8)
    if not candidates:
        turn.say(_("还没有已注册的志愿者可以派单。"))
        return
    turn.state.data = {"request_id": request.id}
    lines = [turn.t(_("把求助 #{id} 派给谁？（按匹配度排序）", id=request.id))]
    for c in candidates:
        tags = [turn.t(_("技能符合"))] if c.skill_fit else []
        tags += [turn.t(_("同社区"))] if c.area_fit else []
        tags.append(turn.t(_("进行中 {load} 单", load=c.load)))
        lines.append(f"· {c.person.name}（{'，'.join(tags)}）")
    text = "\n".join(lines)
    turn.ask(FLOW, "assign", text, [Choice(label=(c.person.name or "?")[:30], value=f"a:p:{c.person.id}")
                                          for c in candidates])


@router.step(FLOW, "assign")
async def on_assign(turn: Turn, text: str) -> None:
    if not text.startswith("a:p:") or not text[4:].isdigit():
        turn.say(_("请从列表中选择志愿者。"))
        return
    request_id = int(turn.data["request_id"])
    turn.end_flow()
    try:
        await service.assign_by_hand(turn.session, request_id=request_id, volunteer_id=int(text[4:]), now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    turn.say(_("已将求助 #{request_id} 派给该志愿者，已通知双方。", request_id=request_id))


@router.command("reqconfirm")
async def coordinator_confirm(turn: Turn, arg: str) -> None:
    request = await _managed_request(turn, arg)
    if request is None:
        return
    try:
        await service.confirm_done(turn.session, request_id=request.id, confirmer_id=turn.person.id,
                                   served_on=turn.local(request.done_at or turn.now).date(), now=turn.now,
                                   as_coordinator=True)
    except service.RequestError as error:
        _err(turn, error)
        return
    turn.say(_("已确认求助 #{id} 完成，{value} 小时已记入志愿者的时长。", id=request.id, value=f'{request.hours or 0:g}'))


# ---- 条例 Art 21: no money -------------------------------------------------------------------------------
def _say_money_rule_to_volunteer(turn: Turn) -> None:
    turn.say(_("提醒：根据《志愿服务条例》第二十一条，志愿者不得向服务对象收取或者变相收取报酬。居民主动给钱或红包也请婉拒；有材料费等特殊情况请先联系社区协调员。"))


@router.command("fee")
async def money_reminder(turn: Turn, text: str) -> None:
    tasks = await service.tasks_of_volunteer(turn.session, volunteer_id=turn.person.id)
    if turn.person.status == "active" or tasks:
        _say_money_rule_to_volunteer(turn)
        return
    turn.say(_("志愿服务是无偿的：根据《志愿服务条例》第二十一条，志愿者不得向你收取或者变相收取任何费用。如果有志愿者向你要钱，请告诉我们，社区会处理。"))
    open_requests = [r for r in await service.requests_of_resident(turn.session, resident_id=turn.person.id)
                     if r.status in ("assigned", "in_progress", "done")]
    if open_requests and text:
        request = open_requests[0]
        await service.notify_station(
            turn.session, request=request, now=turn.now, urgent=True,
            message=_("居民就求助 #{id} 反映收费问题：「{value}」请核实（《志愿服务条例》第二十一条）。", id=request.id, value=text[:100]))


# ---- 结对帮扶 ----------------------------------------------------------------------------------------------
async def _maybe_visit(turn: Turn, text: str) -> bool:
    visit = service.parse_visit_line(text)
    if visit is None:
        return False
    pairings = await service.pairings_of(turn.session, volunteer_id=turn.person.id)
    if not pairings:
        return False
    pairing = service.pairing_named(pairings, text)
    if pairing is None:
        names = "、".join(p.resident_name for p in pairings)
        turn.say(_("请在记录里写上看望的是谁（你结对的有：{names}）。", names=names))
        return True
    await service.log_visit(turn.session, pairing=pairing, visit=visit, visited_on=turn.today, now=turn.now)
    note = f"，情况：{visit.note}" if visit.note else ""
    turn.say(f"已记录看望 {pairing.resident_name} {visit.hours:g} 小时{note}。时长已记入你的志愿时长。",
             f"Logged: visited {pairing.resident_name}, {visit.hours:g} h"
             + (f" ({visit.note})" if visit.note else "") + ". The hours were added to your record.")
    return True


@router.command("visit")
async def visit(turn: Turn, arg: str) -> None:
    if arg and await _maybe_visit(turn, arg):
        return
    if not await service.pairings_of(turn.session, volunteer_id=turn.person.id):
        turn.say(_("你还没有结对帮扶的对象。结对由社区协调员安排。"))
        return
    turn.ask(FLOW, "visit", _("请用一句话记录这次看望，例如「看望王奶奶 1 小时，血压正常」："))


@router.step(FLOW, "visit")
async def on_visit(turn: Turn, text: str) -> None:
    turn.end_flow()
    if not await _maybe_visit(turn, text):
        turn.ask(FLOW, "visit", _("没读懂，请写上看望谁和多少小时，例如「看望王奶奶 1 小时，血压正常」："))


@router.command("pair")
async def pair_entry(turn: Turn, _arg: str) -> None:
    admin = await turn.admin()
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=admin)
    if not orgs:
        turn.say(_("只有社区协调员可以安排结对帮扶。"))
        return
    turn.state.data = {"organization_id": orgs[0].id}
    turn.ask(FLOW, "pair_volunteer", _("结对帮扶：请输入志愿者的姓名："))


@router.step(FLOW, "pair_volunteer")
async def on_pair_volunteer(turn: Turn, text: str) -> None:
    if text.startswith("a:p:") and text[4:].isdigit():
        turn.set_data(volunteer_id=int(text[4:]))
    else:
        name = normalize_width(text).strip()
        people = list(await turn.session.exec(
            select(Person).where(Person.name == name, Person.status == "active").order_by(Person.id).limit(5)))
        if not people:
            turn.ask(FLOW, "pair_volunteer", _("没有找到名叫「{name}」的已注册志愿者，请重新输入姓名：", name=name))
            return
        if len(people) > 1:
            turn.ask(FLOW, "pair_volunteer", _("有同名的志愿者，请选择："),
                     [Choice(label=f"{p.name} {p.phone_masked or ''} {p.area or ''}"[:30], value=f"a:p:{p.id}")
                      for p in people])
            return
        turn.set_data(volunteer_id=people[0].id)
    turn.ask(FLOW, "pair_resident", _("结对的居民怎么称呼？（如「王奶奶」）"))


@router.step(FLOW, "pair_resident")
async def on_pair_resident(turn: Turn, text: str) -> None:
    name = normalize_width(text).strip()
    if not 1 <= len(name) <= 30 or name.startswith("a:"):
        turn.ask(FLOW, "pair_resident", _("请输入居民的称呼（30 字以内）："))
        return
    turn.set_data(resident_name=name)
    turn.ask(FLOW, "pair_interval", _("多少天看望一次？（如 7）"),
             [turn.choice(_("每 7 天"), "a:d:7"), turn.choice(_("每 14 天"), "a:d:14")])


@router.step(FLOW, "pair_interval")
async def on_pair_interval(turn: Turn, text: str) -> None:
    raw = text[4:] if text.startswith("a:d:") else re.sub(r"(天|日|days?)$", "", normalize_width(text).strip())
    try:
        days = parse_positive_int(raw, maximum=90)
    except InvalidInput:
        turn.ask(FLOW, "pair_interval", _("请输入 1–90 的天数："))
        return
    d = turn.data
    turn.end_flow()
    try:
        pairing = await service.create_pairing(turn.session, volunteer_id=int(d["volunteer_id"]),
                                               resident_name=d["resident_name"], interval_days=days,
                                               coordinator_id=turn.person.id, organization_id=d["organization_id"],
                                               now=turn.now)
    except service.RequestError as error:
        _err(turn, error)
        return
    turn.say(_("已安排结对：志愿者每 {days} 天看望 {resident_name} 一次，已通知志愿者。", days=days, resident_name=pairing.resident_name))
