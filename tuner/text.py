"""How numbers and user text are written for people, in the terminal, the notes and the reports alike."""

from __future__ import annotations

import math

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def fmt(value: object, digits: int = 6) -> str:
    """A metric for humans: `digits` significant digits, '-' for none or NaN; other values as `str`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def printable(text: str, *, keep: str = "") -> str:
    """`text` with every character that is not printable replaced by a visible escape, as Python's `repr`
    writes it: ESC -> `\\x1b`, BEL -> `\\x07`, CR -> `\\r`, U+202E -> `\\u202e`.

    Text from users (study names, spec files, paths, parameter names) reaches other people's terminals
    and pages: a raw ESC or OSC 8 sequence would recolour, retitle or hide a link in them, a CR or
    backspaces would overwrite what came before, a bidirectional override would reorder it. "Not
    printable" is `str.isprintable`: Unicode's Other (control, format, surrogate, private use, unassigned)
    and Separator categories, except the plain space. `keep` lists characters left as they are (the
    newlines and tabs of a multi-line spec shown in a page).
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
