"""Plain-text rendering of a neutral reply, shared by text-only channels (console, WeChat)."""

from __future__ import annotations

from handlers.messages import Reply


def render_text(reply: Reply) -> str:
    """Choices become numbered lines the user answers with a number; links (and the download links of
    documents: these channels cannot send files) follow as label: url."""
    lines = [reply.text]
    if reply.choices:
        lines.append("")
        lines += [f"{i}. {choice.label}" for i, choice in enumerate(reply.choices, 1)]
    for link in reply.links:
        lines.append(f"{link.label}: {link.url}")
    lines += [f"{document.label}: {document.url}" for document in reply.documents if document.url]
    return "\n".join(lines)
