"""Report pages as headless Chromium draws them, and a check that their plots were drawn (PNG read with zlib)."""

from __future__ import annotations

import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

from b2box.report.style import FAMILY_COLOURS, QUEUED_COLOUR, REQUEST_COLOUR, STATE_COLOURS


def png_rows(path: Path, wanted: int) -> tuple[int, list[bytes]]:
    """The width and the first ``wanted`` rows (RGB or RGBA bytes) of an 8-bit PNG as Chromium writes it."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, position = {}, 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunks[kind] = chunks.get(kind, b"") + data[position + 8 : position + 8 + length]
        position += 12 + length
    width, _, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format: depth {depth}, colour type {colour}"
    size = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(chunks[b"IDAT"]), width * size
    rows, previous = [], bytes(stride)
    for row in range(wanted):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        for x in range(stride):  # undo the row's filter (PNG specification, section 9)
            left, up = line[x - size] if x >= size else 0, previous[x]
            corner = previous[x - size] if x >= size else 0
            if kind == 4:  # Paeth: the neighbour nearest left + up - corner; ties go to left, then up
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[x] = (line[x] + near[2]) & 0xFF
            else:
                line[x] = (line[x] + (0, left, up, (left + up) // 2)[kind]) & 0xFF
        rows.append(bytes(line))
        previous = bytes(line)
    return width, rows


def colours(rows: list[bytes], top: int, bottom: int, width: int) -> Counter[str]:
    """How often each colour (as "#rrggbb") appears in a band of rows: every pixel of every other row.

    Every column, because a box's edge is a vertical line one or two pixels wide: a sample every few pixels missed
    it whenever the data put it between two samples.
    """
    size = len(rows[0]) // width
    return Counter("#" + rows[y][x * size : x * size + 3].hex() for y in range(top, bottom, 2) for x in range(width))


def screenshot(chromium: str, html_file: Path) -> Path:
    """The page as Chromium draws it, 1400 x 3000 pixels (a PNG beside the page)."""
    png = html_file.with_suffix(".png")
    command = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-unsafe-swiftshader",  # WebGL drawn in software: Chromium no longer falls back to it by itself
        "--hide-scrollbars",
        "--window-size=1400,3000",
        "--virtual-time-budget=10000",
        f"--screenshot={png}",
        html_file.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert png.exists(), f"no screenshot (exit {result.returncode}): {result.stderr[-2000:]}"
    assert png.stat().st_size > 50_000, "a screenshot this small is a blank page"
    return png


def assert_plots_drawn(png: Path) -> None:
    """The timeline (below the header) and the families' plot under it are there, in the page's own colours."""
    width, rows = png_rows(png, 1500)
    assert width == 1400
    timeline, families = colours(rows, 150, 900, width), colours(rows, 900, 1500, width)
    assert len(timeline) > 20 and len(families) > 20, "one colour: nothing was drawn"
    for colour in (STATE_COLOURS["done"], STATE_COLOURS["failed"], QUEUED_COLOUR):
        assert timeline[colour] > 20, f"no {colour} on the timeline: {timeline.most_common(8)}"
    for colour in (*FAMILY_COLOURS[:3], REQUEST_COLOUR):
        assert families[colour] > 5, f"no {colour} in the families' plot: {families.most_common(8)}"
