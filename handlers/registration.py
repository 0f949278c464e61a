"""实名注册: name, ID number, mobile, skills, area; confirm; view, edit, withdraw.

The registration dialog is a :class:`~handlers.flows.Flow` over :class:`RegistrationDraft`;
editing the profile opens the same flow on a draft made from the person, at its 修改 menu.
The draft never holds a plain ID number or phone: only their ciphertext, digest and masked forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel

from common.i18n import N_, Text, _, join
from handlers.flows import Again, Field, Flow
from handlers.messages import Choice
from handlers.payloads import parse_int
from handlers.privacy import FieldCipher, mask_id_number, mask_phone
from handlers.turn import FeatureRouter, Turn
from handlers.validation import (
    InvalidInput,
    parse_id_number,
    parse_mobile,
    parse_name,
    parse_number_list,
)
from handlers.words import load_words
from models import Person
from services.orgs import (
    best_match,
    match_organization,
    membership_of,
    organization_choice,
    organization_choices,
)
from services.registration import (
    RegistrationError,
    register_person,
    skill_text,
    skills_catalog,
    withdraw_person,
)

router = FeatureRouter("registration")
WORDS = load_words("registration_words")
FLOW = "reg"
MIN_AGE = 14
ADULT_AGE = 18
SKILL = "skill:"  # a skill button's answer: "a:skill:<code>"
SKILLS_DONE = "skills_done"
ORG = "org:"  # an organization button's answer: "a:org:<id>"
MAX_ORG_BUTTONS = 8

INPUT_ERRORS: dict[str, Text] = {
    "name_format": N_("姓名需要 2–30 个字，不能含数字或符号。"),
    "id_format": N_("身份证号应为 18 位：17 位数字加最后一位数字或 X。"),
    "id_old_15": N_("这是 15 位旧身份证号，请输入 18 位的新身份证号。"),
    "id_checksum": N_("身份证号校验位不对，请核对后重新输入（常见原因：某一位输错了）。"),
    "id_birth": N_("身份证号里的出生日期无效，请核对。"),
    "phone_format": N_("手机号应为 11 位，以 1 开头（可带 +86、空格或横线）。"),
    "choice_list_format": N_("请回复技能前的数字，可以多选，用逗号隔开，例如 1,3。"),
    "area_format": N_("请填写 2–64 个字的社区或街道名称，例如「朝阳区望京街道花家地社区」。"),
    "org_unknown": N_("没有找到这个组织，请点选下面的组织，或输入组织名称中的社区名。"),
}


class RegistrationDraft(BaseModel):
    """The form being filled: encrypted and masked values only, never a plain ID number or phone."""

    name: str | None = None
    id_enc: str | None = None
    id_digest: str | None = None
    id_masked: str | None = None
    birth_year: int | None = None
    gender: str | None = None
    minor: bool = False
    guardian_name: str | None = None
    guardian_phone_enc: str | None = None
    guardian_phone_masked: str | None = None
    phone_enc: str | None = None
    phone_masked: str | None = None
    skills: list[str] = []
    area: str | None = None
    # the organization the volunteer belongs to, and the ones offered as buttons (id, name)
    org: int | None = None
    org_name: str | None = None
    org_options: list[tuple[int, str]] = []

    # the flow's field names read these (an unset field is None)
    @property
    def id(self) -> str | None:
        return self.id_enc

    @property
    def phone(self) -> str | None:
        return self.phone_enc

    @property
    def guardian_phone(self) -> str | None:
        return self.guardian_phone_enc

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> RegistrationDraft:
        """A deep copy (the flow copies the draft at every answer) without ``copy.deepcopy`` walking every
        field: the values are strings, numbers and tuples, which a copy may share; only the two lists are
        mutable, so they alone are copied."""
        copied = self.model_copy()  # its own __dict__ (and fields set), the values shared
        copied.__dict__.update(skills=list(self.skills), org_options=list(self.org_options))
        return copied

    def form(self) -> dict:
        """What services.registration.register_person saves (a guardian only for a minor)."""
        data = self.model_dump(exclude={"minor", "guardian_phone_masked", "org_name", "org_options"})
        if not self.minor:
            data.update(guardian_name=None, guardian_phone_enc=None)
        return data

    @classmethod
    def of(cls, person: Person, today: date, cipher: FieldCipher) -> RegistrationDraft:
        # only the birth year is stored: the exact age comes from the encrypted ID number
        age = parse_id_number(cipher.decrypt(person.id_number_enc), today=today).age_on(today) \
            if person.id_number_enc else ADULT_AGE
        return cls(
            name=person.name, id_enc=person.id_number_enc, id_digest=person.id_number_digest,
            id_masked=person.id_number_masked, birth_year=person.birth_year,
            gender=person.gender, minor=age < ADULT_AGE, guardian_name=person.guardian_name,
            guardian_phone_enc=person.guardian_phone_enc, phone_enc=person.phone_enc,
            phone_masked=person.phone_masked, skills=[c for c in person.skills.split(",") if c], area=person.area,
        )


class TooYoung(Exception):  # noqa: N818 - a signal, not an error
    """The ID number says the person is under MIN_AGE: the dialog ends with a kind word."""


class RegistrationFlow(Flow[RegistrationDraft]):
    async def advance(self, turn: Turn, draft: RegistrationDraft, *, after: str | None) -> None:
        # the community typed named an organization: it is shown on the summary (修改 changes it), not asked
        if after == "area" and draft.org is not None and not turn.state.data.get("editing"):
            after = "org"
        await super().advance(turn, draft, after=after)

    async def handle(self, turn: Turn, text: str) -> None:
        try:
            await super().handle(turn, text)
        except TooYoung:
            turn.end_flow()
            turn.say(_("谢谢你的热心！按照规定，未满 {min_age} 周岁的小朋友暂时不能单独注册志愿者。"
                       "可以请爸爸妈妈陪你一起参加亲子志愿活动，等长大一些再来注册哦。", min_age=MIN_AGE))


# ---- parsers: each returns the value the field stores ---------------------------------------------
@dataclass(frozen=True, slots=True)
class IdReading:
    """What an ID number gives the draft: its ciphertext, digest and mask, never the number itself."""

    id_enc: str
    id_digest: str
    id_masked: str
    birth_year: int
    gender: str
    minor: bool


def parse_id(turn: Turn, text: str) -> IdReading:
    id_number = parse_id_number(text, today=turn.today)
    age = id_number.age_on(turn.today)
    if age < MIN_AGE:
        raise TooYoung
    # never keep the plain ID number in dialog state: only its ciphertext, digest and mask
    return IdReading(
        id_enc=turn.cipher.encrypt(id_number.value), id_digest=turn.cipher.digest(id_number.value),
        id_masked=mask_id_number(id_number.value), birth_year=id_number.birth_date.year,
        gender=id_number.gender, minor=age < ADULT_AGE,
    )


def store_id(draft: RegistrationDraft, value: IdReading) -> None:
    for name in ("id_enc", "id_digest", "id_masked", "birth_year", "gender", "minor"):
        setattr(draft, name, getattr(value, name))


def parse_phone(turn: Turn, text: str) -> tuple[str, str]:
    phone = parse_mobile(text)
    return turn.cipher.encrypt(phone), mask_phone(phone)


def store_phone(draft: RegistrationDraft, value: tuple[str, str]) -> None:
    draft.phone_enc, draft.phone_masked = value


def store_guardian_name(draft: RegistrationDraft, value: str) -> None:
    # a new guardian gives their own consent: their phone is asked again
    draft.guardian_name = value
    draft.guardian_phone_enc = draft.guardian_phone_masked = None


def store_guardian_phone(draft: RegistrationDraft, value: tuple[str, str]) -> None:
    draft.guardian_phone_enc, draft.guardian_phone_masked = value


def parse_skills(turn: Turn, text: str, draft: RegistrationDraft) -> list[str]:
    catalog = skills_catalog()
    codes = [skill.code for skill in catalog]
    if text.startswith(SKILL) and text.removeprefix(SKILL) in codes:
        code = text.removeprefix(SKILL)
        if turn.typed:  # "2" typed on a text-only channel picks that one skill and moves on
            return [code]
        draft.skills = [c for c in draft.skills if c != code] if code in draft.skills else [*draft.skills, code]
        raise Again
    if text == SKILLS_DONE:
        if not draft.skills:
            turn.say(_("请至少选择一项。"))
            raise Again
        return draft.skills
    return [codes[n - 1] for n in parse_number_list(text, maximum=len(catalog))]


async def parse_area(turn: Turn, text: str, draft: RegistrationDraft) -> str:
    area = text.strip()
    if not 2 <= len(area) <= 64:
        raise InvalidInput("area_format")
    await load_org_options(turn, draft, area)
    return area


async def load_org_options(turn: Turn, draft: RegistrationDraft, area: str | None) -> None:
    """The organizations offered as buttons (the one the community names first); a match becomes the choice."""
    organizations = await organization_choices(turn.reads)  # ids and names only: all a button shows
    match = best_match(organizations, area)
    if match is not None:
        draft.org, draft.org_name = match.id, match.name
    first = [match] if match is not None else []
    draft.org_options = [(o.id, o.name) for o in [*first, *[o for o in organizations if o is not match]]
                         ][:MAX_ORG_BUTTONS]


async def parse_org(turn: Turn, text: str, draft: RegistrationDraft) -> tuple[int, str]:
    if text.startswith(ORG):
        org_id = parse_int(text.removeprefix(ORG))
        org = await organization_choice(turn.reads, organization_id=org_id) if org_id is not None else None
    else:
        org = await match_organization(turn.reads, place=text)
    if org is None:
        raise InvalidInput("org_unknown")
    return org.id, org.name


def store_org(draft: RegistrationDraft, value: tuple[int, str]) -> None:
    draft.org, draft.org_name = value


# ---- how fields look ------------------------------------------------------------------------------
# each skill's code, label and button value, made once (not at every skills question)
_SKILL_BUTTONS: tuple[tuple[str, Text, str], ...] = tuple((s.code, s.label, f"a:{SKILL}{s.code}")
                                                          for s in skills_catalog())


def skill_choices(turn: Turn, draft: RegistrationDraft) -> list[Choice]:
    chosen = draft.skills
    choices = [Choice(label=("✓ " if code in chosen else "") + turn.text(label), value=value)
               for code, label, value in _SKILL_BUTTONS]
    return [*choices, turn.choice(_("选好了"), "a:" + SKILLS_DONE)]


def skills_shown(skills: list[str]) -> Text | None:
    return join([skill_text(code) for code in skills], sep="、") if skills else None


def org_choices(_turn: Turn, draft: RegistrationDraft) -> list[Choice]:
    return [Choice(label=name, value=f"a:{ORG}{org_id}") for org_id, name in draft.org_options]


def show_org(_turn: Turn, draft: RegistrationDraft) -> Text | None:
    return draft.org_name if draft.org is not None else None


def show_skills(_turn: Turn, draft: RegistrationDraft) -> Text:
    return skills_shown(draft.skills) or _("未选")


def show_guardian(_turn: Turn, draft: RegistrationDraft) -> Text | None:
    if not draft.guardian_name:
        return None
    if not draft.guardian_phone_masked:
        return draft.guardian_name
    return _("{guardian_name}（{guardian_phone_masked}）", guardian_name=draft.guardian_name,
             guardian_phone_masked=draft.guardian_phone_masked)


def is_minor(draft: RegistrationDraft) -> bool:
    return draft.minor


async def save(turn: Turn, draft: RegistrationDraft) -> None:
    was_active = turn.person.status == "active"
    try:
        await register_person(turn.session, person=turn.person, form=draft.form(), now=turn.now)
    except RegistrationError:
        # one answer whatever the reason: it must not tell anybody that an ID number is registered
        turn.say(_("这个身份证号无法用于注册。如需帮助，请联系你所在社区的志愿服务站协调员。"))
        return
    if was_active:
        turn.say(_("资料已更新。"), [turn.choice(_("我的资料"), "profile")])
        return
    turn.say(_("注册成功！欢迎你，{name}。发送「活动」看看近期的志愿活动吧。\n我会在节日和你报名的活动前提醒你；不想收到可以发送「提醒设置」随时关闭。", name=turn.person.name),
             [turn.choice(_("看看活动"), "acts:1"), turn.choice(_("提醒设置"), "remind"),
              turn.choice(_("我的资料"), "profile")])


REGISTRATION = RegistrationFlow(FLOW, RegistrationDraft, [
    Field("name", _("请输入你的真实姓名："), parse=lambda _turn, text: parse_name(text), label=_("姓名")),
    Field("id", _("请输入 18 位身份证号："), parse=parse_id, store=store_id, label=_("身份证号"),
          show=lambda _turn, draft: draft.id_masked),
    Field("guardian_name", _("你未满 {adult_age} 周岁，需要监护人同意。请输入监护人姓名：", adult_age=ADULT_AGE),
          parse=lambda _turn, text: parse_name(text), store=store_guardian_name, label=_("监护人"),
          show=show_guardian, when=is_minor),
    Field("guardian_phone", _("请输入监护人手机号（视为监护人同意你参加志愿服务）："), parse=parse_phone,
          store=store_guardian_phone, when=is_minor),
    Field("phone", _("请输入你的手机号："), parse=parse_phone, store=store_phone, label=_("手机号"),
          show=lambda _turn, draft: draft.phone_masked),
    Field("skills", _("请选择你的技能或意向（可多选）：回复数字，多个用逗号隔开（如 1,3），或逐个点选后选「选好了」。"),
          parse=parse_skills, choices=skill_choices, label=_("技能"), show=show_skills),
    Field("area", _("请输入你所在的社区或街道（如「花家地社区」）："), parse=parse_area, label=_("社区")),
    Field("org", _("请选择你所属的志愿服务组织（也可以输入组织名称）："), parse=parse_org, store=store_org,
          choices=org_choices, label=_("所属组织"), show=show_org, optional=True,
          when=lambda draft: bool(draft.org_options)),
], done=save, title=_("请确认你的信息："), errors=INPUT_ERRORS)
REGISTRATION.register(router)


# ---- entry points ------------------------------------------------------------------------------
@router.command("reg", "register", words=WORDS["reg"])
async def start(turn: Turn, _arg: str) -> None:
    if turn.person.status == "active":
        await show_profile(turn, "")
        return
    turn.say(_("欢迎注册志愿者！根据《志愿服务条例》，志愿者需实名登记。你的身份证号会加密保存，只显示部分号码。"))
    await REGISTRATION.start(turn)


# ---- profile, edit, withdraw ---------------------------------------------------------------------
@router.command("profile", words=WORDS["profile"])
async def show_profile(turn: Turn, _arg: str) -> None:
    person = turn.person
    if person.status != "active":
        turn.say(_("你还没有注册志愿者。"),
                 [turn.choice(_("现在注册"), "reg")])
        return
    skills = skills_shown([c for c in person.skills.split(",") if c]) or "-"
    org = await membership_of(turn.reads, person_id=person.id)
    turn.say(
        _("我的资料\n姓名：{name}\n身份证号：{id_number_masked}\n手机号：{phone_masked}\n技能：{skills}\n社区：{area}"
          "\n所属组织：{org}",
          name=person.name, id_number_masked=person.id_number_masked, phone_masked=person.phone_masked,
          skills=skills, area=person.area, org=org.name if org is not None else _("未加入")),
        [turn.choice(_("修改资料"), "edit"), turn.choice(_("更换组织"), "myorg"),
         turn.choice(_("退出志愿者"), "withdraw")],
    )


@router.command("edit")
async def edit_profile(turn: Turn, _arg: str) -> None:
    """The registration flow on the saved profile, at its 修改 menu."""
    draft = await profile_draft(turn)
    if draft is not None:
        REGISTRATION.save(turn, draft)
        REGISTRATION.ask_edit(turn, draft)


@router.command("myorg", words=WORDS["myorg"])
async def change_org(turn: Turn, _arg: str) -> None:
    """更换组织: the registration flow on the saved profile, at its organization question."""
    draft = await profile_draft(turn)
    if draft is None:
        return
    if not draft.org_options:
        turn.say(_("目前还没有可以加入的志愿服务组织。"))
        return
    REGISTRATION.save(turn, draft, editing=True, pending=[])
    REGISTRATION.ask(turn, REGISTRATION.by_name["org"], draft)


async def profile_draft(turn: Turn) -> RegistrationDraft | None:
    """The saved profile as a draft, with its organization and the organizations to choose from;
    None (and registration begins) for someone not registered."""
    if turn.person.status != "active":
        await start(turn, "")
        return None
    turn.state.data = {}
    draft = RegistrationDraft.of(turn.person, turn.today, turn.cipher)
    org = await membership_of(turn.reads, person_id=turn.person.id)
    await load_org_options(turn, draft, draft.area)
    draft.org, draft.org_name = (org.id, org.name) if org is not None else (None, None)
    return draft


@router.command("withdraw", words=WORDS["withdraw"])
async def withdraw(turn: Turn, _arg: str) -> None:
    if turn.person.status != "active":
        turn.say(_("你还没有注册志愿者。"))
        return
    await WITHDRAW.start(turn)


class WithdrawDraft(BaseModel):
    confirmed: bool = False


def _withdraw_choices(turn: Turn, _draft: WithdrawDraft) -> list[Choice]:
    return [turn.choice(_("确定退出"), "a:w:yes"), turn.choice(_("再想想"), "a:w:no")]


async def _withdraw(turn: Turn, draft: WithdrawDraft) -> None:
    if not draft.confirmed:
        turn.say(_("好的，你的志愿者身份保持不变。"))
        return
    await withdraw_person(turn.session, person=turn.person, now=turn.now)
    turn.say(_("你已退出志愿者，个人证件信息已删除。感谢你的付出！想回来时发送「注册」即可。"))


WITHDRAW = Flow("withdraw", WithdrawDraft, [
    # only the 确定退出 button (or its label typed) withdraws; any other answer keeps the volunteer
    Field("confirmed",
          _("确定要退出志愿者吗？退出后将删除你的身份证号和手机号，取消未开始活动的报名；已记录的服务时长保留在台账中。"),
          parse=lambda _turn, text: text == "w:yes", choices=_withdraw_choices),
], done=_withdraw, confirm=False)
WITHDRAW.register(router)
