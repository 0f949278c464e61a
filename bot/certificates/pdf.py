"""The 志愿服务证明 as a PDF (reportlab), with the verification QR code.

Chinese must show in every viewer, so a real CJK TrueType font is embedded (as a subset of the
glyphs used): ``CERTIFICATE_FONT`` when set, else the first of :data:`FONT_PATHS` found (Debian:
``fonts-wqy-microhei``, installed by ``.ci/run``). Without one it falls back to reportlab's built-in
``STSong-Light`` CID font, which is not embedded (Acrobat shows it; some viewers do not) and says so
in the log. reportlab is imported inside the functions: ``serve`` starts without it.

The certificate is written in 简体 (it is filed with schools and the 志愿服务 authorities).
"""

from __future__ import annotations

import functools
import io
import logging
from pathlib import Path

from common.i18n import SOURCE_LANGUAGE, Text, _, render
from handlers.activity_words import list_of_names
from services.certificates import CertificateFacts, format_number

log = logging.getLogger(__name__)

FONT_NAME = "CertificateCJK"
FALLBACK_FONT = "STSong-Light"
# TrueType outlines only (reportlab cannot embed CFF-based OpenType such as Noto Sans CJK)
FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",  # Fedora / Alpine
    "/System/Library/Fonts/STHeiti Medium.ttc",
)
LANG = SOURCE_LANGUAGE


class FontMissing(RuntimeError):
    """CERTIFICATE_FONT names a file that cannot be used."""


def _zh(text: Text) -> str:
    return render(text, LANG)


@functools.cache
def cjk_font(configured: str = "") -> str:
    """Register the certificate's font once per process and return its reportlab name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    if configured:
        try:
            pdfmetrics.registerFont(TTFont(FONT_NAME, configured, subfontIndex=0))
        except (OSError, TTFError) as error:
            raise FontMissing(f"CERTIFICATE_FONT={configured!r} is not a usable TrueType font: {error}") from error
        return FONT_NAME
    for path in FONT_PATHS:
        if Path(path).is_file():
            try:
                pdfmetrics.registerFont(TTFont(FONT_NAME, path, subfontIndex=0))
                return FONT_NAME
            except (OSError, TTFError) as error:
                log.warning("font %s unusable for certificates: %s", path, error)
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    log.error("no CJK TrueType font found (install fonts-wqy-microhei or set CERTIFICATE_FONT); certificates "
              "use %s, which is not embedded and may not show in every PDF viewer", FALLBACK_FONT)
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
    return FALLBACK_FONT


def render_pdf(facts: CertificateFacts, *, verify_url: str, font_path: str = "") -> bytes:
    """The certificate's PDF bytes (A4). Slow-ish (tens of ms): call it in a thread from async code."""
    from xml.sax.saxutils import escape

    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = cjk_font(font_path)
    body = ParagraphStyle("body", fontName=font, fontSize=11, leading=18, wordWrap="CJK")
    small = ParagraphStyle("small", parent=body, fontSize=9, leading=13)
    title = ParagraphStyle("title", parent=body, fontSize=22, leading=30, alignment=TA_CENTER)

    def para(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(text), style)

    story: list = [para(_zh(_("志愿服务证明")), title), para("Volunteer Service Certificate",
                   ParagraphStyle("sub", parent=small, alignment=TA_CENTER)), Spacer(1, 8 * mm)]
    story.append(para(_zh(_("兹证明 {name}（身份证号：{id_number}）于 {start} 至 {end} 期间参加志愿服务，"
                            "经志愿服务记录，累计志愿服务时长 {hours} 小时，共 {count} 次。",
                            name=facts.name, id_number=facts.id_masked or "-", start=facts.start, end=facts.end,
                            hours=f"{facts.total_hours:g}", count=len(facts.lines)))))
    story.append(Spacer(1, 5 * mm))
    header = [_zh(_("日期")), _zh(_("服务内容")), _zh(_("组织")), _zh(_("时长（小时）")), _zh(_("记录人"))]
    rows = [[para(cell, small) for cell in header]]
    for line in facts.lines:
        rows.append([para(cell, small) for cell in (
            line.served_on.isoformat(), line.what or _zh(_("志愿服务")), line.organization or "-",
            f"{line.hours:g}", line.recorder or "-")])
    rows.append([para(cell, small) for cell in (_zh(_("合计")), "", "", f"{facts.total_hours:g}", "")])
    table = Table(rows, colWidths=[24 * mm, 56 * mm, 40 * mm, 22 * mm, 30 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    story += [table, Spacer(1, 6 * mm)]
    for org, recorders in facts.issuers:
        story.append(para(_zh(_("出具组织：{org}　记录人：{names}", org=org, names=list_of_names(recorders) or org))))
    story.append(para(_zh(_("出具日期：{date}", date=facts.issued_on))))
    story.append(para(_zh(_("证明编号：{number}", number=format_number(facts.number)))))
    if verify_url:
        story.append(para(_zh(_("核验：扫描二维码或访问 {url}", url=verify_url)), small))
        qr = QrCodeWidget(verify_url)
        left, bottom, right, top = qr.getBounds()
        size = 32 * mm
        drawing = Drawing(size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0])
        drawing.add(qr)
        story += [Spacer(1, 3 * mm), drawing]
    story.append(Spacer(1, 4 * mm))
    story.append(para(_zh(_("本证明依据《志愿服务记录与证明出具办法》免费出具，身份证号已脱敏。")), small))

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=18 * mm,
                                 bottomMargin=18 * mm, title=f"{_zh(_('志愿服务证明'))} {facts.number}",
                                 author=", ".join(org for org, _names in facts.issuers))
    document.build(story)
    return buffer.getvalue()
