"""`tuner study check SPEC`: a summary of the spec, its data and its network, and nothing created."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tuner.cli import app


def tuner(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working directory: where `sqlite:///tuner.db` would be made."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_check_summarises_the_spec_and_creates_nothing(here, write_spec):
    spec = write_spec("tiny", n_trials=7)
    result = tuner("study", "check", spec)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"spec {spec}: study 'tiny', maximize val_accuracy, 7 trials"
    assert lines[1] == "data: synthetic_classification, 1600 training + 400 validation rows, 20 features -> 4 classes"
    assert lines[2] == "network: 20-16-4 relu (float32), 404 parameters"  # 20*16+16 + 16*4+4
    assert lines[3].startswith("memory: about ") and "per trial at its peak" in lines[3]
    assert '  optimizer = ["sgd", "momentum", "adam"]' in lines
    assert lines[-1] == "ok: the spec is valid; nothing was created"
    assert list(here.iterdir()) == []


def test_check_json(here, write_spec):
    doc = json.loads(tuner("study", "check", write_spec("tiny"), "--json").stdout)
    assert doc["network"] == {"layer_sizes": [20, 16, 4], "activation": "relu", "parameters": 404, "dtype": "float32"}
    assert doc["data"]["train_rows"] == 1600 and doc["data"]["task"] == "classification"
    assert doc["memory"]["peak_bytes"] > 0 and doc["search"]["init"] == "he"
    assert doc["study"]["direction"] == "maximize"
    assert list(here.iterdir()) == []


def test_a_bad_spec_is_one_line_and_exit_2(here, tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('[study]\nname = "x"\n[data]\nsource = "digits"\n[train]\nepochs = 0\n[search]\noptimizer = "sgd"\n')
    result = tuner("study", "check", spec)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {spec}: train.epochs")
    missing = tuner("study", "check", tmp_path / "nope.toml")
    assert (missing.exit_code, missing.stderr) == (2, f"error: {tmp_path / 'nope.toml'}: no such file\n")
    assert list(here.iterdir()) == []


def test_data_that_cannot_be_used_is_exit_2(here, tmp_path):
    data = tmp_path / "bad.npz"
    np.savez(data, x_train=np.zeros((10, 3)), y_train=np.zeros(7))  # rows do not match
    spec = tmp_path / "s.toml"
    spec.write_text(f'[study]\nname = "x"\n[data]\nsource = "{data}"\n[search]\noptimizer = "sgd"\n')
    result = tuner("study", "check", spec)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_a_network_too_large_for_this_machine_is_exit_2(here, write_spec, monkeypatch):
    monkeypatch.setattr("tuner.study.budget.available_memory", lambda: 1000)
    result = tuner("study", "check", write_spec("tiny"))
    assert (result.exit_code, result.stdout) == (2, "")
    assert "needs about" in result.stderr and "more than the 1000 B available" in result.stderr
