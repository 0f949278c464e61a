"""Write common/data/pinyin.json: the toneless pinyin of the 6,763 GB2312 characters (pypinyin's
default reading), so organizations can be matched by pinyin ("Huajiadi" → 花家地社区) without
loading pypinyin (~1 s to import) in the server. Run once: ``pip install pypinyin; python scripts/make_pinyin_table.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pypinyin import Style, lazy_pinyin

OUT = Path(__file__).resolve().parents[1] / "common" / "data" / "pinyin.json"


def main() -> None:
    table: dict[str, str] = {}
    for high in range(0xB0, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                char = bytes((high, low)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            reading = lazy_pinyin(char, style=Style.NORMAL)[0]
            if reading != char and reading.isascii():
                table[char] = reading.replace("ü", "v")
    text = "".join(f"{reading} {''.join(chars)}\n" for reading, chars in sorted(_group(table).items()))
    OUT.write_text(json.dumps(_group(table), ensure_ascii=False, sort_keys=True, indent=0) + "\n", encoding="utf-8")
    print(f"{len(table)} characters, {len(text)} bytes → {OUT}")


def _group(table: dict[str, str]) -> dict[str, str]:
    grouped: dict[str, str] = {}
    for char, reading in sorted(table.items()):
        grouped[reading] = grouped.get(reading, "") + char
    return grouped


if __name__ == "__main__":
    main()
