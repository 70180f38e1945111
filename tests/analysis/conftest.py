"""A small real study for the analysis tests: created from a spec, trials run by the real worker loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.study.create import create_study
from tuner.study.spec import load_spec
from tuner.study.worker import run_worker

# Two hidden layers, so three dense layers and three init-scale multipliers.
SPEC = """
[study]
name = "{name}"
objective = "val_accuracy"
n_trials = {n_trials}
seed = 3
sampler = "random"
pruner = "none"

[data]
source = "synthetic_classification"

[model]
hidden = [12, 8]
activation = "tanh"

[train]
epochs = {epochs}
batch_size = 64

[search]
optimizer = ["sgd", "momentum"]
eps0 = {{ low = 1e-3, high = 0.05, log = true }}
alpha = {{ low = 0.5, high = 0.9 }}
init = "glorot_uniform"
init_scale = {init_scale}
"""

PER_LAYER = "{ low = 0.3, high = 3.0, log = true }"


@pytest.fixture
def make_study(tmp_path: Path):
    """make_study(url, name, n_trials=, epochs=, init_scale=) -> name: a study with its trials run."""

    def make(url: str, name: str = "tiny", *, n_trials: int = 5, epochs: int = 3, init_scale: str = PER_LAYER,
             run: bool = True) -> str:
        path = tmp_path / f"{name}.toml"
        path.write_text(SPEC.format(name=name, n_trials=n_trials, epochs=epochs, init_scale=init_scale))
        create_study(url, load_spec(path))
        if run:
            report = run_worker(url, name, heartbeat_interval=5, poll_interval=0.1)
            assert report.reason == "done", report
        return name

    return make
