"""`tuner study ...` and `tuner run` through the root command: exact output, exit codes, stored state."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from typer.testing import CliRunner

from tuner.cli import app
from tuner.storage import get_study, make_engine, trial_state_counts


def tuner(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def study(storage_url, write_spec):
    """A tiny study with 4 finished trials, made through the CLI."""
    spec = write_spec("tiny", n_trials=4, epochs=2)
    result = tuner("run", spec, "--storage", storage_url, "--quiet")
    assert result.exit_code == 0, result.stderr
    return storage_url


def test_create_stores_the_validated_spec_and_refuses_a_second_create(sqlite_url, write_spec):
    spec = write_spec("alpha")
    first = tuner("study", "create", spec, "--storage", sqlite_url)
    assert (first.exit_code, first.stdout) == (0, f"study 'alpha' created in {sqlite_url}\n")
    record = get_study(make_engine(sqlite_url), "alpha")
    assert record.spec["model"]["hidden"] == [16]
    assert record.spec_toml == spec.read_text()

    second = tuner("study", "create", spec, "--storage", sqlite_url)
    assert (second.exit_code, second.stdout) == (1, "")
    assert second.stderr == (
        "error: study 'alpha' already exists; use --load-if-exists to reuse it or --name to pick another\n"
    )
    again = tuner("study", "create", spec, "--storage", sqlite_url, "--load-if-exists")
    assert (again.exit_code, again.stdout) == (0, f"study 'alpha' exists, reusing in {sqlite_url}\n")
    renamed = tuner("study", "create", spec, "--storage", sqlite_url, "--name", "beta")
    assert renamed.exit_code == 0
    assert sorted(s.study_name for s in optuna.get_all_study_summaries(sqlite_url)) == ["alpha", "beta"]


def test_a_missing_spec_file_is_one_line_and_creates_nothing(sqlite_url, tmp_path):
    result = tuner("study", "create", tmp_path / "nope.toml", "--storage", sqlite_url)
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.toml'}: no such file\n"
    assert optuna.get_all_study_summaries(sqlite_url) == []


def test_list_show_and_export_describe_the_same_trials(study, tmp_path):
    listed = tuner("study", "list", "--storage", study, "--json")
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "tiny" and row["n_trials"] == 4
    assert row["counts"].get("COMPLETE", 0) + row["counts"].get("PRUNED", 0) == 4

    shown = json.loads(tuner("study", "show", "tiny", "--storage", study, "--json").stdout)
    trials = optuna.load_study(study_name="tiny", storage=study).get_trials()
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert shown["best_trial"]["number"] == best.number
    assert shown["best_trial"]["value"] == pytest.approx(best.value)
    assert shown["counts"] == trial_state_counts(make_engine(study), "tiny")
    assert sum(r["trials"] for r in shown["optimizers"]) == len(trials)

    for fmt, read in (("csv", pd.read_csv), ("json", pd.read_json), ("parquet", pd.read_parquet)):
        out = tmp_path / f"trials.{fmt}"
        result = tuner("study", "export", "tiny", "--format", fmt, "--out", out, "--storage", study)
        assert result.exit_code == 0, result.stderr
        frame = read(out)
        assert list(frame["number"]) == [t.number for t in trials]
        assert {"optimizer", "eps0", "init_scale_0", "init_scale_1", "state", "value", "diverged"} <= set(frame)

    refused = tuner("study", "export", "tiny", "--out", tmp_path / "trials.csv", "--storage", study)
    assert (refused.exit_code, refused.stderr) == (
        1, f"error: {tmp_path / 'trials.csv'}: already exists (use --force to overwrite)\n"
    )


def test_a_missing_study_names_the_ones_that_exist(study):
    for args in (("study", "show", "nope"), ("worker", "nope"), ("study", "delete", "nope", "--yes")):
        result = tuner(*args, "--storage", study)
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == "error: no study named 'nope' (studies: tiny)\n"


def test_delete_needs_yes_then_removes_the_study_and_its_records(study):
    refused = tuner("study", "delete", "tiny", "--storage", study)
    assert (refused.exit_code, refused.stderr) == (
        1, "error: deleting study 'tiny' removes all its trials; add --yes to confirm\n"
    )
    assert get_study(make_engine(study), "tiny") is not None
    done = tuner("study", "delete", "tiny", "--storage", study, "--yes")
    assert (done.exit_code, done.stdout) == (0, "deleted study 'tiny'\n")
    assert get_study(make_engine(study), "tiny") is None
    assert optuna.get_all_study_summaries(study) == []


def test_run_resumes_a_study_and_the_total_stays_exact(sqlite_url, write_spec):
    spec = write_spec("resume", n_trials=3, epochs=1)
    assert tuner("run", spec, "--storage", sqlite_url, "--quiet").exit_code == 0
    assert tuner("run", spec, "--storage", sqlite_url, "--quiet", "--n-trials", "5").exit_code == 0
    counts = trial_state_counts(make_engine(sqlite_url), "resume")
    assert counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) == 5


def test_an_unreachable_database_fails_fast_with_the_password_hidden():
    url = "postgresql+psycopg://tuner:s3cret@127.0.0.1:1/tuner"
    result = tuner("study", "list", "--storage", url)
    assert result.exit_code == 1
    assert "s3cret" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: cannot connect to postgresql+psycopg://tuner:***@127.0.0.1:1/tuner")


AUTO_SPEC = """
[study]
name = "auto"
n_trials = 3
sampler = "random"
pruner = "none"
[data]
source = "digits"
[model]
hidden = [32, 32, 32, 32, 32, 32]
activation = "tanh"
[train]
epochs = 2
batch_size = 64
[search]
optimizer = "momentum"
eps0 = "auto"
alpha = 0.9
init = "small"
init_scale = "auto"
"""


def test_an_auto_spec_stores_the_probes_and_starts_from_their_guess(sqlite_url, tmp_path):
    spec = tmp_path / "auto.toml"
    spec.write_text(AUTO_SPEC)
    result = tuner("study", "create", spec, "--storage", sqlite_url)
    assert result.exit_code == 0
    out = result.output  # what the probes found and the ranges they set
    assert "init-scale guess (LSUV on 5 draws of the weights, relative to small)" in out
    assert "learning-rate probe" in out
    assert "queued first: 3 trial(s), the probes' picks" in out  # at the suggestion, then 0.3 and 3 times it

    record = get_study(make_engine(sqlite_url), "auto")
    guess = record.init_guess["multipliers"]
    assert len(guess) == 7
    assert all(g > 10 for g in guess[:-1])  # 'small' (0.01 N(0,1)) is far too small for a 32-wide tanh net
    probe = record.lr_probe["optimizers"]["momentum"]
    low, high = probe["range"]
    assert (low, high) == pytest.approx((probe["suggestion"] / 10, probe["suggestion"] * 10))
    for layer, g in enumerate(guess):  # the stored spec searches log ranges around the guess
        spread = 10 if layer == 6 else 4  # the output layer more widely
        assert record.spec["search"]["init_scale"][layer]["low"] == pytest.approx(g / spread)
        assert record.spec["search"]["init_scale"][layer]["high"] == pytest.approx(g * spread)
    assert record.spec["search"]["eps0"] == {"anchor": {"momentum": probe["suggestion"]}, "low": 0.1, "high": 10.0}
    study = optuna.load_study(study_name="auto", storage=sqlite_url)
    assert study.user_attrs["tuner_init_guess"]["multipliers"] == guess
    first, *further = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert first.number == 0 and first.user_attrs["warm_start"] == "probe"
    assert [t.system_attrs["fixed_params"]["eps0_factor"] for t in further] == [0.3, 3.0]
    fixed = first.system_attrs["fixed_params"]  # an enqueued trial's values, until it runs
    assert [fixed[f"init_scale_{i}"] for i in range(7)] == pytest.approx(guess)
    assert fixed["eps0_factor"] == 1.0

    assert tuner("worker", "auto", "--storage", sqlite_url, "--quiet").exit_code == 0
    trial0 = study.get_trials()[0]
    assert trial0.state == optuna.trial.TrialState.COMPLETE
    assert trial0.user_attrs["config"]["eps0"] == pytest.approx(probe["suggestion"])  # absolute in the config
    assert trial0.user_attrs["config"]["init_scale_0"] == pytest.approx(guess[0])

    shown = json.loads(tuner("study", "show", "auto", "--storage", sqlite_url, "--json").stdout)
    assert [r["optimizer"] for r in shown["probes"]["lr_probe"]] == ["momentum"]
    assert shown["probes"]["init_guess"][0]["low"] == pytest.approx(guess[0] / 4)
    assert shown["probes"]["draws"] == record.init_guess["draws"] == 5
    assert {r["parameter"] for r in shown["ranges"]} == {"eps0_factor", *(f"init_scale_{i}" for i in range(7))}
    assert shown["equal_budget"] == 3 and isinstance(shown["warnings"], list)
    human = tuner("study", "show", "auto", "--storage", sqlite_url).stdout
    assert "search ranges" in human and "learning-rate probe" in human and "best of first 3" in human


def test_create_json_reports_the_probes_and_the_queue(sqlite_url, tmp_path):
    spec = tmp_path / "auto.toml"
    spec.write_text(AUTO_SPEC.replace('optimizer = "momentum"', 'optimizer = ["momentum", "adam"]'))
    doc = json.loads(tuner("study", "create", spec, "--storage", sqlite_url, "--json").stdout)
    # one pick per optimizer, then momentum's at 0.3 times its suggestion: the study has 3 trials in all
    assert (doc["study"], doc["created"], doc["queued"]) == ("auto", True, 3)
    assert [r["optimizer"] for r in doc["probes"]["lr_probe"]] == ["momentum", "adam"]
    assert set(doc["search"]["eps0"]["anchor"]) == {"momentum", "adam"}

# ---- names and text from users reach other users' terminals literally --------------------------------

RULE = "is not allowed: use 1 to 128 characters from A-Z a-z 0-9 . _ -, the first a letter or a digit"


@pytest.mark.parametrize(("name", "shown"), [
    ("[bold]x[/]", "'[bold]x[/]'"),
    ("[/]x", "'[/]x'"),
    ("[link=http://evil]click[/link]", "'[link=http://evil]click[/link]'"),
    ("red\x1b[31m\x1b]8;;http://evil\x07here\x1b]8;;\x07\x08\x08\rZ",
     "'red\\x1b[31m\\x1b]8;;http://evil\\x07here\\x1b]8;;\\x07\\x08\\x08\\rZ'"),
    ("x" * 513, f"'{'x' * 60}...' (513 characters)"),
])
def test_create_refuses_a_name_outside_the_rule_and_stores_nothing(sqlite_url, write_spec, name, shown):
    result = tuner("study", "create", write_spec("ok"), "--storage", sqlite_url, "--name", name)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: study name {shown} {RULE}\n"
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # refused before the storage is opened


# Plain Optuna may give a study any name: tuner lists and shows it without letting it drive the terminal.
HOSTILE_NAMES = {
    "[/]x": "[/]x",
    "[link=http://evil]click[/link]": "[link=http://evil]click[/link]",
    "[bold red]loud": "[bold red]loud",
    ":smile: :warning:": ":smile: :warning:",
    "\x1b[2J\x1b[31mred": "\\x1b[2J\\x1b[31mred",
    "\x1b]8;;http://evil\x07click\x1b]8;;\x07": "\\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07",
    "bell\x07back\x08\x08\rover": "bell\\x07back\\x08\\x08\\rover",
    "rtl\u202eevil": "rtl\\u202eevil",
}


@pytest.fixture
def hostile(sqlite_url):
    """A tuner database holding plain Optuna studies, each with one complete trial and a hostile name."""
    assert tuner("db", "upgrade", "--storage", sqlite_url).exit_code == 0
    for name in HOSTILE_NAMES:
        study = optuna.create_study(study_name=name, storage=sqlite_url)
        study.add_trial(optuna.trial.create_trial(params={"[x]\x1b": 1.0},
                                                  distributions={"[x]\x1b": optuna.distributions.FloatDistribution(0, 2)},
                                                  value=0.5))
    return sqlite_url


def test_list_shows_any_name_literally_with_control_characters_visible(hostile):
    result = tuner("study", "list", "--storage", hostile)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\r" not in result.stdout
    rows = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.count("│") > 2]
    assert sorted(rows) == sorted(HOSTILE_NAMES.values())


@pytest.mark.parametrize("name", list(HOSTILE_NAMES))
def test_show_prints_any_name_and_parameter_literally(hostile, name):
    result = tuner("study", "show", name, "--storage", hostile)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        f"study '{HOSTILE_NAMES[name]}' (minimize): complete 1, diverged 0",
        "best trial #0: value 0.5",
        "  [x]\\x1b=1",
    ]


def test_an_error_listing_hostile_names_is_one_line_with_them_visible(hostile):
    result = tuner("study", "show", "nope", "--storage", hostile)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr and "\r" not in result.stderr
    assert result.stderr.startswith("error: no study named 'nope' (studies: ")
