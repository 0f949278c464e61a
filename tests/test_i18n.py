"""Catalogs: every text in the code is translated in en and zh_Hant, with the same placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from common.i18n import (
    CATALOG_DIRS,
    Catalogs,
    _,
    by_language,
    default_catalogs,
    from_json,
    lines,
    ngettext,
    placeholders,
    render,
    to_json,
)

REPO = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
# zhconv's mechanical 繁體 gets these wrong in our texts; the catalogs must not contain them
MISCONVERSIONS = ("回復", "回複", "答複", "籤到", "籤退", "瞭解", "乾部", "註冊碼")


def extracted() -> dict[str, tuple[str, ...]]:
    """msgid → (the texts: singular, plural?) of every gettext call in the code."""
    found: dict[str, tuple[str, ...]] = {}
    for package in ("common", "models", "services", "handlers", "bot"):
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            REPO / package, method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=(),
            strip_comment_tags=True,
        ):
            texts = tuple(message) if isinstance(message, tuple | list) else (message,)
            if texts[0]:
                found[texts[0]] = texts
    return found


def test_the_code_has_texts_to_translate() -> None:
    assert len(extracted()) > 300


@pytest.mark.parametrize("lang", sorted(CATALOG_DIRS))
def test_every_text_is_translated_with_the_same_placeholders(lang: str) -> None:
    catalog = default_catalogs().messages(lang)
    missing = [msgid for msgid in extracted() if msgid not in catalog]
    assert not missing, f"{len(missing)} texts without a {lang} translation, e.g. {missing[:5]}"
    wrong = []
    for msgid, texts in extracted().items():
        translated = catalog[msgid]
        forms = translated if isinstance(translated, tuple) else (translated,)
        expected = set().union(*(placeholders(text) for text in texts))
        for form in forms:
            if placeholders(form) != expected - ({"count"} if len(texts) > 1 and "count" not in placeholders(form)
                                                 and lang == "zh_Hant" else set()):
                wrong.append((msgid, form))
    assert not wrong, f"placeholders differ in {lang}: {wrong[:5]}"


def test_traditional_catalog_has_no_known_misconversions() -> None:
    bad = [(msgid, text) for msgid, text in default_catalogs().messages("zh-Hant").items()
           for form in (text if isinstance(text, tuple) else (text,)) if any(w in form for w in MISCONVERSIONS)]
    assert not bad, bad[:5]


def test_traditional_catalog_is_not_the_simplified_text() -> None:
    """A 繁體 catalog that copied the 简体 msgids would pass the completeness test: check it converts."""
    singular = {k: v for k, v in default_catalogs().messages("zh-Hant").items() if isinstance(v, str)}
    differing = sum(1 for msgid, text in singular.items() if text != msgid)
    assert differing > len(singular) * 0.6


def test_messages_render_in_each_language_and_survive_storage() -> None:
    notice = lines(_("好消息：有人取消了报名，你已从候补转为正式参加「{title}」。", title="敬老院探访"),
                   by_language("植树节", "Arbor Day"))
    stored = to_json(notice)
    assert render(from_json(stored), "zh-Hans") == "好消息：有人取消了报名，你已从候补转为正式参加「敬老院探访」。\n植树节"
    english = render(from_json(stored), "en")
    assert "敬老院探访" in english and "好消息" not in english and english.endswith("Arbor Day")
    hant = render(from_json(stored), "zh-Hant")
    assert "報名" in hant and hant.endswith("植树节")  # data without a 繁體 text keeps its 简体


def test_plurals_follow_each_language(tmp_path: Path) -> None:
    folder = tmp_path / "en" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "t.po").write_text(
        'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
        'msgid "你有 {count} 条新通知"\nmsgid_plural "你有 {count} 条新通知"\n'
        'msgstr[0] "You have {count} new notice"\nmsgstr[1] "You have {count} new notices"\n',
        encoding="utf-8",
    )
    catalogs = Catalogs(tmp_path)
    one, many = ngettext("你有 {count} 条新通知", "你有 {count} 条新通知", 1), ngettext(
        "你有 {count} 条新通知", "你有 {count} 条新通知", 3)
    assert one.render("en", catalogs) == "You have 1 new notice"
    assert many.render("en", catalogs) == "You have 3 new notices"
    assert many.render("zh-Hans", catalogs) == "你有 3 条新通知"
    # a language without a translation of this text falls back to the 简体 source, never to nothing
    assert many.render("zh-Hant", catalogs) == "你有 3 条新通知"


@pytest.mark.parametrize("folder", sorted(CATALOG_DIRS.values()))
def test_each_text_is_translated_in_one_place(folder: str) -> None:
    """Domains are merged at load: a text in two .po files could silently get either translation."""
    from babel.messages.pofile import read_po

    where: dict[str, list[str]] = {}
    for path in sorted((REPO / "locales" / folder / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=folder):
                if message.id:
                    key = message.id if isinstance(message.id, str) else message.id[0]
                    where.setdefault(key, []).append(path.stem)
    twice = {key: files for key, files in where.items() if len(files) > 1}
    assert twice == {}


@pytest.mark.parametrize("lang", sorted(CATALOG_DIRS))
def test_catalogs_hold_no_text_the_code_no_longer_uses(lang: str) -> None:
    """Also catches a text the extractor cannot see (a _() call inside an f-string is not extracted)."""
    unused = sorted(set(default_catalogs().messages(lang)) - set(extracted()))
    assert unused == []
