"""Finding and masking personal details in free text: mobile numbers and street addresses.

Residents type them into sentences ("我家住在北京市朝阳区花家地西里3号楼2单元501，电话13800138000");
the sentence is kept readable for reviewers with both masked, and the details themselves go to
encrypted fields. The address patterns are data (``common/data/requests.json``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from common.lang import to_simplified
from common.resources import load_json
from common.text import normalize_width

MASK = "****"
# a mainland mobile number, optionally +86 and spaces or dashes: 138 0013 8000, +86-138-0013-8000
PHONE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
# how many characters of the place after the administrative divisions stay readable
PLACE_SHOWN = 3


@cache
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(load_json("requests.json")["patterns"][name])


def mask_phone(phone: str) -> str:
    """13800138000 → 138****8000."""
    return phone[:3] + MASK + phone[-4:]


def mask_address(address: str) -> str:
    """北京市朝阳区花家地西里3号楼2单元501 → 北京市朝阳区花家地****: the divisions and the start of the place."""
    divisions = _pattern("address_division").match(address)
    kept = divisions.group(0) if divisions else ""
    rest = re.split(r"\d", address[len(kept):], maxsplit=1)[0]
    return kept + rest[:PLACE_SHOWN] + MASK


def _mobile(raw: str) -> str:
    digits = re.sub(r"\D", "", raw)
    return digits[-11:]


@dataclass(frozen=True, slots=True)
class Scrubbed:
    text: str  # the text with every phone and the address masked
    phone: str | None  # the first mobile number (11 digits)
    address: str | None  # the first address


def find_address(text: str) -> tuple[int, int] | None:
    """Where the first address (a place and a door number: 3号楼2单元501, 中山路12号, 3號樓, Building 3
    Room 501, 12 Zhongshan Road) is in ``text``."""
    simplified = to_simplified(text)
    if len(simplified) == len(text):  # 繁體 read through 简体, at the same places
        text = simplified
    for match in _pattern("address").finditer(text):
        start = match.start()
        lead = _pattern("address_lead").match(match.group("place"))
        if lead:
            start += lead.end()
        return start, match.end()
    english = _pattern("address_en").search(text)
    return (english.start(), english.end()) if english else None


def scrub(text: str) -> Scrubbed:
    """Mask the mobile numbers and the first address of ``text``, and return what was masked."""
    text = normalize_width(text)
    phones = [_mobile(m.group(0)) for m in PHONE.finditer(text)]
    text = PHONE.sub(lambda m: mask_phone(_mobile(m.group(0))), text)
    address: str | None = None
    span = find_address(text)
    if span is not None:
        start, end = span
        address = text[start:end].strip()
        text = text[:start] + mask_address(address) + text[end:]
    return Scrubbed(text=text, phone=phones[0] if phones else None, address=address)
