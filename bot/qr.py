"""QR codes as PNG bytes, written in pure Python (qrcode + pypng, no Pillow): the CLI's ``telegram link --qr``
and the web console's check-in poster draw them the same way."""

from __future__ import annotations

import io


def qr_png(text: str) -> bytes:
    import qrcode
    from qrcode.image.pure import PyPNGImage

    image = qrcode.make(text, image_factory=PyPNGImage, box_size=10, border=4)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()
