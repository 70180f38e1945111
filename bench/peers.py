"""The peers of `tuner run` in `end_to_end.py`: the same study written as a user of plain Optuna writes it.

    python bench/peers.py torch PLAN.json STORAGE_URL     # one study, this process; prints a JSON line

A plan (`end_to_end.peer_plan`, from the spec as tuner parses it) holds the study's name, seed, trial
count, sampler and pruner settings, the data source and split, the network, the epochs and batch size, and
the search space. Each peer builds `optuna.create_study` on its own `RDBStorage(url)` (Optuna's defaults:
no heartbeat) with the spec's sampler (TPE, multivariate, grouped, constant liar, the spec's startup
trials, the study's seed) and pruner (median, the spec's startup trials and warm-up epochs), loads the data
with tuner's own loader (`tuner.nn.data.load_dataset`, the split and standardisation every tuner worker
uses), and reports the validation accuracy after every epoch for pruning; a trial's value is its best
epoch's accuracy, as tuner's. A run whose loss stops being finite ends PRUNED, as in tuner.

- `torch`: `nn.Sequential` of `Linear` + `ReLU`, He-normal weights (std √(2/fan_in)) times the trial's
  per-layer `init_scale_i`, zero biases; `torch.optim` SGD (plain, momentum, nesterov), Adagrad, RMSprop
  (`alpha` = the spec's ρ) and Adam (`betas` = (ρ1, ρ2)) with their default eps; the spec's linear decay
  to `eps_tau_ratio`·ε0 over the run (`LinearLR`, stepped per minibatch); gradient clipping by global norm
  when the spec sets `clip_norm`. RMSProp with Nesterov momentum has no `torch.optim` counterpart and is
  left out of the choice. One thread (`torch.set_num_threads(1)`).
- `sklearn`: `MLPClassifier` (relu, `alpha=0`, the spec's batch size), one `partial_fit` per epoch; solver
  `sgd` for sgd (momentum 0), momentum (`nesterovs_momentum=False`) and nesterov, `adam` with
  `beta_1`/`beta_2`; the others are left out. scikit-learn offers no linear decay to a floor, no init-scale
  multiplier (its Glorot-uniform init is fixed) and no gradient clipping through its public API, so this
  peer runs a constant rate, its own init and no clipping.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings

_started = time.perf_counter()

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from machine import blas_summary  # noqa: E402

from tuner.nn.data import Dataset, load_dataset  # noqa: E402

TORCH_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
SKLEARN_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
# The spec's hyperparameters each optimizer takes (tuner.optim.HYPERPARAMETERS, without δ: never searched).
TAKES = {"momentum": ("alpha",), "nesterov": ("alpha",), "rmsprop": ("rho",), "adam": ("rho1", "rho2")}


def suggest(trial: optuna.Trial, space: dict, name: str) -> float:
    """A value of the search space: a fixed number as is, a {low, high, log} range suggested."""
    value = space[name]
    if isinstance(value, dict):
        return trial.suggest_float(name, value["low"], value["high"], log=value.get("log", False))
    return float(value)


def suggest_trial(trial: optuna.Trial, plan: dict, optimizers: tuple[str, ...]) -> dict:
    """The trial's optimizer, eps0, the optimizer's own values and the per-layer init scales (tuner's names)."""
    space = plan["search"]
    choice = [o for o in space["optimizer"] if o in optimizers]
    values = {"optimizer": trial.suggest_categorical("optimizer", choice) if len(choice) > 1 else choice[0]}
    values["eps0"] = suggest(trial, space, "eps0")
    for name in TAKES.get(values["optimizer"], ()):
        values[name] = suggest(trial, space, name)
    n_layers = len(plan["hidden"]) + 1
    if space["init_scale_shared"]:
        values["init_scales"] = [suggest(trial, space, "init_scale")] * n_layers
    else:
        per_layer = {f"init_scale_{i}": space["init_scale"] for i in range(n_layers)}
        values["init_scales"] = [suggest(trial, per_layer, f"init_scale_{i}") for i in range(n_layers)]
    return values


def trial_seed(study_seed: int, number: int) -> int:
    """A trial's training seed from (study seed, trial number), as tuner derives it."""
    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])


def load_data(plan: dict) -> Dataset:
    data = plan["data"]
    return load_dataset(data["source"], seed=plan["seed"], val_fraction=data["val_fraction"],
                        standardize=data["standardize"], dtype=np.float32)


def torch_objective(plan: dict, data: Dataset):  # noqa: ANN201 - optuna objective
    import torch

    torch.set_num_threads(1)
    x, y = torch.from_numpy(np.array(data.x_train)), torch.from_numpy(np.array(data.y_train))
    x_val, y_val = torch.from_numpy(np.array(data.x_val)), torch.from_numpy(np.array(data.y_val))
    sizes = [data.n_features, *plan["hidden"], data.n_outputs]
    epochs, batch, n = plan["epochs"], plan["batch_size"], len(x)
    steps = math.ceil(n / batch)
    criterion = torch.nn.CrossEntropyLoss()

    def make_optimizer(values: dict, params) -> torch.optim.Optimizer:  # noqa: ANN001
        name, lr = values["optimizer"], values["eps0"]
        if name in ("sgd", "momentum", "nesterov"):
            momentum = values.get("alpha", 0.0)
            return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=name == "nesterov")
        if name == "adagrad":
            return torch.optim.Adagrad(params, lr=lr)
        if name == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, alpha=values["rho"])
        return torch.optim.Adam(params, lr=lr, betas=(values["rho1"], values["rho2"]))

    def objective(trial: optuna.Trial) -> float:
        values = suggest_trial(trial, plan, TORCH_OPTIMIZERS)
        seed = trial_seed(plan["seed"], trial.number)
        torch.manual_seed(seed)
        layers: list = []
        for m, k in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [torch.nn.Linear(m, k), torch.nn.ReLU()]
        net = torch.nn.Sequential(*layers[:-1])
        with torch.no_grad():
            for linear, scale in zip(net[::2], values["init_scales"], strict=True):
                linear.weight.normal_(0.0, scale * math.sqrt(2.0 / linear.in_features))
                linear.bias.zero_()
        optimizer = make_optimizer(values, net.parameters())
        tau = max(1, round(plan["tau_fraction"] * epochs * steps))
        schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, plan["eps_tau_ratio"], total_iters=tau)
        best = -math.inf
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n)
            for b in range(steps):
                rows = order[b * batch : (b + 1) * batch]
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(net(x[rows]), y[rows])
                loss.backward()
                if plan["clip_norm"] is not None:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), plan["clip_norm"])
                optimizer.step()
                schedule.step()
                if not math.isfinite(loss.item()):
                    raise optuna.TrialPruned(f"loss {loss.item()} at epoch {epoch}")
            with torch.no_grad():
                accuracy = (net(x_val).argmax(dim=1) == y_val).float().mean().item()
            best = max(best, accuracy)
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
        return best

    return objective


def sklearn_objective(plan: dict, data: Dataset):  # noqa: ANN201 - optuna objective
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    classes = np.arange(data.n_outputs)
    x, y, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val

    def objective(trial: optuna.Trial) -> float:
        values = suggest_trial(trial, plan, SKLEARN_OPTIMIZERS)
        name = values["optimizer"]
        adam = name == "adam"
        clf = MLPClassifier(
            hidden_layer_sizes=tuple(plan["hidden"]), activation="relu", alpha=0.0,
            solver="adam" if adam else "sgd", batch_size=plan["batch_size"], learning_rate="constant",
            learning_rate_init=values["eps0"], momentum=values.get("alpha", 0.0),
            nesterovs_momentum=name == "nesterov", beta_1=values.get("rho1", 0.9),
            beta_2=values.get("rho2", 0.999), shuffle=True, random_state=trial_seed(plan["seed"], trial.number),
        )
        best = -math.inf
        for epoch in range(1, plan["epochs"] + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to a diverged run
                try:
                    clf.partial_fit(x, y, classes=classes)
                except ValueError as error:  # "Solver produced non-finite parameter weights"
                    raise optuna.TrialPruned(f"diverged at epoch {epoch}: {error}") from error
            if not math.isfinite(clf.loss_):
                raise optuna.TrialPruned(f"loss {clf.loss_} at epoch {epoch}")
            accuracy = float(clf.score(x_val, y_val))
            best = max(best, accuracy)
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")
        return best

    return objective


OBJECTIVES = {"torch": torch_objective, "sklearn": sklearn_objective}


def run(peer: str, plan: dict, url: str) -> dict:
    """One study of `plan` with `peer`'s objective on a fresh `RDBStorage(url)`; timings of its phases."""
    imported = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(plan)
    objective = OBJECTIVES[peer](plan, data)
    loaded = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # `group` is experimental
        sampler = optuna.samplers.TPESampler(
            seed=plan["seed"], multivariate=True, group=True, constant_liar=True,
            n_startup_trials=plan["sampler_startup_trials"],
        )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=plan["pruner_startup_trials"],
                                         n_warmup_steps=plan["warmup_epochs"])
    study = optuna.create_study(study_name=plan["name"], storage=optuna.storages.RDBStorage(url),
                                direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=plan["n_trials"])
    return {"import_s": imported - _started, "setup_s": loaded - imported, "blas": blas_summary(),
            "best": study.best_value}


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        print(json.dumps(run(sys.argv[1], json.load(f), sys.argv[3])))
