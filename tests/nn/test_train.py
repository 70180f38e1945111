"""The training loop: reproducibility, symmetry of zero init, divergence, stopping, and a real result."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tuner.errors import HyperparameterError, ModelError
from tuner.nn.data import load_dataset
from tuner.nn.mlp import MLP
from tuner.nn.train import CHECK_EVERY, EXPLOSION_FACTOR, EpochRecord, TrainResult, train
from tuner.optim import make


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def run(data, seed=0, epochs=3, optimizer=None, hidden=32, **model_options):
    rng = np.random.default_rng(seed)
    model = MLP([data.n_features, hidden, data.n_outputs], **model_options, rng=rng)
    optimizer = optimizer or make("nesterov", eps0=0.05, alpha=0.9)
    return model, optimizer, train(model, optimizer, data, epochs, 64, rng)


class ScriptedModel:
    """A stand-in network whose minibatch losses follow a script, to pin the loop's bookkeeping."""

    batchnorm = False

    def __init__(self, losses, n_features=2):
        self.losses = iter(losses)
        self.layer_sizes = (n_features, 1)
        self.params = np.zeros(3, np.float32)
        self.grad = np.zeros(3, np.float32)
        self.batches = []

    def check_set(self, x, y):
        return x, y

    def loss_and_grad_checked(self, x, y):
        self.batches.append((x.copy(), y.copy()))
        return next(self.losses)

    def evaluate(self, x, y):
        return 0.5, 0.75

    def train(self):
        return self


@pytest.fixture
def tiny(tmp_path):
    """10 training rows (x = row index), 2 validation rows, classes 0/1."""
    x = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=np.arange(10) % 2, x_val=x[:2], y_val=np.array([0, 1]))
    return load_dataset(path, standardize=False)


def test_a_seeded_run_replays_bit_for_bit(digits):
    model_a, _, a = run(digits, seed=11)
    model_b, _, b = run(digits, seed=11)
    np.testing.assert_array_equal(model_a.params, model_b.params)
    strip = [(r.epoch, r.train_loss, r.val_loss, r.val_accuracy, r.lr) for r in a.history]
    assert strip == [(r.epoch, r.train_loss, r.val_loss, r.val_accuracy, r.lr) for r in b.history]
    model_c, _, _ = run(digits, seed=12)
    assert not np.array_equal(model_a.params, model_c.params)


def test_zero_init_keeps_every_hidden_unit_identical(digits):
    # Constant hidden biases make the hidden units active (tanh(0.1) ≠ 0) so the weights do move, but
    # every unit of the layer still sees the same gradient: nothing breaks the symmetry.
    model, _, result = run(digits, epochs=2, init="zeros", activation="tanh", bias="constant", bias_value=0.1)
    assert result.status == "completed"
    w_in, w_out = model.weights
    assert np.abs(w_in).max() > 1e-4
    np.testing.assert_allclose(w_in, np.repeat(w_in[:, :1], w_in.shape[1], axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(w_out, np.repeat(w_out[:1, :], w_out.shape[0], axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.biases[0], model.biases[0][0], rtol=1e-5)


def test_a_too_large_rate_diverges_with_a_reason(digits):
    _, _, result = run(digits, epochs=5, optimizer=make("sgd", eps0=1e4))
    assert result.status == "diverged" and result.diverged
    assert len(result.history) < 5
    assert re.match(r"loss (nan|inf|\S+ at epoch \d+, batch \d+ exceeds 1000)", result.reason)


def test_explosion_rule_is_1000_times_the_first_batch_loss(tiny):
    ok = ScriptedModel([2.0, 1999.0] + [1.0] * 100)
    assert train(ok, make("sgd"), tiny, 3, 5, np.random.default_rng(0)).status == "completed"
    boom = ScriptedModel([2.0, 3.0, 2500.0])  # 2 batches per epoch: the third is epoch 2's first
    result = train(boom, make("sgd"), tiny, 3, 5, np.random.default_rng(0))
    assert result.status == "diverged" and len(result.history) == 1
    assert result.reason == f"loss 2500 at epoch 2, batch 1 exceeds {EXPLOSION_FACTOR:g} x the first batch's loss (2)"


def test_a_non_finite_loss_diverges(tiny):
    result = train(ScriptedModel([1.0, math.nan]), make("sgd"), tiny, 2, 5, np.random.default_rng(0))
    assert result.status == "diverged" and result.reason == "loss nan at epoch 1, batch 2"
    result = train(ScriptedModel([math.inf]), make("sgd"), tiny, 2, 5, np.random.default_rng(0))
    assert result.reason == "loss inf at epoch 1, batch 1"


def test_near_zero_first_loss_uses_the_floor(tiny):
    model = ScriptedModel([0.0, 0.9] + [0.0] * 100)  # 0.9 < 1000 x 1e-3
    assert train(model, make("sgd"), tiny, 2, 5, np.random.default_rng(0)).status == "completed"
    result = train(ScriptedModel([0.0, 1.5]), make("sgd"), tiny, 2, 5, np.random.default_rng(0))
    assert result.reason == "loss 1.5 at epoch 1, batch 2 exceeds 1000 x the floor 0.001 (first loss 0)"


def test_bookkeeping_batches_records_and_schedule(tiny):
    model = ScriptedModel([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    opt = make("sgd", eps0=0.1)
    seen = []
    result = train(model, opt, tiny, 2, 4, np.random.default_rng(3), on_epoch=seen.append)
    assert result == TrainResult("completed", seen, None)
    # 10 rows in batches of 4: 4, 4 and a last batch of 2; every row once per epoch, in a seeded order.
    sizes = [len(x) for x, _ in model.batches]
    assert sizes == [4, 4, 2, 4, 4, 2]
    assert sorted(np.concatenate([x[:, 0] for x, _ in model.batches[:3]])) == list(range(10))
    order = np.random.default_rng(3).permutation(10)
    np.testing.assert_array_equal(model.batches[0][0][:, 0], order[:4])
    np.testing.assert_array_equal(model.batches[0][1], order[:4] % 2)
    assert opt.tau == 6 and opt.k == 6
    first, second = result.history
    assert (first.epoch, first.train_loss, first.val_loss, first.val_accuracy) == (1, 2.0, 0.5, 0.75)
    assert second.train_loss == 5.0
    assert first.lr == pytest.approx(opt.rate(2)) and second.lr == pytest.approx(opt.rate(5))
    assert first.seconds >= 0 and isinstance(first, EpochRecord)
    assert result.final is second and result.best is first


def test_on_epoch_true_stops_and_exceptions_propagate(digits):
    calls = []

    def stop_after_two(record):
        calls.append(record.epoch)
        return record.epoch == 2

    rng = np.random.default_rng(0)
    model = MLP([64, 16, 10], rng=rng)
    result = train(model, make("adam"), digits, 10, 128, rng, on_epoch=stop_after_two)
    assert result.status == "stopped" and calls == [1, 2] and len(result.history) == 2
    assert result.reason == "on_epoch asked to stop after epoch 2"

    class Pruned(Exception):
        pass

    def prune(record):
        raise Pruned

    with pytest.raises(Pruned):
        train(model, make("adam"), digits, 10, 128, rng, on_epoch=prune)


def test_should_stop_is_asked_every_few_minibatches_inside_an_epoch(tmp_path):
    rows = 100 * CHECK_EVERY  # one epoch of 100 x CHECK_EVERY minibatches of one row
    np.savez(tmp_path / "long.npz", x=np.zeros((rows, 2)), y=np.arange(rows) % 2, x_val=np.zeros((2, 2)),
             y_val=np.array([0, 1]))
    data = load_dataset(tmp_path / "long.npz", standardize=False)
    model = ScriptedModel([1.0] * rows)
    asked = []

    def stop_on_the_third_call(epoch, batch):
        asked.append((epoch, batch))
        return "out of time" if len(asked) == 3 else None

    result = train(model, make("sgd"), data, 2, 1, np.random.default_rng(0), should_stop=stop_on_the_third_call)
    assert asked == [(1, CHECK_EVERY), (1, 2 * CHECK_EVERY), (1, 3 * CHECK_EVERY)]
    assert len(model.batches) == 3 * CHECK_EVERY  # ended in the middle of the first epoch
    assert result == TrainResult("stopped", [], "out of time")


def test_with_batchnorm_a_last_minibatch_of_one_row_is_skipped(tiny):
    model = ScriptedModel([1.0] * 6)
    model.batchnorm = True
    train(model, make("sgd"), tiny, 2, 3, np.random.default_rng(0))  # 10 rows: 3, 3, 3 and 1 skipped
    assert [len(x) for x, _ in model.batches] == [3, 3, 3, 3, 3, 3]
    plain = ScriptedModel([1.0] * 8)
    train(plain, make("sgd"), tiny, 2, 3, np.random.default_rng(0))
    assert [len(x) for x, _ in plain.batches] == [3, 3, 3, 1, 3, 3, 3, 1]


def test_regression_has_no_accuracy():
    data = load_dataset("synthetic_regression")
    rng = np.random.default_rng(0)
    model = MLP([data.n_features, 32, 1], "tanh", loss="mse", rng=rng)
    result = train(model, make("adam", eps0=0.01), data, 5, 64, rng)
    assert result.status == "completed" and result.final.val_accuracy is None
    assert result.final.val_loss < result.history[0].val_loss


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"rng": 42}, "rng must be a numpy.random.Generator, got int"),
    ],
)
def test_bad_arguments(digits, kwargs, message):
    args = {"epochs": 1, "batch_size": 32, "rng": np.random.default_rng(0), **kwargs}
    model = MLP([64, 8, 10], rng=np.random.default_rng(0))
    with pytest.raises(HyperparameterError, match=re.escape(message)):
        train(model, make("sgd"), digits, **args)


def test_model_and_data_must_agree(digits):
    model = MLP([40, 8, 10], rng=np.random.default_rng(0))
    with pytest.raises(ModelError, match="takes 40 inputs but digits has 64 features"):
        train(model, make("sgd"), digits, 1, 32, np.random.default_rng(0))


def test_digits_reaches_95_percent(digits):
    rng = np.random.default_rng(0)
    model = MLP([64, 128, 10], "relu", rng=rng)
    result = train(model, make("momentum", eps0=0.05, alpha=0.9), digits, 30, 32, rng)
    assert result.status == "completed" and len(result.history) == 30
    assert result.final.val_accuracy > 0.95
