"""`tuner probe init` and `tuner probe lr` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tuner.cli import app

runner = CliRunner()

SPEC = """
[study]
name = "probe-cli"
[data]
source = "{source}"
[model]
hidden = [32, 16]
activation = "relu"
[train]
batch_size = 64
[search]
optimizer = "sgd"
init = "he"
"""


@pytest.fixture
def spec_file(tmp_path):
    def write(source: str = "digits") -> str:
        path = tmp_path / "spec.toml"
        path.write_text(SPEC.format(source=source))
        return str(path)

    return write


def test_init_prints_tables_before_and_after(spec_file):
    result = runner.invoke(app, ["probe", "init", spec_file(), "--batch-size", "128"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "before: he init, scale 1, batch of 128" in out and "after: LSUV" in out
    assert "64 -> 32" in out and "32 -> 16" in out and "16 -> 10" in out
    assert "multiplier" in out and "init_scale (he) per layer: [" in out


def test_init_json(spec_file):
    result = runner.invoke(app, ["probe", "init", spec_file(), "--json", "--seed", "4"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {"multipliers", "before", "after", "scheme", "batch_size", "seed"} <= set(doc)
    assert doc["seed"] == 4 and doc["batch_size"] == 64 and len(doc["multipliers"]) == 3
    # after: the first draw's network at the multipliers averaged over the draws; the first layer's input
    # is the batch itself, so its std moves by exactly its multiplier
    assert doc["draws"] == len(doc["draw_multipliers"]) == 5
    assert doc["after"][0]["pre_std"] == pytest.approx(doc["before"][0]["pre_std"] * doc["multipliers"][0], rel=1e-5)
    assert all(0.6 < s["pre_std"] < 1.6 for s in doc["after"])
    again = json.loads(runner.invoke(app, ["probe", "init", spec_file(), "--json", "--seed", "4"]).output)
    assert again["multipliers"] == doc["multipliers"]


def test_lr_json_and_plot(spec_file, tmp_path):
    png = tmp_path / "curve.png"
    result = runner.invoke(app, ["probe", "lr", spec_file(), "--steps", "60", "--repeats", "2", "--plot", str(png),
                                 "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    sgd = doc["optimizers"]["sgd"]
    assert {"suggestion", "edge", "edges", "range", "rates", "sweeps", "optimizer", "note"} <= set(sgd)
    assert sgd["optimizer"] == "sgd" and len(sgd["rates"]) == 60 and len(sgd["sweeps"]) == 2
    assert sgd["range"] == pytest.approx([sgd["suggestion"] / 10, sgd["suggestion"] * 10])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_lr_table_probes_every_optimizer_of_the_spec(spec_file, tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(Path(spec_file()).read_text().replace('optimizer = "sgd"', 'optimizer = ["sgd", "adam"]'))
    result = runner.invoke(app, ["probe", "lr", str(path), "--steps", "40", "--plot", str(tmp_path / "lr.png")])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.lstrip("│ ").startswith(("sgd ", "adam "))]
    assert len(rows) == 2 and " .. " in rows[0]
    # the study's plan: 1.5% of 50 trials x 30 epochs x 23 steps over 2 optimizers = 259 steps each; a first
    # sweep of 40 steps, then shorter ones while they fit: the table's "sweeps (steps)" column says how many
    as_json = json.loads(runner.invoke(app, ["probe", "lr", str(path), "--steps", "40", "--json"]).output)
    for name, result in as_json["optimizers"].items():
        assert len(result["sweeps"]) >= 6 and result["steps_run"] <= 259
        assert f"{len(result['sweeps'])} ({result['steps_run']})" in next(r for r in rows if name in r)
    assert (tmp_path / "lr-sgd.png").exists() and (tmp_path / "lr-adam.png").exists()


def test_help_has_examples():
    for command in ("init", "lr"):
        result = runner.invoke(app, ["probe", command, "--help"])
        assert result.exit_code == 0 and "Example: tuner probe " + command in result.output


def test_batch_larger_than_the_data_is_one_line_and_exit_1(spec_file):
    result = runner.invoke(app, ["probe", "init", spec_file(), "--batch-size", "100000"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: batch size 100000 is larger than the training data (1438 examples)"
    ]


def test_a_single_class_is_one_line_and_exit_1(spec_file, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "one.npz", x=rng.standard_normal((200, 5)), y=np.ones(200, dtype=np.int64))
    result = runner.invoke(app, ["probe", "lr", spec_file(str(tmp_path / "one.npz"))])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "single class" in lines[0]
