"""Bar charts as inline SVG, drawn on the server (no script, no CDN); labels are escaped here."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD_BOTTOM, PAD_TOP = 560, 240, 40, 24


def bar_chart(bars: list[tuple[str, float]], *, title: str, unit: str = "") -> Markup:
    """Vertical bars with their value above and their label below; ``title`` is the accessible name."""
    count = max(len(bars), 1)
    peak = max((value for _label, value in bars), default=0) or 1
    slot = WIDTH / count
    bar_width = max(slot * 0.64, 4)
    usable = HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
             f'<line x1="0" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - PAD_BOTTOM}" class="axis"/>']
    for index, (label, value) in enumerate(bars):
        height = usable * value / peak
        x = index * slot + (slot - bar_width) / 2
        y = HEIGHT - PAD_BOTTOM - height
        shown = f"{value:g}"
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" height="{height:.1f}" rx="2">'
                     f'<title>{escape(label)}: {escape(shown)}{escape(unit)}</title></rect>')
        parts.append(f'<text x="{x + bar_width / 2:.1f}" y="{y - 4:.1f}" class="value">{escape(shown)}</text>')
        parts.append(f'<text x="{x + bar_width / 2:.1f}" y="{HEIGHT - PAD_BOTTOM + 22}" class="label">'
                     f'{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
