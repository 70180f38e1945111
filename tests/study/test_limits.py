"""The study-name rule: what it allows, and how a refused name is shown."""

from __future__ import annotations

import pytest

from tuner.errors import SpecError
from tuner.study.limits import NAME_MAX_LENGTH, check_study_name, quoted

RULE = "use 1 to 128 characters from A-Z a-z 0-9 . _ -, the first a letter or a digit"


@pytest.mark.parametrize("name", ["digits-mlp", "a", "A1", "v1.2_final-run", "0", "x" * NAME_MAX_LENGTH])
def test_allowed_names(name):
    assert check_study_name(name) == name


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("", "''"),
        ("[bold]x[/]", "'[bold]x[/]'"),
        ("[link=http://evil]click[/link]", "'[link=http://evil]click[/link]'"),
        ("my study", "'my study'"),
        ("-x", "'-x'"),
        (".hidden", "'.hidden'"),
        ("a/b", "'a/b'"),
        ("a`b", "'a`b'"),
        ("name\n", "'name\\n'"),
        ("red\x1b[31m", "'red\\x1b[31m'"),
        ("\x1b]8;;http://evil\x07click\x1b]8;;\x07", "'\\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07'"),
        ("abc\x08\x08\x08xyz\rZ", "'abc\\x08\\x08\\x08xyz\\rZ'"),
        ("caf\u00e9", "'caf\u00e9'"),
        ("p\u0430ypal", "'p\u0430ypal'"),  # a Cyrillic a: ASCII only, so two names never look alike
        ("x" * (NAME_MAX_LENGTH + 1), f"'{'x' * 60}...' (129 characters)"),
        ("\x1b" * 10**6, "'" + "\\x1b" * 60 + "...' (1000000 characters)"),
    ],
)
def test_refused_names_are_named_with_control_characters_visible(name, shown):
    with pytest.raises(SpecError) as caught:
        check_study_name(name)
    assert str(caught.value) == f"study name {shown} is not allowed: {RULE}"
    assert caught.value.exit_code == 2


def test_a_quoted_value_is_cut_after_60_characters():
    assert quoted("y" * 60) == f"'{'y' * 60}'"
    assert quoted("y" * 61) == f"'{'y' * 60}...' (61 characters)"
