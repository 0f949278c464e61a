"""Declarative dialogs: a flow lists its fields in order and gets ask / re-ask / confirm / edit for free.

A flow's whole graph is its field list (like python-telegram-bot's ConversationHandler table)::

    flow = Flow("reg", RegistrationDraft, [
        Field("name", _("请输入你的真实姓名："), parse=parse_name, label=_("姓名")),
        Field("phone", _("请输入你的手机号："), parse=parse_mobile, label=_("手机号"), show=mask_phone),
        ...
    ], done=save_registration, title=_("请确认你的信息："))
    flow.register(router)

The draft is a pydantic model stored in ``DialogState.data["draft"]`` (JSON); each field is
asked in order unless its ``when`` says it does not apply; a parser that raises
:class:`InvalidInput` gets the flow's error text for that key and the same question again. With
``confirm`` on, the draft is summarised with 确认提交 / 修改 / 放弃; 修改 lists the editable fields
and goes straight back to the summary after the one that changed. A field with ``confirm`` shows its
reading back (「2026-12-20（周日）14:30，对吗？」) before keeping it. A flow idle longer than the
deployment's ``flow_timeout`` ends on the next message (see the engine), its draft deleted.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from common.i18n import Text, _, lines
from common.lang import to_simplified
from handlers.messages import Choice
from handlers.turn import FeatureRouter, Role, Turn
from handlers.validation import InvalidInput
from handlers.words import load_words

D = TypeVar("D", bound=BaseModel)

ANSWER = "a:"  # a button answering the current step: "a:<value>"
CONFIRM, EDIT = "confirm", "edit"
CHECK = "check:"  # the step asking back a field's reading: "check:<field>"
YES, NO, CHANGE = "yes", "no", "edit"
SKIP = "skip"
SKIP_WORDS = frozenset(load_words("engine_words")["skip"])
YES_WORDS = frozenset(load_words("flow_words")["yes"])
NO_WORDS = frozenset(load_words("flow_words")["no"])

GENERIC_ERROR = _("输入有误，请重新输入。")


class Again(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a parser that took the input but wants the same question again (a toggled choice)."""


class Answered(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a parser that answered the message itself (handed it to a command): the question stays open,
    not asked again."""


Maybe = Any | Awaitable[Any]
Dynamic = Text | Callable[[Turn, Any], Text]


@dataclass(frozen=True)
class Field:
    """One question of a flow.

    ``parse(turn, text)`` (or ``parse(turn, text, draft)``) returns the value stored in
    ``draft.<name>``, raises :class:`InvalidInput` to re-ask with an error, or :class:`Again` to
    re-ask without one. ``store(draft, value)`` replaces the plain assignment (a parser that yields
    several fields). ``label`` names the field on the summary and the edit menu: a field without
    one is not editable. ``show(turn, draft)`` is its value on the summary (default: the value).
    ``choices(turn, draft)`` are buttons whose value comes back to ``parse`` as the text.
    ``optional`` adds a 跳过 button (and accepts 跳过 typed), leaving the value unset.
    ``reprompt=False`` re-asks after an error with the error text alone (the same buttons), for
    errors that already say what to answer. ``confirm(turn, draft)`` is called with the draft as it
    would be with the new value: when it returns a reading (「2026-12-20（周日）14:30」) the flow asks
    「…，对吗？」 with 对 / 不对 before keeping the value; 不对 asks the field again, and a new answer
    typed instead is read as the field's answer.
    """

    name: str
    prompt: Dynamic
    parse: Callable[..., Maybe]
    label: Text | None = None
    show: Callable[[Turn, Any], Text | None] | None = None
    choices: Callable[[Turn, Any], list[Choice]] | None = None
    optional: bool = False
    when: Callable[[Any], bool] | None = None
    store: Callable[[Any, Any], None] | None = None
    reprompt: bool = True
    confirm: Callable[[Turn, Any], Text | None] | None = None


@functools.cache
def _takes_draft(parse: Callable[..., Maybe]) -> bool:
    """Whether a parser is ``parse(turn, text, draft)`` (looked up once per parser, not per answer)."""
    return len(inspect.signature(parse).parameters) >= 3


async def _maybe_await(value: Maybe) -> Any:
    return await value if inspect.isawaitable(value) else value


def _dynamic(turn: Turn, value: Dynamic, draft: Any) -> Text:
    return value(turn, draft) if callable(value) else value


class Flow(Generic[D]):
    def __init__(
        self,
        name: str,
        draft: type[D],
        fields: Sequence[Field],
        *,
        done: Callable[[Turn, D], Awaitable[None]],
        title: Dynamic | None = None,
        confirm: bool = True,
        errors: Mapping[str, Dynamic] | None = None,
        confirm_label: Text | None = None,
        requires: Role | None = None,
    ) -> None:
        self.name = name
        self.draft_type = draft
        self.fields = list(fields)
        self.by_name = {field.name: field for field in self.fields}
        self.done = done
        self.title = title if title is not None else _("请确认：")
        self.confirm = confirm
        self.errors = dict(errors or {})
        self.confirm_label = confirm_label if confirm_label is not None else _("确认提交")
        # the role every answer needs: the engine checks it before each step, so a role revoked
        # mid-dialog ends the dialog at the next answer (the write checks the organization again)
        self.requires = requires

    # ---- state ---------------------------------------------------------------------------------
    def load(self, turn: Turn) -> D:
        return self.draft_type.model_validate(turn.state.data.get("draft") or {})

    def save(self, turn: Turn, draft: D, **extra: Any) -> None:
        # reassign so SQLAlchemy sees the JSON column change
        turn.state.data = {**turn.state.data, "draft": draft.model_dump(mode="json"), **extra}

    def register(self, router: FeatureRouter) -> None:
        router.flows[self.name] = self

    # ---- walking -------------------------------------------------------------------------------
    async def start(self, turn: Turn, draft: D | None = None, *, at: str | None = None) -> None:
        """Begin (or begin again at field ``at``) with a fresh or given draft."""
        turn.state.data = {}
        draft = draft if draft is not None else self.draft_type()
        self.save(turn, draft)
        if at is not None:
            self.ask(turn, self.by_name[at], draft)
        else:
            await self.advance(turn, draft, after=None)

    def applies(self, field: Field, draft: D) -> bool:
        return field.when is None or bool(field.when(draft))

    async def advance(self, turn: Turn, draft: D, *, after: str | None) -> None:
        """Ask the next field that applies; after the last one, confirm (or finish)."""
        if turn.state.data.get("editing"):
            pending = [f for f in self.fields if self.applies(f, draft) and f.name in turn.state.data.get("pending", [])]
            if pending:
                self.ask(turn, pending[0], draft)
                return
            self.ask_confirm(turn, draft)
            return
        names = [field.name for field in self.fields]
        start = names.index(after) + 1 if after is not None else 0
        for field in self.fields[start:]:
            if self.applies(field, draft):
                self.ask(turn, field, draft)
                return
        if self.confirm:
            self.ask_confirm(turn, draft)
        else:
            await self.finish(turn, draft)

    def ask(self, turn: Turn, field: Field, draft: D, error: Text | None = None) -> None:
        choices = list(field.choices(turn, draft)) if field.choices else []
        if field.optional:
            choices.append(turn.choice(_("跳过"), ANSWER + SKIP))
        if error is not None and not field.reprompt:
            turn.ask(self.name, field.name, error, choices)
            return
        prompt = _dynamic(turn, field.prompt, draft)
        turn.ask(self.name, field.name, lines(error, prompt) if error is not None else prompt, choices)

    def ask_confirm(self, turn: Turn, draft: D) -> None:
        rows: list[Text] = [_dynamic(turn, self.title, draft)]
        for field in self.fields:
            if field.label is None or not self.applies(field, draft):
                continue
            value = field.show(turn, draft) if field.show else getattr(draft, field.name, None)
            if value is None or value == "" or value == []:
                value = _("未填")
            rows.append(_("{label}：{value}", label=field.label, value=value))
        turn.state.data = {**turn.state.data, "editing": False, "pending": []}
        turn.ask(self.name, CONFIRM, lines(*rows), [
            turn.choice(self.confirm_label, ANSWER + YES),
            turn.choice(_("修改"), ANSWER + CHANGE),
            turn.choice(_("放弃"), ANSWER + NO),
        ])

    def ask_edit(self, turn: Turn, draft: D) -> None:
        choices = [turn.choice(field.label, ANSWER + "field:" + field.name)
                   for field in self.fields if field.label is not None and self.applies(field, draft)]
        turn.ask(self.name, EDIT, _("要修改哪一项？"), choices)

    async def finish(self, turn: Turn, draft: D) -> None:
        turn.end_flow()
        await self.done(turn, draft)

    # ---- one message in the flow ---------------------------------------------------------------
    async def handle(self, turn: Turn, text: str) -> None:
        draft = self.load(turn)
        step = turn.state.step or ""
        answer = text[len(ANSWER):] if text.startswith(ANSWER) else None
        if step == CONFIRM:
            await self._on_confirm(turn, draft, answer, text)
            return
        if step.startswith(CHECK) and (checked := self.by_name.get(step.removeprefix(CHECK))) is not None:
            await self._on_check(turn, draft, checked, answer, text)
            return
        if step == EDIT:
            name = (answer or "").removeprefix("field:")
            field = self.by_name.get(name)
            if field is None or field.label is None:
                self.ask_edit(turn, draft)
                return
            later = [f.name for f in self.fields[self.fields.index(field) + 1:]]
            # fields that only apply because of the new value get asked too (e.g. a guardian)
            before = {f.name for f in self.fields if self.applies(f, draft)}
            self.save(turn, draft, editing=True, pending=[n for n in later if n not in before])
            self.ask(turn, field, draft)
            return
        field = self.by_name.get(step)
        if field is None:  # a step this version does not know: start over
            await self.start(turn)
            return
        await self._on_field(turn, draft, field, answer if answer is not None else text)

    async def _on_field(self, turn: Turn, draft: D, field: Field, value_text: str) -> None:
        if field.optional and (value_text == SKIP or value_text.strip().lower() in SKIP_WORDS):
            setattr(draft, field.name, None)
        else:
            try:
                value = await _maybe_await(self._call_parse(field, turn, value_text, draft))
            except Answered:
                return
            except Again:
                self.save(turn, draft)
                self.ask(turn, field, draft)
                return
            except InvalidInput as error:
                self.ask(turn, field, draft, _dynamic(turn, self.errors.get(error.key, GENERIC_ERROR), draft))
                return
            proposed = draft.model_copy(deep=True)
            if field.store is not None:
                field.store(proposed, value)
            else:
                setattr(proposed, field.name, value)
            reading = field.confirm(turn, proposed) if field.confirm is not None else None
            if reading is not None:
                self.save(turn, draft, proposed=proposed.model_dump(mode="json"))
                turn.ask(self.name, CHECK + field.name, _("{reading}，对吗？", reading=reading), [
                    turn.choice(_("对"), ANSWER + YES), turn.choice(_("不对"), ANSWER + NO)])
                return
            draft = proposed
        await self._kept(turn, draft, field)

    async def _on_check(self, turn: Turn, draft: D, field: Field, answer: str | None, text: str) -> None:
        """The answer to 「…，对吗？」: keep the reading, ask the field again, or read a new answer."""
        typed = to_simplified(text.strip()).lower()
        proposed = turn.state.data.get("proposed")
        if (answer == YES or (answer is None and typed in YES_WORDS)) and proposed:
            await self._kept(turn, self.draft_type.model_validate(proposed), field)
        elif answer in (YES, NO) or (answer is None and typed in NO_WORDS | YES_WORDS):
            self.save(turn, draft, proposed=None)
            self.ask(turn, field, draft, _("好的，请重新输入。"))
        else:
            await self._on_field(turn, draft, field, answer if answer is not None else text)

    async def _kept(self, turn: Turn, draft: D, field: Field) -> None:
        """A field's value is in ``draft``: note what an edit still has to ask, then go on."""
        turn.state.data = {key: value for key, value in turn.state.data.items() if key != "proposed"}
        if turn.state.data.get("editing"):
            pending = [n for n in turn.state.data.get("pending", []) if n != field.name]
            now_applying = {f.name for f in self.fields if self.applies(f, draft)}
            later = [f.name for f in self.fields[self.fields.index(field) + 1:]]
            newly = [n for n in later if n in now_applying and n not in pending and getattr(draft, n, None) is None]
            self.save(turn, draft, pending=pending + newly)
        else:
            self.save(turn, draft)
        await self.advance(turn, draft, after=field.name)

    @staticmethod
    def _call_parse(field: Field, turn: Turn, text: str, draft: Any) -> Maybe:
        return field.parse(turn, text, draft) if _takes_draft(field.parse) else field.parse(turn, text)

    async def _on_confirm(self, turn: Turn, draft: D, answer: str | None, text: str) -> None:
        if answer == YES:
            await self.finish(turn, draft)
        elif answer == CHANGE:
            self.ask_edit(turn, draft)
        elif answer == NO:
            turn.end_flow()
            turn.say(_("好的，已放弃，没有保存任何信息。"))
        else:
            turn.say(_("请选择「确认提交」「修改」或「放弃」。"))
            self.ask_confirm(turn, draft)
