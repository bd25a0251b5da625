"""QR images of ``HC1:`` codes: PNG, SVG and a terminal rendering.

Error correction is level Q (25% recoverable), as the HCERT specification requires:
codes are shown on cracked phone screens and printed on paper. PNG goes through pypng
(``PyPNGImage``), so the service does not need Pillow.

Rendering is pure Python and CPU-bound (tens of milliseconds for a PNG); async callers
should measure it and, if it shows, run it in an executor.
"""

from __future__ import annotations

import io
from typing import Any

import qrcode
import qrcode.constants
from qrcode.image.pure import PyPNGImage
from qrcode.image.svg import SvgPathImage

PNG_MEDIA_TYPE = "image/png"
SVG_MEDIA_TYPE = "image/svg+xml"

ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_Q
QUIET_ZONE = 4  # modules of light border the QR specification asks for
PNG_BOX_SIZE = 4  # pixels per module: about 400 px for a typical HC1 code


def make_qr(text: str, *, box_size: int = PNG_BOX_SIZE) -> Any:
    """A ``qrcode.QRCode`` holding ``text`` at error correction Q, sized to fit."""
    qr = qrcode.QRCode(
        version=None,  # the smallest version that holds the text
        error_correction=ERROR_CORRECTION,
        box_size=box_size,
        border=QUIET_ZONE,
    )
    qr.add_data(text)
    qr.make(fit=True)
    return qr


def render_png(text: str) -> bytes:
    """``text`` as a black-on-white PNG QR code."""
    image = make_qr(text).make_image(image_factory=PyPNGImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def render_svg(text: str) -> bytes:
    """``text`` as an SVG QR code (a single path, scalable; UTF-8 with XML declaration)."""
    image = make_qr(text, box_size=10).make_image(image_factory=SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def render_terminal(text: str, *, dark_background: bool = True) -> str:
    """``text`` as a QR code of Unicode half blocks, two module rows per line.

    On a dark terminal the light modules are drawn (``dark_background=True``), so the
    code shows dark-on-light with its quiet zone, as most phone scanners expect.
    """
    matrix: list[list[bool]] = make_qr(text).get_matrix()  # True = dark, border included
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyphs = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
    lines = []
    for top, bottom in zip(matrix[::2], matrix[1::2], strict=True):
        lines.append(
            "".join(
                glyphs[(upper != dark_background, lower != dark_background)]
                for upper, lower in zip(top, bottom, strict=True)
            )
        )
    return "\n".join(lines) + "\n"
