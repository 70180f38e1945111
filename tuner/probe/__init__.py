"""Cheap probes of an initial network: activation statistics, the init-scale guess, the learning-rate probe.

    stats = activation_stats(model, x, y)             # per dense layer, one batch
    guess = init_scale_guess(model, x)                # LSUV: rescales model's weights in place
    result = lr_probe(model, "sgd", data, rng=rng)    # Smith's range test, read without lag: result.edge,
                                                      # result.suggestion
    plot(result, "lr.png")

`tuner.study.autos` runs them on a study spec to resolve `"auto"` init scales and eps0.
"""

from __future__ import annotations

from tuner.probe.init_guess import InitScaleGuess, init_scale_guess
from tuner.probe.lr import LRProbeResult, lr_probe
from tuner.probe.lr_plot import plot
from tuner.probe.stats import LayerStats, activation_stats

__all__ = [
    "InitScaleGuess",
    "LRProbeResult",
    "LayerStats",
    "activation_stats",
    "init_scale_guess",
    "lr_probe",
    "plot",
]
