"""The figures: what each draws, checked on the matplotlib objects."""

from __future__ import annotations

import math

import pandas as pd

from tuner.analysis import plots

TRIALS = pd.DataFrame(
    {
        "number": [0, 1, 2, 3],
        "state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"],
        "value": [0.5, 0.7, math.nan, 0.6],
        "init_scale_0": [0.5, 1.0, 2.0, 1.5],
        "init_scale_1": [1.0, 1.1, 1.2, 0.9],
    }
)


def test_init_scale_panels_one_per_layer_on_log_x_with_the_guess_marked():
    fig = plots.metric_against_init_scale(TRIALS, ["init_scale_0", "init_scale_1"], metric="val_accuracy",
                                          guess=[0.8, 1.25])
    axes = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in axes] == ["layer 0", "layer 1"]
    for ax, guess in zip(axes, [0.8, 1.25], strict=True):
        assert ax.get_xscale() == "log"
        (line,) = ax.get_lines()
        assert list(line.get_xdata()) == [guess, guess]  # a vertical line at the guessed multiplier
        (points,) = ax.collections
        assert len(points.get_offsets()) == 3  # complete trials only


def test_init_scale_panels_without_a_guess_have_no_line():
    fig = plots.metric_against_init_scale(TRIALS, ["init_scale_0"], metric="val_accuracy")
    assert not fig.axes[0].get_lines()


def test_history_marks_the_best_so_far():
    fig = plots.optimization_history(TRIALS, metric="val_accuracy", maximize=True)
    (best,) = fig.axes[0].get_lines()
    assert list(best.get_ydata()) == [0.5, 0.7, 0.7]


def test_importances_without_values_say_why():
    fig = plots.param_importances(None, note="too few trials")
    assert [t.get_text() for t in fig.axes[0].texts] == ["too few trials"]


def test_importances_are_bars_most_important_on_top():
    fig = plots.param_importances({"eps0": 0.6, "alpha": 0.3, "init_scale_0": 0.1})
    bars = fig.axes[0].patches
    assert [round(b.get_width(), 6) for b in bars] == [0.1, 0.3, 0.6]  # drawn bottom-up
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["init_scale_0", "alpha", "eps0"]


def test_best_per_optimizer_draws_each_best_with_its_median():
    summary = pd.DataFrame({"optimizer": ["adam", "sgd"], "trials": [3, 2], "complete": [3, 1],
                            "best": [0.9, 0.7], "median": [0.8, 0.7]})
    fig = plots.best_per_optimizer(summary, metric="val_accuracy")
    ax = fig.axes[0]
    assert [b.get_height() for b in ax.patches] == [0.9, 0.7]
    (medians,) = ax.collections
    assert [y for _, y in medians.get_offsets()] == [0.8, 0.7]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["adam\n3/3 complete", "sgd\n1/2 complete"]


def test_a_saved_png_is_the_figure_at_its_size_and_not_blank(tmp_path):
    from matplotlib.image import imread

    path = plots.save_png(plots.optimization_history(TRIALS, metric="val_accuracy", maximize=True),
                          tmp_path / "history.png")
    pixels = imread(path)
    assert pixels.shape[:2] == (4 * plots.DPI, 7 * plots.DPI)  # the figure's 7 x 4 inches
    assert (pixels[..., :3] < 0.5).mean() > 0.001  # dark pixels: axes, labels and points were drawn


def test_validation_curves_one_line_per_trial():
    curves = pd.DataFrame({"trial_number": [1, 1, 3, 3, 0], "epoch": [1, 2, 1, 2, 1],
                           "val_accuracy": [0.5, 0.7, 0.4, 0.6, 0.1]})
    fig = plots.validation_curves(curves, [1, 3], metric="val_accuracy")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["trial 1", "trial 3"]
