"""`printable`: user text reaches terminals and pages with every control character made visible."""

from __future__ import annotations

import pytest

from tuner.text import printable

CASES = [
    ("digits-mlp", "digits-mlp"),
    ("é ü 漢字 🙂", "é ü 漢字 🙂"),
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("\x1b]8;;http://evil\x07click\x1b]8;;\x07", "\\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07"),
    ("\x1b]0;title\x1b\\", "\\x1b]0;title\\x1b\\"),
    ("abc\x08\x08\x08xyz", "abc\\x08\\x08\\x08xyz"),
    ("fake\rreal", "fake\\rreal"),
    ("two\nlines\ttab", "two\\nlines\\ttab"),
    ("\x00nul\x7fdel", "\\x00nul\\x7fdel"),
    ("\x9b31m", "\\x9b31m"),  # the one-byte CSI of C1
    ("\u202eevil\u2066", "\\u202eevil\\u2066"),  # bidirectional overrides (Trojan Source)
    ("zero\u200bwidth\u2028sep", "zero\\u200bwidth\\u2028sep"),
    ("\udcff", "\\udcff"),  # a surrogate from a file name that is not UTF-8
    ("\U000e0041", "\\U000e0041"),  # a tag character
]


@pytest.mark.parametrize(("text", "shown"), CASES)
def test_control_and_format_characters_become_visible_escapes(text, shown):
    assert printable(text) == shown
    assert printable(text).isprintable()


def test_keep_leaves_the_newlines_and_tabs_of_a_multi_line_text():
    assert printable('[study]\nname = "x\x1b"\n\tseed = 1', keep="\n\t") == '[study]\nname = "x\\x1b"\n\tseed = 1'
