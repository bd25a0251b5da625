"""QR rendering: PNG and SVG are well-formed, and the code uses error correction Q."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import png
import qrcode.constants

from regfed.qr import (
    PNG_BOX_SIZE,
    PNG_MEDIA_TYPE,
    QUIET_ZONE,
    SVG_MEDIA_TYPE,
    ImageCache,
    make_qr,
    render_png,
    render_svg,
    render_terminal,
)

# A realistic size: an HC1 text for a vaccination is about 500 base45 characters.
TEXT = "HC1:" + "NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOO6+IDOEZ4FZ/Q:LCJ:C+OHV" * 8

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# ISO/IEC 18004, 7.9: where the top-left copy of the 15 format bits sits, most
# significant bit first, as (row, column) of the module grid; and the mask applied to them.
FORMAT_BIT_MODULES = [
    (8, 0), (8, 1), (8, 2), (8, 3), (8, 4), (8, 5), (8, 7), (8, 8),
    (7, 8), (5, 8), (4, 8), (3, 8), (2, 8), (1, 8), (0, 8),
]  # fmt: skip
FORMAT_MASK = 0b101010000010010
LEVEL_BITS = {0b01: "L", 0b00: "M", 0b11: "Q", 0b10: "H"}


def _modules_from_png(data: bytes) -> list[list[bool]]:
    """The module grid read back from the PNG's pixels (True = dark), quiet zone cut off."""
    width, height, rows, _info = png.Reader(bytes=data).asDirect()
    pixels = [list(row) for row in rows]
    assert width == height
    size = width // PNG_BOX_SIZE - 2 * QUIET_ZONE
    centre = PNG_BOX_SIZE // 2
    return [
        [
            pixels[(QUIET_ZONE + r) * PNG_BOX_SIZE + centre][
                (QUIET_ZONE + c) * PNG_BOX_SIZE + centre
            ]
            == 0
            for c in range(size)
        ]
        for r in range(size)
    ]


def test_png_is_a_png() -> None:
    """render_png returns PNG bytes with a light quiet zone and the media type is image/png."""
    data = render_png(TEXT)
    assert data.startswith(PNG_SIGNATURE)
    assert PNG_MEDIA_TYPE == "image/png"
    _w, _h, rows, _info = png.Reader(bytes=data).asDirect()
    first_row = list(next(iter(rows)))
    assert set(first_row) == {max(first_row)}  # the quiet zone is all light


def test_png_carries_error_correction_q() -> None:
    """The format information read from the PNG's own pixels says level Q."""
    modules = _modules_from_png(render_png(TEXT))
    bits = 0
    for row, column in FORMAT_BIT_MODULES:
        bits = bits << 1 | modules[row][column]
    assert LEVEL_BITS[(bits ^ FORMAT_MASK) >> 13] == "Q"


def test_qr_factory_uses_level_q() -> None:
    """Every image is built from a QRCode configured with ERROR_CORRECT_Q."""
    assert make_qr(TEXT).error_correction == qrcode.constants.ERROR_CORRECT_Q


def test_svg_is_xml() -> None:
    """render_svg returns an SVG document that parses as XML; its media type is image/svg+xml."""
    data = render_svg(TEXT)
    root = ET.fromstring(data)  # noqa: S314  (our own output, not untrusted input)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}path") is not None
    assert SVG_MEDIA_TYPE == "image/svg+xml"


def test_terminal_rendering_matches_the_module_grid() -> None:
    """Each half block stands for two modules, the dark ones drawn, black on white set
    explicitly so the code reads on dark and light terminals alike."""
    matrix = make_qr("HC1:TEST").get_matrix()
    rendered = render_terminal("HC1:TEST").splitlines()
    assert all(line.startswith("\x1b[38;5;16;48;5;231m") for line in rendered)
    assert all(line.endswith("\x1b[0m") for line in rendered)
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in rendered]
    assert len(lines) == (len(matrix) + 1) // 2
    assert all(len(line) == len(matrix) for line in lines)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix))  # the renderer pads with a light row
    for r, row in enumerate(matrix):
        half = {"█", "▀"} if r % 2 == 0 else {"█", "▄"}
        drawn = [lines[r // 2][c] in half for c in range(len(row))]
        assert drawn == row, r


def test_image_cache_returns_only_the_same_code() -> None:
    """A cached image is returned for the same certificate, format and code text only."""
    cache = ImageCache(capacity=2)
    cache.put("U1", PNG_MEDIA_TYPE, "HC1:A", b"png-a")
    assert cache.get("U1", PNG_MEDIA_TYPE, "HC1:A") == b"png-a"
    assert cache.get("U1", SVG_MEDIA_TYPE, "HC1:A") is None
    assert cache.get("U1", PNG_MEDIA_TYPE, "HC1:B") is None  # re-signed: render anew


def test_image_cache_evicts_the_least_recently_used() -> None:
    """Beyond capacity the entry used longest ago goes first."""
    cache = ImageCache(capacity=2)
    cache.put("U1", PNG_MEDIA_TYPE, "t1", b"1")
    cache.put("U2", PNG_MEDIA_TYPE, "t2", b"2")
    assert cache.get("U1", PNG_MEDIA_TYPE, "t1") == b"1"
    cache.put("U3", PNG_MEDIA_TYPE, "t3", b"3")
    assert cache.get("U2", PNG_MEDIA_TYPE, "t2") is None
    assert cache.get("U1", PNG_MEDIA_TYPE, "t1") == b"1"
