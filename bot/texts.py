"""Catalog texts for the operator's side (the CLI, plain HTTP answers), which has no reader's language.

The CLI prints 简体 (:data:`CLI_LANGUAGE`); a few lines an operator or a browser may read without
Chinese are printed in 简体 and English side by side (:func:`bilingual`).
"""

from __future__ import annotations

from common.i18n import SOURCE_LANGUAGE, Text, render

CLI_LANGUAGE = SOURCE_LANGUAGE


def cli_text(text: Text) -> str:
    """A text as the CLI prints it (简体)."""
    return render(text, CLI_LANGUAGE)


def bilingual(text: Text, sep: str = " / ") -> str:
    """简体 and English: ``链接无效或已过期 / link invalid or expired``."""
    return f"{render(text, SOURCE_LANGUAGE)}{sep}{render(text, 'en')}"
