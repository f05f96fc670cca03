"""Values as VCF INFO values: percent-encoding, as OpenCRAVAT's vcfreporter writes them.

VCF 4.3 (section 1.2) reserves ``% : ; = ,`` (and tab and line ends) in a value and disallows
the control characters U+0000-U+0008, U+000B, U+000C and U+000E-U+001F anywhere in the file.
A service's value may still hold any of them: merge percent-encodes them all (``%3B``, ``%1F``),
so that the VCF stays valid and ``unescape`` gives the value back exactly; the TSV keeps the
value as the service wrote it. Tabs and line ends cannot be in a value here: they separate the
columns and the rows that are read.
"""

from __future__ import annotations

import re

RESERVED = re.compile(r"[%:;=, \r\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROLS = tuple(chr(code) for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)))
_RESERVED_CHARS = (" ", ",", ":", ";", "=", "%", "\r", *_CONTROLS)  # the common ones first


def holds_reserved(text: str) -> bool:
    """Whether ``text`` (a batch of values) holds anything to encode: a substring scan per
    character, which on a megabyte costs a tenth of one regular-expression scan."""
    return any(char in text for char in _RESERVED_CHARS)


def escape(value: str) -> str:
    """``value`` as a VCF INFO value (unchanged when it holds nothing VCF reserves)."""
    if RESERVED.search(value) is None:
        return value
    return encode(value)


def encode(text: str) -> str:
    """Every reserved character of ``text`` percent-encoded; tabs and line ends are left, so that
    a batch of values (tab-separated, a line each) is encoded in one pass."""
    text = (text.replace("%", "%25").replace(":", "%3A").replace(";", "%3B").replace("=", "%3D")
            .replace(",", "%2C").replace(" ", "%20").replace("\r", "%0D"))
    if not any(control in text for control in _CONTROLS):  # as in holds_reserved
        return text
    return _CONTROL.sub(lambda found: f"%{ord(found.group()):02X}", text)


def unescape(value: str) -> str:
    """A value as the service wrote it, from its VCF-escaped form (for readers of the output)."""
    from urllib.parse import unquote

    return unquote(value)


def header_value(value) -> str:
    """Text for a quoted value in a ``##`` header line (no quotes, backslashes or line ends)."""
    text = "" if value is None else str(value)
    return text.replace("\\", "/").replace('"', "'").replace("\n", " ").replace("\r", " ")
