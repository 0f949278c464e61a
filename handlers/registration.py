"""实名注册: name, ID number, mobile, skills, area; confirm; view, edit, withdraw."""

from __future__ import annotations

from common.i18n import _
from handlers.messages import Choice
from handlers.privacy import mask_id_number, mask_phone
from handlers.turn import FeatureRouter, Turn
from handlers.validation import (
    InvalidInput,
    parse_id_number,
    parse_mobile,
    parse_name,
    parse_number_list,
)
from services.registration import (
    RegistrationError,
    Skill,
    register_person,
    skill_label,
    skills_catalog,
    withdraw_person,
)

router = FeatureRouter("registration")
FLOW = "reg"
MIN_AGE = 14
ADULT_AGE = 18

INPUT_ERRORS: dict[str, tuple[str, str]] = {
    "name_format": ("姓名需要 2–30 个字，不能含数字或符号。", "A name needs 2–30 characters, without digits or symbols."),
    "id_format": ("身份证号应为 18 位：17 位数字加最后一位数字或 X。",
                  "An ID number has 18 characters: 17 digits and a final digit or X."),
    "id_old_15": ("这是 15 位旧身份证号，请输入 18 位的新身份证号。",
                  "That is an old 15-digit ID; please enter the 18-digit number."),
    "id_checksum": ("身份证号校验位不对，请核对后重新输入（常见原因：某一位输错了）。",
                    "The check digit does not match; please check the number for a typo."),
    "id_birth": ("身份证号里的出生日期无效，请核对。", "The birth date inside the ID number is not valid."),
    "phone_format": ("手机号应为 11 位，以 1 开头（可带 +86、空格或横线）。",
                     "A mobile number has 11 digits starting with 1 (+86, spaces or dashes are fine)."),
    "choice_list_format": ("请回复技能前的数字，可以多选，用逗号隔开，例如 1,3。",
                           "Reply with the numbers of your skills, separated by commas, e.g. 1,3."),
    "area_format": ("请填写 2–64 个字的社区或街道名称，例如「朝阳区望京街道花家地社区」。",
                    "Please enter your community or street (2–64 characters)."),
}


def explain(turn: Turn, error: InvalidInput) -> None:
    zh, en = INPUT_ERRORS.get(error.key, ("输入有误，请重新输入。", "That input is not valid; please try again."))
    turn.say(zh, en)


# ---- entry points ------------------------------------------------------------------------------
@router.command("reg", "register")
async def start(turn: Turn, _arg: str) -> None:
    if turn.person.status == "active":
        await show_profile(turn, "")
        return
    turn.state.data = {}
    turn.say(_("欢迎注册志愿者！根据《志愿服务条例》，志愿者需实名登记。你的身份证号会加密保存，只显示部分号码。"))
    ask_name(turn)


def ask_name(turn: Turn) -> None:
    turn.ask(FLOW, "name", _("请输入你的真实姓名："))


def ask_id(turn: Turn) -> None:
    turn.ask(FLOW, "id", _("请输入 18 位身份证号："))


def ask_phone(turn: Turn) -> None:
    turn.ask(FLOW, "phone", _("请输入你的手机号："))


def ask_skills(turn: Turn) -> None:
    chosen = set(turn.data.get("skills", []))
    catalog = skills_catalog()
    choices = [
        Choice(label=("✓ " if s.code in chosen else "") + turn.t(s.zh, s.en), value=f"a:skill:{s.code}")
        for s in catalog
    ]
    choices.append(turn.choice(_("选好了"), "a:skills_done"))
    turn.ask(FLOW, "skills",
             _("请选择你的技能或意向（可多选）：回复数字，多个用逗号隔开（如 1,3），或逐个点选后选「选好了」。"),
             choices)


def ask_area(turn: Turn) -> None:
    turn.ask(FLOW, "area", _("请输入你所在的社区或街道（如「花家地社区」）："))


def ask_confirm(turn: Turn) -> None:
    d = turn.data
    skills = "、".join(skill_label(code, turn.lang) for code in d.get("skills", [])) or turn.t(_("未选"))
    lines = [
        turn.t(_("请确认你的信息：")),
        turn.t(_("姓名：{name}", name=d['name'])),
        turn.t(_("身份证号：{id_masked}", id_masked=d['id_masked'])),
        turn.t(_("手机号：{phone_masked}", phone_masked=d['phone_masked'])),
        turn.t(_("技能：{skills}", skills=skills)),
        turn.t(_("社区：{area}", area=d['area'])),
    ]
    if d.get("guardian_name"):
        lines.append(turn.t(_("监护人：{guardian_name}（{guardian_phone_masked}）", guardian_name=d['guardian_name'], guardian_phone_masked=d['guardian_phone_masked'])))
    turn.ask(FLOW, "confirm", '\n'.join(lines), [
        turn.choice(_("确认提交"), "a:yes"),
        turn.choice(_("修改"), "a:edit"),
        turn.choice(_("放弃"), "a:no"),
    ])


def next_after(turn: Turn, step: str) -> None:
    """Walk the form in order; while editing one field, go straight back to the summary."""
    if turn.data.get("editing"):
        ask_confirm(turn)
        return
    order = ["name", "id", "phone", "skills", "area", "confirm"]
    following = order[order.index(step) + 1]
    {"id": ask_id, "phone": ask_phone, "skills": ask_skills, "area": ask_area, "confirm": ask_confirm}[following](turn)


# ---- steps -------------------------------------------------------------------------------------
@router.step(FLOW, "name")
async def on_name(turn: Turn, text: str) -> None:
    try:
        turn.set_data(name=parse_name(text))
    except InvalidInput as error:
        explain(turn, error)
        ask_name(turn)
        return
    next_after(turn, "name")


@router.step(FLOW, "id")
async def on_id(turn: Turn, text: str) -> None:
    try:
        id_number = parse_id_number(text, today=turn.today)
    except InvalidInput as error:
        explain(turn, error)
        ask_id(turn)
        return
    age = id_number.age_on(turn.today)
    if age < MIN_AGE:
        turn.end_flow()
        turn.say(
            _("谢谢你的热心！按照规定，未满 {min_age} 周岁的小朋友暂时不能单独注册志愿者。可以请爸爸妈妈陪你一起参加亲子志愿活动，等长大一些再来注册哦。", min_age=MIN_AGE),
        )
        return
    # never keep the plain ID number in dialog state: only its ciphertext, digest and mask
    turn.set_data(
        id_enc=turn.cipher.encrypt(id_number.value),
        id_digest=turn.cipher.digest(id_number.value),
        id_masked=mask_id_number(id_number.value),
        birth_date=id_number.birth_date.isoformat(),
        gender=id_number.gender,
        minor=age < ADULT_AGE,
    )
    if age < ADULT_AGE:
        turn.ask(FLOW, "guardian_name",
                 _("你未满 {adult_age} 周岁，需要监护人同意。请输入监护人姓名：", adult_age=ADULT_AGE))
        return
    turn.set_data(guardian_name=None, guardian_phone_enc=None, guardian_phone_masked=None)
    next_after(turn, "id")


@router.step(FLOW, "guardian_name")
async def on_guardian_name(turn: Turn, text: str) -> None:
    try:
        turn.set_data(guardian_name=parse_name(text))
    except InvalidInput as error:
        explain(turn, error)
        turn.ask(FLOW, "guardian_name", _("请输入监护人姓名："))
        return
    turn.ask(FLOW, "guardian_phone", _("请输入监护人手机号（视为监护人同意你参加志愿服务）："))


@router.step(FLOW, "guardian_phone")
async def on_guardian_phone(turn: Turn, text: str) -> None:
    try:
        phone = parse_mobile(text)
    except InvalidInput as error:
        explain(turn, error)
        turn.ask(FLOW, "guardian_phone", _("请输入监护人手机号："))
        return
    turn.set_data(guardian_phone_enc=turn.cipher.encrypt(phone), guardian_phone_masked=mask_phone(phone))
    next_after(turn, "id")


@router.step(FLOW, "phone")
async def on_phone(turn: Turn, text: str) -> None:
    try:
        phone = parse_mobile(text)
    except InvalidInput as error:
        explain(turn, error)
        ask_phone(turn)
        return
    turn.set_data(phone_enc=turn.cipher.encrypt(phone), phone_masked=mask_phone(phone))
    next_after(turn, "phone")


@router.step(FLOW, "skills")
async def on_skills(turn: Turn, text: str) -> None:
    catalog: list[Skill] = skills_catalog()
    chosen: list[str] = list(turn.data.get("skills", []))
    if text.startswith("a:skill:"):
        code = text.removeprefix("a:skill:")
        if turn.typed:  # "2" typed on a text-only channel picks that one skill and moves on
            turn.set_data(skills=[code])
            next_after(turn, "skills")
            return
        if code in chosen:
            chosen.remove(code)
        elif any(s.code == code for s in catalog):
            chosen.append(code)
        turn.set_data(skills=chosen)
        ask_skills(turn)
        return
    if text == "a:skills_done":
        if not chosen:
            turn.say(_("请至少选择一项。"))
            ask_skills(turn)
            return
        next_after(turn, "skills")
        return
    try:
        numbers = parse_number_list(text, maximum=len(catalog))
    except InvalidInput as error:
        explain(turn, error)
        ask_skills(turn)
        return
    turn.set_data(skills=[catalog[n - 1].code for n in numbers])
    next_after(turn, "skills")


@router.step(FLOW, "area")
async def on_area(turn: Turn, text: str) -> None:
    area = text.strip()
    if not 2 <= len(area) <= 64:
        explain(turn, InvalidInput("area_format"))
        ask_area(turn)
        return
    turn.set_data(area=area)
    next_after(turn, "area")


@router.step(FLOW, "confirm")
async def on_confirm(turn: Turn, text: str) -> None:
    if text == "a:yes":
        was_active = turn.person.status == "active"
        try:
            await register_person(turn.session, person=turn.person, form=turn.data, now=turn.now)
        except RegistrationError as error:
            turn.end_flow()
            if error.reason == "duplicate_id":
                turn.say(_("这个身份证号已经注册过了。如果是你本人在其他渠道注册的，请在原渠道查看资料；如有疑问请联系社区志愿服务站。"))
            return
        turn.end_flow()
        if was_active:
            turn.say(_("资料已更新。"),
                     [turn.choice(_("我的资料"), "profile")])
            return
        turn.say(_("注册成功！欢迎你，{name}。发送「活动」看看近期的志愿活动吧。\n我会在节日和你报名的活动前提醒你；不想收到可以发送「提醒设置」随时关闭。", name=turn.person.name),
                 [turn.choice(_("看看活动"), "acts:1"), turn.choice(_("提醒设置"), "remind"),
                  turn.choice(_("我的资料"), "profile")])
        return
    if text == "a:no":
        turn.end_flow()
        turn.say(_("已放弃，没有保存任何信息。"))
        return
    if text == "a:edit":
        turn.set_data(editing=True)
        turn.ask(FLOW, "pick_field", _("要修改哪一项？"), edit_choices(turn))
        return
    turn.say(_("请回复 1 确认提交，2 修改，3 放弃。"))
    ask_confirm(turn)


def edit_choices(turn: Turn) -> list[Choice]:
    return [
        turn.choice(_("姓名"), "a:field:name"),
        turn.choice(_("身份证号"), "a:field:id"),
        turn.choice(_("手机号"), "a:field:phone"),
        turn.choice(_("技能"), "a:field:skills"),
        turn.choice(_("社区"), "a:field:area"),
    ]


@router.step(FLOW, "pick_field")
async def on_pick_field(turn: Turn, text: str) -> None:
    field = text.removeprefix("a:field:")
    asker = {"name": ask_name, "id": ask_id, "phone": ask_phone, "skills": ask_skills, "area": ask_area}.get(field)
    if asker is None:
        turn.ask(FLOW, "pick_field", _("请回复数字选择要修改的项目："),
                 edit_choices(turn))
        return
    asker(turn)


# ---- profile, edit, withdraw ---------------------------------------------------------------------
@router.command("profile")
async def show_profile(turn: Turn, _arg: str) -> None:
    person = turn.person
    if person.status != "active":
        turn.say(_("你还没有注册志愿者。"),
                 [turn.choice(_("现在注册"), "reg")])
        return
    skills = "、".join(skill_label(c, turn.lang) for c in person.skills.split(",") if c) or "-"
    turn.say(
        _("我的资料\n姓名：{name}\n身份证号：{id_number_masked}\n手机号：{phone_masked}\n技能：{skills}\n社区：{area}", name=person.name, id_number_masked=person.id_number_masked, phone_masked=person.phone_masked, skills=skills, area=person.area),
        [turn.choice(_("修改资料"), "edit"), turn.choice(_("退出志愿者"), "withdraw")],
    )


@router.command("edit")
async def edit_profile(turn: Turn, _arg: str) -> None:
    person = turn.person
    if person.status != "active":
        await start(turn, "")
        return
    turn.state.data = {
        "editing": True,
        "name": person.name,
        "id_enc": person.id_number_enc,
        "id_digest": person.id_number_digest,
        "id_masked": person.id_number_masked,
        "birth_date": person.birth_date.isoformat() if person.birth_date else None,
        "gender": person.gender,
        "phone_enc": person.phone_enc,
        "phone_masked": person.phone_masked,
        "skills": [c for c in person.skills.split(",") if c],
        "area": person.area,
        "guardian_name": person.guardian_name,
        "guardian_phone_enc": person.guardian_phone_enc,
        "guardian_phone_masked": None,
    }
    turn.ask(FLOW, "pick_field", _("要修改哪一项？"), edit_choices(turn))


@router.command("withdraw")
async def withdraw(turn: Turn, _arg: str) -> None:
    if turn.person.status != "active":
        turn.say(_("你还没有注册志愿者。"))
        return
    turn.ask("withdraw", "confirm",
             _("确定要退出志愿者吗？退出后将删除你的身份证号和手机号，取消未开始活动的报名；已记录的服务时长保留在台账中。"),
             [turn.choice(_("确定退出"), "a:yes"), turn.choice(_("再想想"), "a:no")])


@router.step("withdraw", "confirm")
async def on_withdraw(turn: Turn, text: str) -> None:
    turn.end_flow()
    if text != "a:yes":
        turn.say(_("好的，你的志愿者身份保持不变。"))
        return
    await withdraw_person(turn.session, person=turn.person, now=turn.now)
    turn.say(_("你已退出志愿者，个人证件信息已删除。感谢你的付出！想回来时发送「注册」即可。"))
