"""How numbers are written for people, in the terminal, the notes and the reports alike."""

from __future__ import annotations

import math


def fmt(value: object, digits: int = 6) -> str:
    """A metric for humans: `digits` significant digits, '-' for none or NaN; other values as `str`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)
