"""Plain-text rendering of a neutral reply, shared by text-only channels (console, WeChat)."""

from __future__ import annotations

from handlers.messages import Reply


def render_text(reply: Reply) -> str:
    """Choices become numbered lines the user answers with a number; links follow as label: url."""
    lines = [reply.text]
    if reply.choices:
        lines.append("")
        lines += [f"{i}. {choice.label}" for i, choice in enumerate(reply.choices, 1)]
    for link in reply.links:
        lines.append(f"{link.label}: {link.url}")
    return "\n".join(lines)
