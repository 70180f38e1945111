"""20 steps on a quadratic match torch.optim where the conventions agree (ALGORITHMS.md, last section).

SGD, momentum at a constant rate (PyTorch's buf = μ·buf + g, θ −= lr·buf gives the same trajectory),
AdaGrad and Adam; with the linear decay of eq. 8.14 against `LinearLR` for SGD and Adam. RMSProp (eps
outside the root in PyTorch) and the Nesterov variants (PyTorch stores the look-ahead point) differ by
design and are not compared.
"""

from __future__ import annotations

import numpy as np
import pytest

from tuner.optim import make

torch = pytest.importorskip("torch")

STEPS = 20


def quadratic(seed=0, n=6):
    """J(θ) = ½ θᵀQθ − bᵀθ with Q symmetric positive definite, and a start θ0."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, n))
    q = m @ m.T / n + np.eye(n)
    return q, rng.normal(size=n), rng.normal(size=n)


def run_tuner(name, hparams, q, b, theta0):
    params = theta0.copy()
    grad = np.zeros_like(params)

    def closure():
        np.subtract(q @ params, b, out=grad)
        return float(0.5 * params @ q @ params - b @ params)

    opt = make(name, **hparams)
    opt.start(params, STEPS)
    trajectory = []
    for _ in range(STEPS):
        opt.step(params, grad, closure)
        trajectory.append(params.copy())
    return np.array(trajectory)


def run_torch(make_optimizer, q, b, theta0, decay_to=None):
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    qt, bt = torch.tensor(q), torch.tensor(b)
    opt = make_optimizer([p])
    sched = None
    if decay_to is not None:
        sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=decay_to, total_iters=STEPS)
    trajectory = []
    for _ in range(STEPS):
        with torch.no_grad():
            p.grad = qt @ p - bt
        opt.step()
        if sched is not None:
            sched.step()
        trajectory.append(p.detach().numpy().copy())
    return np.array(trajectory)


CASES = [
    ("sgd", {"eps0": 0.1}, lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ("momentum", {"eps0": 0.05, "alpha": 0.9}, lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    ("adagrad", {"eps0": 0.3, "delta": 1e-7}, lambda ps: torch.optim.Adagrad(ps, lr=0.3, eps=1e-7)),
    (
        "adam",
        {"eps0": 0.05, "rho1": 0.8, "rho2": 0.99, "delta": 1e-8},
        lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-8),
    ),
]


@pytest.mark.parametrize(("name", "hparams", "reference"), CASES, ids=[c[0] for c in CASES])
def test_constant_rate_matches_torch(name, hparams, reference):
    q, b, theta0 = quadratic()
    ours = run_tuner(name, {**hparams, "eps_tau": hparams["eps0"]}, q, b, theta0)
    theirs = run_torch(reference, q, b, theta0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "hparams", "reference"), [CASES[0], CASES[3]], ids=["sgd", "adam"])
def test_linear_decay_matches_torch_linear_lr(name, hparams, reference):
    q, b, theta0 = quadratic(seed=1)
    ours = run_tuner(name, {**hparams, "eps_tau": 0.01 * hparams["eps0"], "tau": STEPS}, q, b, theta0)
    theirs = run_torch(reference, q, b, theta0, decay_to=0.01)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
