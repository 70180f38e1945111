"""`tuner train` and `tuner study export-spec` on a real study (SQLite file, real Optuna, digits): the
replay reproduces the stored curve bit for bit, the saved model predicts as the replayed one, a tampered
curve is caught, and an exported spec trains the same run again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from tuner.cli import app
from tuner.nn import load_model, read_model
from tuner.storage import dispose_engines, load_curves, make_engine, open_study
from tuner.storage.tables import curves
from tuner.study.params import Fixed, PerLayer
from tuner.study.replay import pick_trial, replay_trial
from tuner.study.spec import load_spec
from tuner.study.worker import run_worker

SPEC = """
[study]
name = "tiny"
n_trials = 6
seed = 1
sampler = "random"
pruner = "median"            # prunes some trials after their first epoch: PRUNED trials to replay
n_startup_trials = 1
n_warmup_epochs = 0

[data]
source = "digits"
test_fraction = 0.1

[model]
hidden = [16]

[train]
epochs = 4
batch_size = 32

[search]
optimizer = ["sgd", "momentum", "adam"]
eps0 = { low = 1e-4, high = 0.3, log = true }
alpha = { low = 0.5, high = 0.9 }
init_scale = { low = 0.5, high = 2.0, log = true }
"""


def tuner(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> str:
    """The study, made and run once for the module; tests that change it work on a copy (`copy_of`)."""
    directory = tmp_path_factory.mktemp("train")
    (directory / "tiny.toml").write_text(SPEC)
    url = f"sqlite:///{directory / 'tuner.db'}"
    result = tuner("run", directory / "tiny.toml", "--storage", url, "--quiet")
    assert result.exit_code == 0, result.stderr
    states = {t.state.name for t in optuna.load_study(study_name="tiny", storage=url).trials}
    assert states == {"COMPLETE", "PRUNED"}
    yield url
    dispose_engines(url)


def copy_of(url: str, tmp_path: Path) -> str:
    """A copy of the study's database (through SQLite's backup, which includes its write-ahead log)."""
    target = tmp_path / "copy.db"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    return f"sqlite:///{target}"


def trials(url: str, state: str | None = None) -> list[optuna.trial.FrozenTrial]:
    found = optuna.load_study(study_name="tiny", storage=url).trials
    return [t for t in found if state is None or t.state.name == state]


def test_the_best_trial_is_replayed_bit_for_bit_and_saved(study, tmp_path):
    out = tmp_path / "model.npz"
    result = tuner("train", "tiny", "--trial", "best", "--out", out, "--storage", study, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    best = optuna.load_study(study_name="tiny", storage=study).best_trial
    assert (doc["trial"], doc["state"], doc["verified"], doc["compared_epochs"]) == (best.number, "COMPLETE", True, 4)
    assert doc["difference"] is None and doc["note"] is None
    assert doc["blas_threads"] == best.user_attrs["config"]["blas_threads"] >= 1  # recorded by the trial, used again
    assert doc["params"] == {k: v for k, v in best.user_attrs["config"].items() if k not in ("seed", "blas_threads")}

    # The file holds the replayed network: the same bits, the same predictions, the same test metrics.
    handle = open_study(study, "tiny")
    replay = replay_trial(handle, pick_trial(handle, "best"))
    saved = read_model(out)
    assert saved.model.params.tobytes() == replay.run.model.params.tobytes()
    x_test, y_test = replay.data.x_test, replay.data.y_test
    np.testing.assert_array_equal(load_model(out).predict(x_test), replay.run.model.predict(x_test))
    loss, accuracy = saved.model.evaluate(x_test, y_test)
    assert doc["test"] == {"loss": loss, "accuracy": accuracy} == saved.meta["test"]
    assert saved.meta["trial"] == best.number and saved.meta["verified"] is True
    assert saved.meta["spec"]["data"]["test_fraction"] == 0.1


def test_the_human_output_has_a_line_per_epoch_and_the_verdict(study, tmp_path):
    number = trials(study, "COMPLETE")[0].number
    result = tuner("train", "tiny", "--trial", number, "--out", tmp_path / "m.npz", "--storage", study)
    assert result.exit_code == 0, result.stderr
    epochs = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1", "epoch 2", "epoch 3", "epoch 4"]
    lines = result.stdout.splitlines()
    assert lines[0] == f"trial {number} of study 'tiny': reproduces the stored curve bit for bit (4 epochs compared)"
    assert lines[2].startswith("test split (180 examples): loss ")
    assert lines[3] == f"wrote {tmp_path / 'm.npz'} (64-16-10 relu, float32)"


def test_a_pruned_trial_is_compared_over_the_epochs_it_ran(study, tmp_path):
    pruned = trials(study, "PRUNED")[0]
    ran = len(load_curves(make_engine(study), "tiny", pruned.number))
    result = tuner("train", "tiny", "--trial", pruned.number, "--out", tmp_path / "m.npz", "--storage", study)
    assert result.exit_code == 0, result.stderr
    assert (f"note: trial {pruned.number} was PRUNED after epoch {ran}: epochs 1 to {ran} compared, "
            f"{ran + 1} to 4 are new training") in result.stderr.splitlines()
    assert f"bit for bit ({ran} epochs compared)" in result.stdout


def test_a_tampered_curve_is_a_mismatch_naming_the_epoch_and_metric(study, tmp_path):
    url = copy_of(study, tmp_path)
    number = trials(url, "COMPLETE")[-1].number
    where = (curves.c.trial_number == number) & (curves.c.epoch == 2)
    engine = make_engine(url)
    with engine.begin() as connection:
        replayed = connection.execute(select(curves.c.val_loss).where(where)).scalar_one()
        connection.execute(update(curves).where(where).values(val_loss=curves.c.val_loss + 1e-9))
        stored = connection.execute(select(curves.c.val_loss).where(where)).scalar_one()
    out = tmp_path / "m.npz"
    differs = (f"the replay of trial {number} differs from it at epoch 2, val_loss: stored {stored!r}, "
               f"replayed {replayed!r} (difference {replayed - stored:+.3g})")

    refused = tuner("train", "tiny", "--trial", number, "--out", out, "--storage", url, "--quiet")
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr == f"error: {differs}; no model written (--allow-mismatch writes it anyway)\n"
    assert not out.exists()

    allowed = tuner("train", "tiny", "--trial", number, "--out", out, "--storage", url, "--allow-mismatch", "--json")
    assert allowed.exit_code == 0, allowed.stderr
    assert f"warning: {differs}; the model is written anyway (--allow-mismatch)\n" in allowed.stderr
    assert json.loads(allowed.stdout)["verified"] is False
    assert read_model(out).meta["difference"].startswith("epoch 2, val_loss: stored ")
    dispose_engines(url)


def test_a_missing_or_unfinished_trial_is_one_line(study, tmp_path):
    url = copy_of(study, tmp_path)
    optuna.load_study(study_name="tiny", storage=url).enqueue_trial({"optimizer": "sgd"})  # trial 6, WAITING
    out = tmp_path / "m.npz"
    for trial, code, message in (
        ("99", 1, "error: study 'tiny' has no trial 99 (trials 0 to 6)\n"),
        ("6", 1, "error: trial 6 of study 'tiny' is WAITING: only a COMPLETE or PRUNED trial can be trained again\n"),
        ("-1", 2, ("error: Invalid value for '--trial' / '-t': expected a trial number or 'best', got '-1' "
                   "(see 'tuner train --help')\n")),
    ):
        result = tuner("train", "tiny", "--trial", trial, "--out", out, "--storage", url)
        assert (result.exit_code, result.stderr, result.stdout) == (code, message, "")
    missing = tuner("train", "nope", "--out", out, "--storage", url)
    assert (missing.exit_code, missing.stderr) == (1, "error: no study named 'nope' (studies: tiny)\n")
    nowhere = tuner("train", "tiny", "--out", tmp_path / "no" / "m.npz", "--storage", url)
    assert (nowhere.exit_code, nowhere.stderr) == (
        1, f"error: {tmp_path / 'no' / 'm.npz'}: no directory {tmp_path / 'no'} to write into\n")
    assert not out.exists()
    dispose_engines(url)


def test_a_trial_without_a_stored_curve_is_trained_but_not_verified(study, tmp_path):
    from tuner.study.optimize import load_objective

    url = copy_of(study, tmp_path)
    optuna_study, objective = load_objective(url, "tiny")
    optuna_study.enqueue_trial(optuna_study.best_trial.params)  # the best trial's values: it completes
    optuna_study.optimize(objective, n_trials=1)  # plain Optuna: no curve rows
    number = trials(url)[-1].number
    result = tuner("train", "tiny", "--trial", number, "--out", tmp_path / "m.npz", "--storage", url)
    assert result.exit_code == 0, result.stderr
    assert f"note: trial {number} has no stored curve: the replay cannot be verified" in result.stderr.splitlines()
    assert result.stdout.startswith(f"trial {number} of study 'tiny': not verified (no stored curve to compare)\n")
    dispose_engines(url)


def test_a_study_made_with_plain_optuna_has_no_spec_to_train(study, tmp_path):
    url = copy_of(study, tmp_path)
    plain = optuna.create_study(study_name="plain", storage=url)
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    result = tuner("train", "plain", "--out", tmp_path / "m.npz", "--storage", url)
    assert (result.exit_code, result.stderr) == (
        1, "error: study 'plain' was not made by tuner: it has no spec to train a trial from\n")
    dispose_engines(url)


def test_an_exported_spec_has_no_ranges_and_runs_the_same_trial_again(study, tmp_path):
    url = copy_of(study, tmp_path)
    best = optuna.load_study(study_name="tiny", storage=url).best_trial
    out = tmp_path / "fixed.toml"
    result = tuner("study", "export-spec", "tiny", "--out", out, "--storage", url)
    assert (result.exit_code, result.stderr) == (0, f"wrote the spec of trial {best.number} to {out}\n")
    spec = load_spec(out)
    for key in ("optimizer", "eps0", "alpha", "rho", "rho1", "rho2", "delta", "eps_tau_ratio", "tau_fraction",
                "init", "init_scale"):
        value = getattr(spec.search, key)
        assert value is None or isinstance(value, Fixed) or (
            isinstance(value, PerLayer) and all(isinstance(v, Fixed) for v in value.values)), (key, value)
    assert (spec.study.name, spec.study.n_trials, spec.train.seed) == (
        f"tiny-trial-{best.number}", 1, best.user_attrs["config"]["seed"])

    assert tuner("study", "create", out, "--storage", url, "--quiet").exit_code == 0
    assert run_worker(url, spec.study.name, heartbeat_interval=5, poll_interval=0.1).reason == "done"
    columns = ("epoch", "train_loss", "val_loss", "val_accuracy", "lr")
    again = [{k: r[k] for k in columns} for r in load_curves(make_engine(url), spec.study.name)]
    assert again == [{k: r[k] for k in columns} for r in load_curves(make_engine(url), "tiny", best.number)]

    trained = tuner("train", spec.study.name, "--out", tmp_path / "m.npz", "--storage", url, "--quiet")
    assert trained.exit_code == 0, trained.stderr
    refused = tuner("study", "export-spec", "tiny", "--out", out, "--storage", url)
    assert (refused.exit_code, refused.stderr) == (1, f"error: {out}: already exists (use --force to overwrite)\n")
    dispose_engines(url)


@pytest.mark.parametrize(("command", "example"), [
    (("train",), "Example: tuner train digits-mlp --trial best --out model.npz"),
    (("study", "export-spec"), "Example: tuner study export-spec digits-mlp --trial best --out digits-best.toml"),
])
def test_help_has_an_example(command, example):
    result = tuner(*command, "--help")
    assert result.exit_code == 0 and example in " ".join(result.stdout.split())


def test_a_trial_added_by_hand_is_replayed_from_its_parameters_and_its_config_checked(study, tmp_path):
    url = copy_of(study, tmp_path)
    optuna_study = optuna.load_study(study_name="tiny", storage=url)
    best = optuna_study.best_trial
    bare = optuna.trial.create_trial(params=best.params, distributions=best.distributions, value=0.5)
    optuna_study.add_trial(bare)  # plain Optuna: no tuner config, no curve
    number = trials(url)[-1].number
    result = tuner("train", "tiny", "--trial", number, "--out", tmp_path / "m.npz", "--storage", url)
    assert result.exit_code == 0, result.stderr
    assert (f"note: trial {number} has no stored curve, nor a tuner config (made with plain Optuna?): the replay "
            "cannot be verified") in result.stderr.splitlines()

    config = {**best.user_attrs["config"], "eps0": 0.5}
    optuna_study.add_trial(optuna.trial.create_trial(params=best.params, distributions=best.distributions, value=0.5,
                                                     user_attrs={"config": config}))
    number = trials(url)[-1].number
    result = tuner("train", "tiny", "--trial", number, "--out", tmp_path / "m.npz", "--storage", url, "--force")
    assert result.exit_code == 1
    assert result.stderr.endswith(f"error: the replay of trial {number} differs from it at config eps0: stored 0.5, "
                                  f"replayed {best.user_attrs['config']['eps0']!r} "
                                  f"(difference {best.user_attrs['config']['eps0'] - 0.5:+.3g}); no model written "
                                  "(--allow-mismatch writes it anyway)\n")
    dispose_engines(url)


def test_threads_sets_the_blas_threads_of_the_replay(study, tmp_path):
    # With another count than the trial's the bits may differ (they do on a machine with several cores).
    out = tmp_path / "m.npz"
    result = tuner("train", "tiny", "--threads", 1, "--allow-mismatch", "--out", out, "--storage", study, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["blas_threads"] == 1 == read_model(out).meta["blas_threads"]
