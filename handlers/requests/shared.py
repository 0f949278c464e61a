"""What the request dialogs share: the flow name, the request form's draft, error texts, labels, typed payloads and words."""

from __future__ import annotations

import re
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel

from common.i18n import N_, Msg
from common.resources import load_json
from common.taxonomy import CATEGORIES
from handlers.messages import Choice
from handlers.payloads import Payload, payload
from handlers.permissions import ORG_DENIED
from handlers.turn import Turn
from models.requests import REQUEST_STATUSES
from services import requests as service

FLOW = "req"

ERRORS: dict[str, Msg] = {
    "not_found": N_("找不到这条求助，或你无权查看。"),
    "not_offered": N_("这条求助没有推送给你，或你已经回复过了。"),
    "declined": N_("你已经婉拒了这条求助。"),
    "taken": N_("手慢了一步：这条求助已由其他志愿者接单。谢谢你的热心！"),
    "status_changed": N_("这条求助的状态已经变了（可能已被取消或处理），请查看最新状态。"),
    "cancelled": N_("这条求助已被居民取消，不用再接单了。"),
    "not_pending": N_("这条求助已经审核过了。"),
    "not_assignee": N_("这条求助不是派给你的。"),
    "not_resident": N_("只有发起求助的居民可以这样做。"),
    "not_done": N_("志愿者还没有报告完成。"),
    "already_confirmed": N_("这条求助已经确认过了。"),
    "not_volunteer": N_("只能派给已注册的志愿者（且不是求助人本人）。"),
    "bad_hours": N_("服务时长应在 0–24 小时之间。"),
    "bad_interval": N_("看望间隔应在 1–90 天之间。"),
    "day_limit": N_("志愿者这一天的服务时长已达 24 小时上限，不能再记录。请联系协调员核对。"),
    "not_in_org": N_("只能与本组织的志愿者结对。"),
    "not_manager": ORG_DENIED,
}
FAILED = N_("操作没有成功，请稍后再试。")


def err(turn: Turn, error: service.RequestError) -> None:
    turn.say(ERRORS.get(error.reason, FAILED))


# ---- the request form's draft (request_form, asking) ------------------------------------------------
class RequestDraft(BaseModel):
    category: str = "other"
    description: str = ""
    community: str | None = None
    address_enc: str | None = None
    preferred_time: str | None = None
    phone_enc: str | None = None
    phone_masked: str | None = None
    contact_name: str | None = None
    notes: str | None = None
    # where the opening questions stand
    has_requests: bool = False  # 查看我的求助 offered with the categories
    guessed: bool = False  # the category was guessed from a sentence: confirm it
    picking: bool = False  # pick another category
    candidates: list[str] = []  # the classifier was unsure: ask which of these (then 其他类别)
    redo: bool = False  # the description is asked again from the summary


# ---- data: typed words and patterns (common/data/requests.json) ------------------------------------
@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = load_json("requests.json")
    return data


def words(command: str) -> list[str]:
    """The words a user types for a command."""
    return list(_data()["commands"].get(command, []))


def word_set(name: str) -> frozenset[str]:
    return frozenset(_data()[name])


def separator(name: str) -> str:
    """Punctuation joining names or fields in a list (「、」「，」「｜」)."""
    return str(_data()["separators"][name])


@cache
def pattern(name: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(_data()["patterns"][name], flags)


# ---- labels ----------------------------------------------------------------------------------------
def cat_label(turn: Turn, code: str) -> str:
    return turn.text(service.category_text(code))


def category_choices(turn: Turn) -> list[Choice]:
    return [Choice(label=cat_label(turn, code), value=f"a:cat:{code}") for code in CATEGORIES]


STATUS_LABELS: dict[str, Msg] = {
    "pending_review": N_("待审核"),
    "approved": N_("待接单"),
    "assigned": N_("已派单"),
    "in_progress": N_("服务中"),
    "done": N_("已完成"),
    "rated": N_("已评价"),
    "cancelled": N_("已取消"),
    "rejected": N_("已驳回"),
}
assert set(STATUS_LABELS) == set(REQUEST_STATUSES)


def status_label(turn: Turn, status: str) -> str:
    label = STATUS_LABELS.get(status)
    return turn.text(label) if label is not None else status


def request_button(turn: Turn, request_id: int, category: str, command: str = "reqv") -> Choice:
    return Choice(label=f"#{request_id} {cat_label(turn, category)}"[:30], value=f"{command}:{request_id}")


def hours_text(hours: float | None) -> str:
    return f"{hours or 0:g}"


# ---- typed payloads ---------------------------------------------------------------------------------
@payload("reqv")
class ViewRequest(Payload):
    request_id: int


@payload("take")
class TakeRequest(Payload):
    request_id: int


@payload("decline")
class DeclineRequest(Payload):
    request_id: int


@payload("svcstart")
class StartService(Payload):
    request_id: int


@payload("svcdone")
class FinishService(Payload):
    request_id: int


@payload("rate")
class RateRequest(Payload):
    request_id: int


@payload("cancelreq")
class CancelRequest(Payload):
    request_id: int


@payload("approve")
class ApproveRequest(Payload):
    request_id: int


@payload("reject")
class RejectRequest(Payload):
    request_id: int


@payload("recat")
class Recategorize(Payload):
    request_id: int


@payload("assign")
class AssignRequest(Payload):
    request_id: int


@payload("reqconfirm")
class ConfirmRequest(Payload):
    request_id: int


P = TypeVar("P", bound=Payload)
