"""Passive replies longer than WeChat takes: cut into pages, the rest kept for "下一页"."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.exceptions import InvalidTag

from bot.channels.wechat.convert import INVALID_XML_CHARS
from common.i18n import _, render
from common.lang import to_simplified
from handlers.privacy import FieldCipher
from models import utcnow
from models.db import SessionFactory
from services.wechat_state import save_reply_pages, take_next_page

# WeChat cuts passive text replies at about 2048 bytes: stay strictly below
PASSIVE_LIMIT_BYTES = 2047
WORDS_FILE = Path(__file__).resolve().parents[2] / "data" / "wechat_words.json"
NEXT_PAGE_WORDS = frozenset(json.loads(WORDS_FILE.read_text(encoding="utf-8"))["next_page"])
# a text longer than this is no next-page word in either script: most messages skip the 繁→简 conversion
_LONGEST_NEXT_PAGE_WORD = 2 * max(len(word) for word in NEXT_PAGE_WORDS)


def asks_next_page(text: str | None) -> bool:
    if text is None:
        return False
    text = text.strip()
    return len(text) <= _LONGEST_NEXT_PAGE_WORD and to_simplified(text).lower() in NEXT_PAGE_WORDS


def more_hint(lang: str | None) -> str:
    """The "reply 下一页" line, in the reply's language."""
    return render(_("（回复「下一页」查看更多）"), lang)


def _split_bytes(line: str, budget: int) -> list[str]:
    pieces, current, size = [], [], 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > budget:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    pieces.append("".join(current))
    return pieces


def paginate(text: str, *, lang: str | None, limit: int = PASSIVE_LIMIT_BYTES) -> list[str]:
    """Pages of at most ``limit`` UTF-8 bytes, cut at line ends where possible; all but the last
    end with a "reply 下一页" hint in ``lang`` (the reply's language)."""
    text = INVALID_XML_CHARS.sub("", text)
    if len(text.encode("utf-8")) <= limit:
        return [text]
    hint = "\n\n" + more_hint(lang)
    budget = limit - len(hint.encode("utf-8"))
    pages: list[str] = []
    lines: list[str] = []
    size = -1  # bytes of "\n".join(lines)
    for line in text.split("\n"):
        for piece in _split_bytes(line, budget) if len(line.encode("utf-8")) > budget else [line]:
            width = len(piece.encode("utf-8")) + 1
            if lines and size + width > budget:
                pages.append("\n".join(lines).rstrip("\n"))
                lines, size = [], -1
            lines.append(piece)
            size += width
    if lines:
        pages.append("\n".join(lines).strip("\n"))
    pages = [page for page in pages if page.strip()] or [text[:1]]
    return [page + hint for page in pages[:-1]] + [pages[-1]]


class ReplyPageStore:
    """The pages waiting for "下一页", one row per openid (kept by ``services.wechat_state``).

    Each page is stored sealed with the core's field cipher: a page can show what only its reader
    may see (an assigned volunteer's view of a resident's address).
    """

    def __init__(self, sessions: SessionFactory, cipher: FieldCipher) -> None:
        self.sessions = sessions
        self.cipher = cipher

    async def replace(self, openid: str, pages: list[str]) -> None:
        """The pages after the one just sent; none → forget what an earlier long reply left."""
        sealed = [self.cipher.encrypt(page) for page in pages]
        async with self.sessions() as session:
            await save_reply_pages(session, openid=openid, pages=sealed, now=utcnow())

    async def take_next(self, openid: str, message_key: str) -> str | None:
        """The next page; a retry of the same "下一页" message gets the same page again."""
        async with self.sessions() as session:
            sealed = await take_next_page(session, openid=openid, message_key=message_key, now=utcnow())
        if sealed is None:
            return None
        try:
            return self.cipher.decrypt(sealed)
        except (ValueError, InvalidTag):  # stored before pages were sealed, or under another key
            return None
