"""Structural checks of picture files whose decoder accepts damage without a word (issue 25).

A decoder that fills in what it cannot read returns a plausible, garbled picture; a check of the file's own
structure catches part of that damage before the picture is judged:

- PNG: every chunk carries a CRC-32 of its data; any single flipped bit (and most other damage) breaks one.
- WebP: the RIFF size must match the file, every chunk must fit, a lossy (VP8) frame must start with its start
  code and its first partition must fit its chunk, a lossless (VP8L) one must carry its signature, and the
  picture's size must agree with the extended header (VP8X) where there is one.
- TIFF: the byte order mark and the first directory, whose entries must lie within the file, strips and tiles
  included.

Damage inside compressed data with no checksum (a WebP or JPEG coefficient, a TIFF strip) is not seen here.
"""

from __future__ import annotations

import struct
import zlib

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def format_problem(data: bytes) -> str | None:
    """Why the file's structure is damaged (one phrase), or None; only PNG, WebP and TIFF are looked at."""
    if data[:8] == PNG_MAGIC:
        return _png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    return None


def _png(data: bytes) -> str | None:
    i, n = 8, len(data)
    while i + 12 <= n:
        length, kind = struct.unpack_from(">I4s", data, i)
        end = i + 12 + length
        if end > n:
            return f"PNG chunk {kind!r} at byte {i} runs past the end of the file"
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(data[i + 4:end - 4]) != crc:
            return f"PNG chunk {kind.decode('latin-1')!r} at byte {i} fails its CRC (the file is damaged)"
        if kind == b"IEND":
            return None
        i = end
    return "PNG without its IEND chunk (cut short)"


def _webp(data: bytes) -> str | None:
    n = len(data)
    (riff,) = struct.unpack_from("<I", data, 4)
    if riff + 8 > n or riff + 8 < n - 1:
        return f"WebP whose RIFF header declares {riff + 8} bytes, the file has {n}"
    i, canvas, end = 12, None, riff + 8
    while i + 8 <= end:
        kind, size = struct.unpack_from("<4sI", data, i)
        body = i + 8
        if body + size > end:
            return f"WebP chunk {kind!r} at byte {i} runs past the end of the file"
        chunk = data[body:body + size]
        if kind == b"VP8X":
            if size < 10:
                return "WebP extended header (VP8X) too short"
            canvas = (1 + int.from_bytes(chunk[4:7], "little"), 1 + int.from_bytes(chunk[7:10], "little"))
        elif kind == b"VP8 ":
            problem = _vp8(chunk, canvas)
            if problem:
                return problem
        elif kind == b"VP8L":
            if size < 5 or chunk[0] != 0x2F:
                return "WebP lossless (VP8L) frame without its signature"
            bits = int.from_bytes(chunk[1:5], "little")
            size_wh = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            if bits >> 29:
                return "WebP lossless (VP8L) frame of an unknown version"
            if canvas is not None and size_wh != canvas:
                return f"WebP frame of {size_wh[0]}x{size_wh[1]} in a canvas of {canvas[0]}x{canvas[1]}"
        i = body + size + (size & 1)
    return None


def _vp8(chunk: bytes, canvas: tuple[int, int] | None) -> str | None:
    if len(chunk) < 10:
        return "WebP lossy (VP8) frame too short"
    tag = int.from_bytes(chunk[0:3], "little")
    keyframe, version, shown, first = not (tag & 1), (tag >> 1) & 7, (tag >> 4) & 1, tag >> 5
    if not keyframe or version > 3 or not shown:
        return "WebP lossy (VP8) frame header damaged (not a shown key frame)"
    if chunk[3:6] != b"\x9d\x01\x2a":
        return "WebP lossy (VP8) frame without its start code"
    if 10 + first > len(chunk):
        return f"WebP lossy (VP8) first partition of {first} bytes does not fit its {len(chunk)}-byte chunk"
    w, h = struct.unpack_from("<HH", chunk, 6)
    if canvas is not None and (w & 0x3FFF, h & 0x3FFF) != canvas:
        return f"WebP frame of {w & 0x3FFF}x{h & 0x3FFF} in a canvas of {canvas[0]}x{canvas[1]}"
    return None


# TIFF types and their sizes; strip/tile offsets and byte counts
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}
_OFFSETS, _COUNTS = (273, 324), (279, 325)


def _tiff(data: bytes) -> str | None:
    e = "<" if data[:2] == b"II" else ">"
    n = len(data)
    (ifd,) = struct.unpack_from(e + "I", data, 4)
    if ifd < 8 or ifd + 2 > n:
        return f"TIFF whose first directory (at byte {ifd}) is outside the file"
    (count,) = struct.unpack_from(e + "H", data, ifd)
    if ifd + 2 + 12 * count + 4 > n:
        return "TIFF directory runs past the end of the file"
    offsets: list[int] = []
    counts: list[int] = []
    for k in range(count):
        tag, kind, num, value = struct.unpack_from(e + "HHII", data, ifd + 2 + 12 * k)
        size = _TIFF_SIZES.get(kind)
        if size is None:
            return f"TIFF directory entry {tag} of unknown type {kind}"
        total = size * num
        if total > 4 and value + total > n:
            return f"TIFF directory entry {tag} points outside the file"
        if tag in _OFFSETS + _COUNTS and kind in (3, 4):
            where = ifd + 2 + 12 * k + 8 if total <= 4 else value
            fmt = e + ("H" if kind == 3 else "I") * num
            vals = list(struct.unpack_from(fmt, data, where))
            (offsets if tag in _OFFSETS else counts).extend(vals)
    if offsets and len(offsets) == len(counts):
        for off, length in zip(offsets, counts, strict=True):
            if off + length > n:
                return f"TIFF strip or tile at byte {off} ({length} bytes) runs past the end of the file"
    return None
