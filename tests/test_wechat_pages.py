"""WeChat pagination: the "reply 下一页" hint is in the reply's language; next-page words come from data."""

from __future__ import annotations

import pytest

from bot.channels.wechat.pages import PASSIVE_LIMIT_BYTES, asks_next_page, paginate


@pytest.mark.parametrize(("lang", "hint"), [
    ("zh-Hans", "（回复「下一页」查看更多）"),
    ("zh-Hant", "（回覆「下一頁」查看更多）"),
    ("en", '(Reply "next" for more)'),
])
def test_the_hint_follows_the_reply_language_not_the_text(lang: str, hint: str) -> None:
    text = "\n".join(["一行志愿活动说明 line"] * 300)  # the same text, whatever the reader's language
    pages = paginate(text, lang=lang)
    assert len(pages) > 1
    assert all(page.endswith(hint) for page in pages[:-1]) and not pages[-1].endswith(hint)
    assert all(len(page.encode("utf-8")) <= PASSIVE_LIMIT_BYTES for page in pages)


def test_a_short_reply_is_one_page_without_hint() -> None:
    assert paginate("好的", lang="en") == ["好的"]


@pytest.mark.parametrize("word", ["下一页", "下一頁", "next", " Next Page "])
def test_next_page_words(word: str) -> None:
    assert asks_next_page(word)


def test_other_words_are_not_next_page() -> None:
    assert not asks_next_page("下一个") and not asks_next_page(None)
