"""Replaying trials from the library: an equal share with an anchored eps0 and per-layer scales (names
prefixed by the optimizer, values read back through `suggest`), a fixed training seed, and the refusals."""

from __future__ import annotations

import pytest

from tuner.errors import ReplayError, TrialNotFoundError
from tuner.storage import open_study
from tuner.study.create import create_study
from tuner.study.fixed_spec import fixed_spec_dict
from tuner.study.replay import pick_trial, replay_trial, stored_spec
from tuner.study.spec import load_spec
from tuner.study.worker import run_worker

SPEC = """
[study]
name = "{name}"
n_trials = 4
seed = 5
sampler = "random"
pruner = "none"
optimizer_share = "equal"

[data]
source = "digits"

[model]
hidden = [8]

[train]
epochs = 2
batch_size = 64
{train_seed}

[search]
optimizer = ["sgd", "adam"]
eps0 = {{ anchor = {{ sgd = 0.05, adam = 0.002 }}, low = 0.5, high = 2.0 }}
init_scale = [{{ low = 0.5, high = 2.0, log = true }}, 1.0]
"""


def _study(url: str, tmp_path, name: str, *, train_seed: str = "", run: bool = True):
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, train_seed=train_seed))
    create_study(url, load_spec(path))
    if run:
        assert run_worker(url, name, heartbeat_interval=5, poll_interval=0.1).reason == "done"
    return open_study(url, name)


def test_every_trial_of_an_equal_share_replays_bit_for_bit(storage_url, tmp_path):
    # On PostgreSQL too: its double precision columns give back the curve's values to the last bit.
    handle = _study(storage_url, tmp_path, "equal")
    for trial in handle.study.get_trials():
        assert any(name.startswith(f"{trial.user_attrs['optimizer']}.") for name in trial.params)
        replay = replay_trial(handle, pick_trial(handle, trial.number))
        assert (replay.verified, replay.compared, replay.difference, replay.note) == (True, 2, None, None)

        fixed = fixed_spec_dict(stored_spec(handle), trial, study_name="equal")["search"]
        config = trial.user_attrs["config"]
        assert fixed["eps0"] == config["eps0"]  # anchor x factor, as the trial computed it
        assert fixed["init_scale"] == [config["init_scale_0"], 1.0] and fixed["optimizer"] == config["optimizer"]


def test_a_fixed_training_seed_is_every_trials_seed(sqlite_url, tmp_path):
    handle = _study(sqlite_url, tmp_path, "seeded", train_seed="seed = 123")
    assert {t.user_attrs["config"]["seed"] for t in handle.study.get_trials()} == {123}
    assert replay_trial(handle, pick_trial(handle, "best")).verified


def test_a_study_without_finished_trials_has_no_best_and_no_trial_to_replay(sqlite_url, tmp_path):
    handle = _study(sqlite_url, tmp_path, "fresh", run=False)
    with pytest.raises(TrialNotFoundError, match="^study 'fresh' has no complete trial yet$"):
        pick_trial(handle, "best")
    with pytest.raises(TrialNotFoundError, match=r"^study 'fresh' has no trial 0 \(no trials\)$"):
        pick_trial(handle, 0)
    handle.study.enqueue_trial({})
    with pytest.raises(ReplayError, match="^trial 0 of study 'fresh' is WAITING: only a COMPLETE or PRUNED"):
        pick_trial(handle, 0)
