"""Parsing and checking what people type: ID numbers, phones, dates, numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time

from common.text import normalize_width
from common.timeparse import parse_duration_hours, parse_when

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


@dataclass(frozen=True, slots=True)
class IdNumber:
    value: str
    birth_date: date
    gender: str  # "M" / "F"

    def age_on(self, today: date) -> int:
        years = today.year - self.birth_date.year
        if (today.month, today.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


class InvalidInput(ValueError):
    """Carries a message key the dialog turns into a specific, translated explanation."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def parse_id_number(raw: str, *, today: date) -> IdNumber:
    text = re.sub(r"\s+", "", normalize_width(raw)).upper()
    if not re.fullmatch(r"\d{17}[\dX]", text):
        if re.fullmatch(r"\d{15}", text):
            raise InvalidInput("id_old_15")
        raise InvalidInput("id_format", length=len(text))
    expected = _CHECK[sum(int(d) * w for d, w in zip(text[:17], _WEIGHTS, strict=True)) % 11]
    if text[17] != expected:
        raise InvalidInput("id_checksum")
    try:
        birth = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError as exc:
        raise InvalidInput("id_birth") from exc
    if birth > today or birth.year < 1900:
        raise InvalidInput("id_birth")
    gender = "M" if int(text[16]) % 2 else "F"
    return IdNumber(value=text, birth_date=birth, gender=gender)


def make_id_number(prefix17: str) -> str:
    """Append the check digit (used by tests and fixtures to build valid numbers)."""
    return prefix17 + _CHECK[sum(int(d) * w for d, w in zip(prefix17, _WEIGHTS, strict=True)) % 11]


def parse_mobile(raw: str) -> str:
    text = re.sub(r"[\s\-()（）]", "", normalize_width(raw))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not re.fullmatch(r"1[3-9]\d{9}", text):
        raise InvalidInput("phone_format")
    return text


def parse_name(raw: str) -> str:
    text = normalize_width(raw).strip()
    if not 2 <= len(text) <= 30 or re.search(r"[\d@#$%^&*<>/\\{}\[\]|]", text):
        raise InvalidInput("name_format")
    return text


def parse_positive_int(raw: str, *, maximum: int = 100000) -> int:
    text = normalize_width(raw).strip()
    if not re.fullmatch(r"\d{1,7}", text) or not 1 <= int(text) <= maximum:
        raise InvalidInput("number_format", maximum=maximum)
    return int(text)


def parse_hours(raw: str) -> float:
    """'2', '2.5小时', '3h', '两个小时', '一个半小时', '半小时', '90分钟' → hours (common/timeparse)."""
    value = parse_duration_hours(raw)
    if value is None:
        raise InvalidInput("hours_format")
    return value


def parse_local_datetime(raw: str, *, today: date) -> datetime:
    """A day and a time → naive local time: '2026-12-05 09:00', '12月5日 9点30', '明天下午3点',
    '下周六上午9点', '腊月廿三 14点' (common/timeparse; a date without a year already past is next year's)."""
    when = parse_when(raw, now=datetime.combine(today, time.min))
    if when is None or not when.has_time or not when.has_date:
        raise InvalidInput("datetime_format")
    return when.start


def parse_local_time(raw: str) -> time:
    """A time of day: '9:00', '14点30', '下午2点半', '九点一刻'."""
    when = parse_when(raw, now=datetime.combine(date.min, time.min))
    if when is None or when.has_date or when.end is not None or when.start.date() != date.min:
        raise InvalidInput("time_format")
    return when.start.time()


def parse_coordinates(raw: str) -> tuple[float, float]:
    text = normalize_width(raw)
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
    if len(numbers) != 2:
        raise InvalidInput("coords_format")
    lat, lon = float(numbers[0]), float(numbers[1])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidInput("coords_format")
    return lat, lon


def parse_number_list(raw: str, *, maximum: int) -> list[int]:
    """'1,3 5' / '1、3、5' / '135' (single digits) → [1, 3, 5]."""
    text = normalize_width(raw).strip()
    parts = [p for p in re.split(r"[\s,，、;；]+", text) if p]
    if len(parts) == 1 and re.fullmatch(r"\d+", parts[0]) and int(parts[0]) > maximum:
        parts = list(parts[0])
    numbers: list[int] = []
    for part in parts:
        if not part.isdigit() or not 1 <= int(part) <= maximum:
            raise InvalidInput("choice_list_format", maximum=maximum)
        if int(part) not in numbers:
            numbers.append(int(part))
    if not numbers:
        raise InvalidInput("choice_list_format", maximum=maximum)
    return numbers
