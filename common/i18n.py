"""Texts in gettext catalogs: 简体 is the source text in the code, ``en`` and ``zh_Hant`` are ``.po`` files.

A text is written once, where it is used, as ``_("你好，{name}", name=...)``. That call does not
translate: it returns a :class:`Msg`, a message id plus its parameters, which is rendered in a
language only when it reaches a person (a reply in the turn's language, an outbox row in the
recipient's language when it is sent). So services can compose notices without knowing who reads
them, and a notice stored in the outbox is a message id plus parameters (:meth:`Msg.to_json`).

Catalogs: ``locales/<lang>/LC_MESSAGES/*.po`` (one file per feature, all merged), compiled in
memory when first loaded (Babel reads the ``.po``; no ``.mo`` build step). ``pybabel extract``
with the keywords ``_``, ``N_`` and ``ngettext:1,2`` finds every text (see docs/architecture.md).
"""

from __future__ import annotations

import functools
import gettext
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

SOURCE_LANGUAGE = "zh-Hans"
# language code → catalog directory under locales/
CATALOG_DIRS = {"zh-Hant": "zh_Hant", "en": "en"}
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"

Param = Any  # str | int | float | Msg | Lines, or a JSON form of them


@dataclass(frozen=True, slots=True)
class Msg:
    """A translatable text: 简体 message id, named parameters, and for plurals the plural id and count."""

    msgid: str
    params: Mapping[str, Param] = field(default_factory=dict)
    plural: str | None = None
    count: int | None = None

    def render(self, lang: str | None, catalogs: Catalogs | None = None) -> str:
        cats = catalogs or default_catalogs()
        template = cats.lookup(lang, self.msgid, self.plural, self.count)
        # always formatted, so a literal brace is written {{ or }} in every text alike
        values = {key: render(value, lang, cats) for key, value in self.params.items()}
        return template.format_map(values)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"msgid": self.msgid}
        if self.params:
            data["params"] = {key: to_json(value) for key, value in self.params.items()}
        if self.plural is not None:
            data["plural"] = self.plural
            data["count"] = self.count
        return data


@dataclass(frozen=True, slots=True)
class Lines:
    """Several texts shown together (one per line by default), each rendered in the same language."""

    parts: tuple[Text, ...]
    sep: str = "\n"

    def render(self, lang: str | None, catalogs: Catalogs | None = None) -> str:
        return self.sep.join(render(part, lang, catalogs) for part in self.parts)

    def to_json(self) -> dict[str, Any]:
        return {"lines": [to_json(part) for part in self.parts], "sep": self.sep}


@dataclass(frozen=True, slots=True)
class ByLanguage:
    """A text that data supplies in several languages (an observance's name and ``name_en``).

    Not a catalog text: it comes from the database. A language it lacks gets the 简体 text.
    """

    texts: Mapping[str, str]

    def render(self, lang: str | None, catalogs: Catalogs | None = None) -> str:
        return self.texts.get(lang or SOURCE_LANGUAGE) or self.texts.get(SOURCE_LANGUAGE, "")

    def to_json(self) -> dict[str, Any]:
        return {"by_language": dict(self.texts)}


# A text a person reads: a catalog message, several of them, or a plain string that is not
# translated (a user's own words, a name, a title, a number).
Text = Msg | Lines | ByLanguage | str


def by_language(zh: str, en: str | None = None) -> ByLanguage:
    return ByLanguage({SOURCE_LANGUAGE: zh, **({"en": en} if en else {})})


def month_day(day: date) -> Msg:
    return _("{month}月{day}日", month=day.month, day=day.day)


def month_day_time(moment: datetime) -> Msg:
    """A local (already converted) date and time: 12月20日 09:00."""
    return _("{month}月{day}日 {time}", month=moment.month, day=moment.day, time=f"{moment:%H:%M}")


def _(msgid: str, /, **params: Param) -> Msg:
    """Mark a 简体 source text for translation; ``{name}`` placeholders take ``params``."""
    return Msg(msgid, params)


# Same as _: the name says "only marked here, rendered later" where that helps a reader (tables).
N_ = _


def ngettext(singular: str, plural: str, count: int, /, **params: Param) -> Msg:
    """A text whose form depends on ``count`` (available to the text as ``{count}``)."""
    return Msg(singular, {"count": count, **params}, plural=plural, count=count)


def lines(*parts: Text | None, sep: str = "\n") -> Lines:
    """Join texts; ``None`` parts are left out (optional lines)."""
    return Lines(tuple(part for part in parts if part is not None), sep)


def join(parts: Iterable[Text], sep: str = "\n") -> Lines:
    return Lines(tuple(parts), sep)


def render(value: Param, lang: str | None, catalogs: Catalogs | None = None) -> str:
    if isinstance(value, Msg | Lines | ByLanguage):
        return value.render(lang, catalogs)
    if isinstance(value, dict) and ("msgid" in value or "lines" in value or "by_language" in value):
        return from_json(value).render(lang, catalogs)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_json(value: Param) -> Any:
    if isinstance(value, Msg | Lines | ByLanguage):
        return value.to_json()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def from_json(data: Any) -> Text:
    """The inverse of :func:`to_json` for a stored text (a plain string stays a string)."""
    if isinstance(data, dict) and "by_language" in data:
        return ByLanguage(dict(data["by_language"]))
    if isinstance(data, dict) and "lines" in data:
        return Lines(tuple(from_json(part) for part in data["lines"]), data.get("sep", "\n"))
    if isinstance(data, dict) and "msgid" in data:
        params = {key: _param_from_json(value) for key, value in (data.get("params") or {}).items()}
        return Msg(data["msgid"], params, data.get("plural"), data.get("count"))
    return "" if data is None else str(data)


def _param_from_json(value: Any) -> Param:
    return from_json(value) if isinstance(value, dict) else value


def placeholders(template: str) -> set[str]:
    """The named placeholders of a text (``{name}``), for checking translations keep them."""
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(template) if name}


class Catalogs:
    """The translations of every language, compiled from the ``.po`` files of one directory."""

    def __init__(self, directory: Path = LOCALES_DIR) -> None:
        self.directory = directory
        self._singular: dict[str, dict[str, str]] = {}
        self._plural: dict[str, dict[str, tuple[str, ...]]] = {}
        self._plural_rule: dict[str, Any] = {}
        for lang, folder in CATALOG_DIRS.items():
            singular: dict[str, str] = {}
            plural: dict[str, tuple[str, ...]] = {}
            for path in sorted((directory / folder / "LC_MESSAGES").glob("*.po")):
                with path.open("rb") as handle:
                    catalog = read_po(handle, locale=folder)
                for message in catalog:
                    if not message.id or message.fuzzy:
                        continue
                    if isinstance(message.id, tuple | list):
                        forms = tuple(message.string or ())
                        if all(forms):
                            plural[message.id[0]] = forms
                    elif message.string:
                        singular[message.id] = message.string
            self._singular[lang] = singular
            self._plural[lang] = plural
            self._plural_rule[lang] = gettext.c2py(get_plural(folder).plural_expr)

    def lookup(self, lang: str | None, msgid: str, plural: str | None = None, count: int | None = None) -> str:
        if lang not in CATALOG_DIRS:  # the source language (Chinese has one plural form)
            return msgid
        if plural is not None:
            forms = self._plural[lang].get(msgid)
            if forms:
                index = self._plural_rule[lang](count if count is not None else 1)
                return forms[min(index, len(forms) - 1)]
            return msgid
        return self._singular[lang].get(msgid, msgid)

    def messages(self, lang: str) -> dict[str, str | tuple[str, ...]]:
        """Every translated message id of a language (for the completeness test)."""
        return {**self._singular[lang], **self._plural[lang]}


@functools.cache
def default_catalogs() -> Catalogs:
    """The project's catalogs, loaded once per process (read-only after loading)."""
    return Catalogs()
