"""QR images of ``HC1:`` codes: PNG, SVG and a terminal rendering.

Error correction is level Q (25% recoverable), as the HCERT specification requires:
codes are shown on cracked phone screens and printed on paper.

Rendering is CPU-bound, and most of qrcode's time went into choosing the mask: it builds
the symbol with each of the eight patterns and scores them (about 25 ms of 32 for a
typical code here). Any mask is valid (ISO/IEC 18004 §7.8), the scoring only avoids
patterns that are harder to scan; HCERT codes are dense, near-random data, where the
patterns score alike. So the mask is fixed, and the PNG is encoded by Pillow from the
module matrix instead of pure-Python pypng (about 10 ms). A PNG now takes about 7 ms.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

import qrcode
import qrcode.constants
from PIL import Image
from qrcode.image.svg import SvgPathImage

PNG_MEDIA_TYPE = "image/png"
SVG_MEDIA_TYPE = "image/svg+xml"

ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_Q
QUIET_ZONE = 4  # modules of light border the QR specification asks for
PNG_BOX_SIZE = 4  # pixels per module: about 400 px for a typical HC1 code
MASK_PATTERN = 0  # fixed: see the module docstring


def make_qr(text: str, *, box_size: int = PNG_BOX_SIZE) -> Any:
    """A ``qrcode.QRCode`` holding ``text`` at error correction Q, sized to fit."""
    qr = qrcode.QRCode(
        version=None,  # the smallest version that holds the text
        error_correction=ERROR_CORRECTION,
        box_size=box_size,
        border=QUIET_ZONE,
        mask_pattern=MASK_PATTERN,
    )
    qr.add_data(text)
    qr.make(fit=True)
    return qr


def render_png(text: str) -> bytes:
    """``text`` as a black-on-white PNG QR code (1 bit per pixel)."""
    matrix: list[list[bool]] = make_qr(text).get_matrix()  # True = dark, border included
    size = len(matrix)
    # Mode "L": one byte per module, 0 = black; scaled up without smoothing, saved as 1-bit.
    modules = bytes(0 if dark else 255 for row in matrix for dark in row)
    image = Image.frombytes("L", (size, size), modules)
    image = image.resize((size * PNG_BOX_SIZE, size * PNG_BOX_SIZE), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def render_svg(text: str) -> bytes:
    """``text`` as an SVG QR code (a single path, scalable; UTF-8 with XML declaration)."""
    image = make_qr(text, box_size=10).make_image(image_factory=SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


# Black on white whatever the terminal's own colours (256-colour codes 16 and 231 are
# pure black and white; the 16 basic colours vary with the theme).
_TERMINAL_COLOURS = "\x1b[38;5;16;48;5;231m"
_TERMINAL_RESET = "\x1b[0m"


def render_terminal(text: str) -> str:
    """``text`` as a QR code of Unicode half blocks, two module rows per line.

    The dark modules are drawn black on a white background set explicitly, so the code
    reads the same on dark and light terminals, quiet zone included.
    """
    matrix: list[list[bool]] = make_qr(text).get_matrix()  # True = dark, border included
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyphs = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
    lines = []
    for top, bottom in zip(matrix[::2], matrix[1::2], strict=True):
        cells = "".join(glyphs[pair] for pair in zip(top, bottom, strict=True))
        lines.append(f"{_TERMINAL_COLOURS}{cells}{_TERMINAL_RESET}")
    return "\n".join(lines) + "\n"


class ImageCache:
    """Rendered images by (UVCI, media type), least recently used evicted first.

    Idempotent issuance hands the same certificate the same code every time, so an image
    once rendered is exact for every later request for that certificate; the code text is
    kept with it and compared, so a re-signed code (a retired key) is rendered anew.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._images: OrderedDict[tuple[str, str], tuple[str, bytes]] = OrderedDict()

    def get(self, uvci: str, media_type: str, text: str) -> bytes | None:
        """The cached image of ``text``, if this certificate's was rendered."""
        entry = self._images.get((uvci, media_type))
        if entry is None or entry[0] != text:
            return None
        self._images.move_to_end((uvci, media_type))
        return entry[1]

    def put(self, uvci: str, media_type: str, text: str, image: bytes) -> None:
        """Remember an image, evicting the least recently used beyond capacity."""
        self._images[(uvci, media_type)] = (text, image)
        self._images.move_to_end((uvci, media_type))
        while len(self._images) > self._capacity:
            self._images.popitem(last=False)
