"""`tuner report`: every figure written and embedded, bad input refused with one line and exit code 1."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tuner.analysis.report import (
    FIGURES,
    HTML_NAME,
    MIN_IMPORTANCE_TRIALS,
    STEPS,
    build_report,
)
from tuner.cli import app
from tuner.storage import make_engine, open_study, update_study

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def report(url: str, *args: str):
    return runner.invoke(app, ["report", *args, "--storage", url])


def assert_complete_report(out: Path) -> str:
    page = (out / HTML_NAME).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for key in FIGURES:
        png = out / f"{key}.png"
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, key
        assert f'href="{key}.png"' in page
        # embedded, byte for byte: the page opens offline without the PNGs beside it
        assert f"data:image/png;base64,{base64.b64encode(data).decode()}" in page
    assert not re.search(r'src="(?!data:)', page), "every image must be embedded"
    return page


def test_report_of_a_real_study_has_every_figure(sqlite_url, make_study, tmp_path):
    name = make_study(sqlite_url, n_trials=6, epochs=3)
    out = tmp_path / "report"
    result = report(sqlite_url, name, "--out", str(out), "--top", "3")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {out / HTML_NAME} and {len(FIGURES)} figures\n"
    assert "report tiny: 1/8 loading the study" in result.stderr  # progress, one line per step off a terminal
    page = assert_complete_report(out)
    assert "<h2>The 3 best trials</h2>" in page
    assert "<h2>Spec</h2>" in page and 'name = &quot;tiny&quot;' in page
    assert "no init-scale guess for this study" in page
    assert sorted(p.name for p in out.iterdir()) == sorted([HTML_NAME, *(f"{k}.png" for k in FIGURES)])


def test_report_on_postgresql_never_shows_the_password(pg_url, make_study, tmp_path):
    # The local server trusts every connection, so a password in the URL is accepted and ignored.
    url = make_url(pg_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    name = make_study(url, n_trials=4, epochs=2)
    out = tmp_path / "report"
    result = report(url, name, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    page = assert_complete_report(out)
    assert "s3cret-pw" not in page + result.stdout + result.stderr
    assert "***" in page  # the storage is named, with its password hidden


def test_report_shows_the_init_scale_guess(sqlite_url, make_study, tmp_path):
    name = make_study(sqlite_url, n_trials=4, epochs=2)
    update_study(make_engine(sqlite_url), name, init_guess={"multipliers": [0.7, 1.3, 1.0], "iterations": [1, 1, 1],
                                                            "converged": [True, True, True]})
    built = build_report(open_study(sqlite_url, name), tmp_path / "r")
    page = built.html.read_text()
    assert "no init-scale guess" not in page
    assert "<td>0.7</td>" in page and "<td>1.3</td>" in page


def test_too_few_trials_for_importances_still_gives_every_figure(sqlite_url, make_study, tmp_path):
    name = make_study(sqlite_url, n_trials=2, epochs=1)
    out = tmp_path / "r"
    result = report(sqlite_url, name, "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == result.stderr == ""
    page = assert_complete_report(out)
    assert f"parameter importances need at least {MIN_IMPORTANCE_TRIALS} complete trials, got 2" in page


def test_a_missing_study_names_the_ones_that_exist(sqlite_url, make_study, tmp_path):
    make_study(sqlite_url, "alpha", run=False)
    make_study(sqlite_url, "beta", run=False)
    result = report(sqlite_url, "nope", "--out", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert result.stderr.endswith("error: no study named 'nope' (studies: alpha, beta)\n")
    assert not (tmp_path / "r").exists()


def test_a_study_without_complete_trials_has_nothing_to_report(sqlite_url, make_study, tmp_path):
    name = make_study(sqlite_url, "empty", run=False)
    result = report(sqlite_url, name, "--out", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert result.stderr.endswith("error: study 'empty' has no complete trials: nothing to report\n")
    assert not (tmp_path / "r").exists()


def test_a_non_empty_output_directory_is_refused_unless_forced(sqlite_url, make_study, tmp_path):
    name = make_study(sqlite_url, n_trials=2, epochs=1)
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = report(sqlite_url, name, "--out", str(out))
    assert result.exit_code == 1
    assert result.stderr.endswith(f"error: {out}: directory exists and is not empty (use --force to write into it)\n")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    result = report(sqlite_url, name, "--out", str(out), "--force")
    assert result.exit_code == 0, result.stderr
    assert_complete_report(out)
    assert (out / "keep.txt").read_text() == "mine"


def test_an_empty_existing_directory_is_fine(sqlite_url, make_study, tmp_path):
    name = make_study(sqlite_url, n_trials=2, epochs=1)
    (tmp_path / "r").mkdir()
    assert report(sqlite_url, name, "--out", str(tmp_path / "r")).exit_code == 0


@pytest.mark.parametrize("top", ["0", "-1"])
def test_top_must_be_positive(sqlite_url, tmp_path, top):
    result = report(sqlite_url, "x", "--out", str(tmp_path / "r"), "--top", top)
    assert result.exit_code == 2
    assert "--top" in result.stderr


def test_a_hostile_name_and_parameter_are_escaped_in_the_page_and_the_progress(sqlite_url, tmp_path):
    """A study made with plain Optuna may have any name and parameter names: HTML and terminal get them inert."""
    import optuna

    assert runner.invoke(app, ["db", "upgrade", "--storage", sqlite_url]).exit_code == 0
    name = '<script>alert(1)</script>[bold]x[/]\x1b]8;;http://evil\x07'
    study = optuna.create_study(study_name=name, storage=sqlite_url)
    for value in (0.1, 0.2):
        study.add_trial(optuna.trial.create_trial(
            params={"<img src=x>\x1b": value}, value=value,
            distributions={"<img src=x>\x1b": optuna.distributions.FloatDistribution(0, 1)}))
    out = tmp_path / "report"
    result = report(sqlite_url, name, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    shown = "&lt;script&gt;alert(1)&lt;/script&gt;[bold]x[/]\\x1b]8;;http://evil\\x07"
    page = (out / HTML_NAME).read_text(encoding="utf-8")
    assert f"<h1>Study <code>{shown}</code></h1>" in page
    assert "&lt;img src=x&gt;\\x1b" in page
    assert "<script>" not in page and "<img src=x>" not in page and "\x1b" not in page and "\x07" not in page
    assert f"report <script>alert(1)</script>[bold]x[/]\\x1b]8;;http://evil\\x07: 1/{len(STEPS)} loading the study" in result.stderr
    assert "\x1b" not in result.stderr + result.stdout


def test_a_dollar_in_a_parameter_name_is_text_not_mathtext(sqlite_url, tmp_path):
    """matplotlib would parse '$\\foo$' as mathtext and fail on it, ending the report in a traceback."""
    import optuna

    assert runner.invoke(app, ["db", "upgrade", "--storage", sqlite_url]).exit_code == 0
    study = optuna.create_study(study_name="dollars", storage=sqlite_url)
    distributions = {"$\\foo$": optuna.distributions.FloatDistribution(0, 1),
                     "b": optuna.distributions.FloatDistribution(0, 1)}
    for i in range(MIN_IMPORTANCE_TRIALS + 2):
        study.add_trial(optuna.trial.create_trial(params={"$\\foo$": i / 10, "b": 1 - i / 10},
                                                  distributions=distributions, value=float(i % 3)))
    result = report(sqlite_url, "dollars", "--out", str(tmp_path / "r"), "--quiet")
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    assert "$\\foo$" in (tmp_path / "r" / HTML_NAME).read_text(encoding="utf-8")


def test_a_report_that_cannot_be_written_is_one_line(sqlite_url, make_study, tmp_path):
    name = make_study(sqlite_url, n_trials=2, epochs=1)
    (tmp_path / "plain").write_text("a file, not a directory")
    out = tmp_path / "plain" / "report"
    result = report(sqlite_url, name, "--out", str(out), "--quiet")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot write the report to {out}: Not a directory\n"
