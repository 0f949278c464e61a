"""Parsing what people type, and the at-rest protection of personal information."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from handlers.privacy import FieldCipher, mask_id_number, mask_phone
from handlers.validation import (
    InvalidInput,
    make_id_number,
    parse_hours,
    parse_id_number,
    parse_local_datetime,
    parse_mobile,
    parse_number_list,
)

TODAY = date(2026, 3, 1)


def test_id_number_check_digit_birth_date_gender() -> None:
    parsed = parse_id_number("11010519491231002X", today=TODAY)  # the standard's published example
    assert parsed.birth_date == date(1949, 12, 31) and parsed.gender == "F"
    assert parse_id_number("11010519491231002x", today=TODAY).value.endswith("X")
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ", today=TODAY).value == "11010519491231002X"
    assert parsed.age_on(date(2026, 12, 30)) == 76 and parsed.age_on(date(2026, 12, 31)) == 77


@pytest.mark.parametrize(("raw", "key"), [
    ("11010519491231002", "id_format"),
    ("110105194912310021", "id_checksum"),
    ("110105490101002", "id_old_15"),
    ("abcdefghijklmnopqr", "id_format"),
    (make_id_number("11010520300101001"), "id_birth"),  # born in the future
    (make_id_number("11010519490231001"), "id_birth"),  # 31 February
])
def test_id_number_errors_are_specific(raw: str, key: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_id_number(raw, today=TODAY)
    assert info.value.key == key


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "138-0013-8000", "0086 13800138000",
                                 "８６１３８００１３８０００"])
def test_mobile_numbers_accepted(raw: str) -> None:
    assert parse_mobile(raw) == "13800138000"


@pytest.mark.parametrize("raw", ["1380013800", "23800138000", "12345678901", "010-12345678", ""])
def test_mobile_numbers_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        parse_mobile(raw)


def test_dates_and_lists_and_hours() -> None:
    assert parse_local_datetime("2026-12-05 09:00", today=TODAY) == datetime(2026, 12, 5, 9, 0)
    assert parse_local_datetime("12月5日 9点30", today=TODAY) == datetime(2026, 12, 5, 9, 30)
    assert parse_local_datetime("1/5 14:00", today=TODAY) == datetime(2027, 1, 5, 14, 0)  # past → next year
    with pytest.raises(InvalidInput):
        parse_local_datetime("明天上午", today=TODAY)
    assert parse_number_list("1,3、5", maximum=12) == [1, 3, 5]
    assert parse_number_list("135", maximum=12) == [1, 3, 5]
    with pytest.raises(InvalidInput):
        parse_number_list("0,13", maximum=12)
    assert parse_hours("2.5小时") == 2.5 and parse_hours("3h") == 3
    with pytest.raises(InvalidInput):
        parse_hours("-1")


def test_cipher_round_trip_is_randomised_and_keyed() -> None:
    cipher = FieldCipher("a-secret-of-sixteen+")
    first, second = cipher.encrypt("11010519491231002X"), cipher.encrypt("11010519491231002X")
    assert first != second and "11010519491231002X" not in first
    assert cipher.decrypt(first) == cipher.decrypt(second) == "11010519491231002X"
    assert cipher.digest("x") == cipher.digest("x") != FieldCipher("another-secret-123").digest("x")
    with pytest.raises(Exception):  # noqa: B017 - any authentication failure will do
        FieldCipher("another-secret-123").decrypt(first)


def test_masks() -> None:
    assert mask_id_number("11010519491231002X") == "1101**********002X"
    assert mask_phone("13800138000") == "138****8000"


def test_width_normalisation_keeps_chinese_punctuation() -> None:
    from common.text import normalize_width

    assert normalize_width("我奶奶一个人住，想请人陪她聊天！") == "我奶奶一个人住，想请人陪她聊天！"
    assert normalize_width("＋８６　１３８ＡＢｃ") == "+86 138ABc"


def test_cn_number() -> None:
    from common.text import cn_number

    cases = {"12": 12, "１２": 12, "三": 3, "两": 2, "十": 10, "十一": 11, "二十": 20, "二十五": 25, "三十": 30}
    for token, value in cases.items():
        assert cn_number(token) == value, token
    for token in ("", "半", "一百", "十零", "初一", "abc", "1.5"):
        assert cn_number(token) is None, token
