"""Typed button payloads (like aiogram's ``CallbackData``): packed and unpacked in one place.

A payload class names its prefix and its fields; ``pack()`` gives ``"prefix:field1:field2"``
(checked against the 64-byte limit that Telegram's callback_data and WeChat's EventKey share) and
``unpack()`` turns a string from the wire back into the typed object, refusing anything that does
not fit: unknown prefix, wrong field count, non-ASCII digits, integers out of the database's range.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar, Self, get_type_hints

from common.i18n import N_

MAX_PAYLOAD_BYTES = 64
MAX_ID = 2**31 - 1  # an INTEGER column on PostgreSQL
SEPARATOR = ":"
# ASCII digits only: "²".isdigit() and "٣".isdigit() are True in Python, and int("²") raises
_INT = re.compile(r"[0-9]{1,10}")
_WORD = re.compile(r"[\w.\-]{0,64}", re.ASCII)


# the answer to a payload that does not unpack (the engine adds the help menu)
EXPIRED = N_("这个选项已经过期了，请重新开始。")


class InvalidPayload(ValueError):
    """A payload that this version of the bot did not make (old, forged, or out of range)."""


class Payload:
    """Subclass as a dataclass: ``@payload("join") class Join(Payload): activity_id: int``."""

    prefix: ClassVar[str]

    def pack(self) -> str:
        parts = [self.prefix]
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            text = str(int(value)) if isinstance(value, bool) else str(value)
            if SEPARATOR in text:
                raise ValueError(f"{field.name} may not contain '{SEPARATOR}': {text!r}")
            parts.append(text)
        packed = SEPARATOR.join(parts)
        if len(packed.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload over {MAX_PAYLOAD_BYTES} bytes: {packed!r}")
        return packed

    @classmethod
    def unpack(cls, value: str) -> Self:
        prefix, _, rest = value.partition(SEPARATOR)
        if prefix != cls.prefix:
            raise InvalidPayload(f"not a {cls.prefix} payload")
        return cls.from_arg(rest)

    @classmethod
    def from_arg(cls, arg: str) -> Self:
        """The fields part alone (what follows ``prefix:``), as typed commands give it."""
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        raw = arg.split(SEPARATOR) if fields else []
        if len(raw) != len(fields) or (not fields and arg):
            raise InvalidPayload(f"{cls.prefix}: expected {len(fields)} field(s)")
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for field, text in zip(fields, raw, strict=True):
            values[field.name] = _convert(hints[field.name], text, field.name)
        return cls(**values)


def parse_int(text: str, *, low: int = 0, high: int = MAX_ID) -> int | None:
    """A typed or packed whole number in ``low..high`` (never beyond a PostgreSQL INTEGER), else None.

    Every number that may reach the database or index a list is read here: ASCII digits only, at
    most 10 of them, so no superscript, no other script's digits and no 4300-digit string reaches
    ``int()`` or a query.
    """
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= min(high, MAX_ID) else None


def _convert(kind: Any, text: str, name: str) -> Any:
    if kind is int:
        value = parse_int(text)
        if value is None:
            raise InvalidPayload(f"{name}: not an id in range")
        return value
    if kind is bool:
        if text not in ("0", "1"):
            raise InvalidPayload(f"{name}: not a flag")
        return text == "1"
    if not _WORD.fullmatch(text):
        raise InvalidPayload(f"{name}: not a word")
    return text


def payload(prefix: str):  # noqa: ANN201 - a class decorator
    """Declare a payload class: a frozen dataclass with a prefix."""

    def wrap(cls: type) -> type:
        cls.prefix = prefix
        return dataclasses.dataclass(frozen=True, slots=True)(cls)

    return wrap
