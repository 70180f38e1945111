"""A study's dataset: loaded the same way by `study create`, every worker and the probes."""

from __future__ import annotations

import numpy as np

from tuner.errors import DataError
from tuner.nn.data import Dataset, load_dataset
from tuner.study.spec import StudySpec


def load_study_data(spec: StudySpec) -> Dataset:
    """The study's dataset, generated (a built-in source) and split with `data.seed`, by default the
    study's seed, so every worker sees the same data and split.

    A regression target under `objective = "val_accuracy"` is refused here: a data file's task is known
    only once it is read.
    """
    data = load_dataset(
        spec.data.source,
        seed=spec.study.seed if spec.data.seed is None else spec.data.seed,
        val_fraction=spec.data.val_fraction,
        test_fraction=spec.data.test_fraction,
        target=spec.data.target,
        standardize=spec.data.standardize,
        dtype=np.dtype(spec.train.dtype),
    )
    if spec.study.objective == "val_accuracy" and not data.is_classification:
        raise DataError(
            f"{spec.data.source}: holds a regression target (floating-point y), but study.objective = "
            "'val_accuracy' needs integer or string class labels; use objective = 'val_loss' or integer labels"
        )
    return data
