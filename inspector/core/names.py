"""File names of any bytes as text that every database, seal, log line and screen takes.

A POSIX file name is bytes; Python holds the bytes that are not UTF-8 as lone surrogates, which no UTF-8
encoder (a seal, SQLite, PostgreSQL, a console) accepts. ``shown`` writes such a name the way ``ls -b`` does:
every byte that is not text, and every control character, as ``\\xNN``, a backslash as ``\\\\``; everything
else as it is. ``name_bytes`` gives the exact bytes back, so the record keeps the name the file had.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath

_ESCAPE = re.compile(r"\\(\\|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})")


def _char(c: str) -> str:
    o = ord(c)
    if c == "\\":
        return "\\\\"
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if 0xD800 <= o <= 0xDFFF:  # a lone surrogate (possible in a Windows file name)
        return f"\\u{o:04x}"
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    return c


def shown(name: str | PurePath) -> str:
    """``name`` (a path's text as Python holds it) in a readable form that encodes as UTF-8; reversible by
    ``name_bytes``. A name of printable text without a backslash is returned as it is."""
    text = name.as_posix() if isinstance(name, PurePath) else str(name)
    if all(c != "\\" and 0x20 <= ord(c) != 0x7F and not 0xD800 <= ord(c) <= 0xDFFF for c in text):
        return text
    return "".join(_char(c) for c in text)


def readable(text: str) -> str:
    """``text`` with any lone surrogate written as an escape (``\\xNN``, ``\\uXXXX``) and nothing else changed:
    a last guard before a database or a seal, safe on text that ``shown`` already made."""
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return text
    return "".join(_char(c) if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def name_bytes(text: str) -> bytes:
    """The bytes of the name that ``shown`` wrote as ``text`` (the file system's own encoding for the rest)."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += os.fsencode(text[pos:m.start()])
        code = m.group(1)
        if code == "\\":
            out += b"\\"
        elif code[0] == "x":
            out.append(int(code[1:], 16))
        else:
            out += chr(int(code[1:], 16)).encode("utf-8", "surrogatepass")
        pos = m.end()
    out += os.fsencode(text[pos:])
    return bytes(out)


def without_password(url: str) -> str:
    """A camera or stream address with its password (``user:password@``) shown as ``***``, for errors, logs and
    the record; an address without one is returned as it is."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:  # not parseable as a URL: hide everything between '//' and the last '@'
        head, sep, rest = url.partition("//")
        return f"{head}{sep}***@{rest.rsplit('@', 1)[1]}" if sep and "@" in rest else url
