"""An equal share of the trials for every optimizer: decided under the claim lock, exact with several
worker processes, each optimizer sampled in its own name space."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import optuna
from optuna.trial import TrialState

from tuner.storage import ensure_schema, make_engine, optuna_storage
from tuner.study.create import create_study
from tuner.study.share import SHARE_ATTR, least_used, optimizer_counts, queue_least_used
from tuner.study.spec import parse_spec
from tuner.study.worker.claim import claim_trial

OPTIMIZERS = ("sgd", "momentum", "adam")


def new_study(url: str) -> tuple[optuna.Study, object]:
    engine = make_engine(url)
    ensure_schema(engine, create_if_empty=True)
    study = optuna.create_study(study_name="share", storage=optuna_storage(url), direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    return study, engine


def test_least_used_breaks_ties_in_the_listed_order():
    assert least_used({"sgd": 2, "momentum": 1, "adam": 1}) == "momentum"
    assert least_used({"sgd": 0, "momentum": 0, "adam": 0}) == "sgd"


def test_claims_go_round_the_optimizers_and_a_failure_is_replaced(sqlite_url):
    study, engine = new_study(sqlite_url)

    def claim() -> optuna.Trial:
        return claim_trial(study, engine, 10, 60, before_ask=lambda s: queue_least_used(s, OPTIMIZERS)).trial

    trials = [claim() for _ in range(4)]
    assert [t.user_attrs[SHARE_ATTR] for t in trials] == ["sgd", "momentum", "adam", "sgd"]
    study.tell(trials[1], state=TrialState.FAIL)  # a failed trial does not count: momentum is short again
    assert optimizer_counts(study, OPTIMIZERS) == {"sgd": 2, "momentum": 0, "adam": 1}
    assert claim().user_attrs[SHARE_ATTR] == "momentum"


def test_a_waiting_trial_is_taken_before_anything_is_queued(sqlite_url):
    study, engine = new_study(sqlite_url)
    study.enqueue_trial({"x": 0.5}, user_attrs={SHARE_ATTR: "adam"})  # a retried copy, or a warm start
    assert queue_least_used(study, OPTIMIZERS) is None
    trial = claim_trial(study, engine, 10, 60, before_ask=lambda s: queue_least_used(s, OPTIMIZERS)).trial
    assert trial.user_attrs[SHARE_ATTR] == "adam" and len(study.get_trials()) == 1


SPEC = """
[study]
name = "equal"
n_trials = {n_trials}
seed = 1
pruner = "none"
optimizer_share = "equal"
[data]
source = "digits"
[model]
hidden = [16]
[train]
epochs = 1
batch_size = 128
[search]
optimizer = ["sgd", "momentum", "adam"]
eps0 = "auto"
alpha = {{ low = 0.5, high = 0.99 }}
init_scale = "auto"
"""


def start_worker(url: str) -> subprocess.Popen:
    env = dict(os.environ, TUNER_STORAGE=url, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "tuner", "worker", "equal", "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_worker_processes_give_every_optimizer_its_share(sqlite_url):
    n_trials = 11  # 3 optimizers: floor 3, ceil 4
    create_study(sqlite_url, parse_spec(SPEC.format(n_trials=n_trials)))
    workers = [start_worker(sqlite_url) for _ in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    trials = optuna.load_study(study_name="equal", storage=sqlite_url).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == n_trials
    shares = Counter(t.user_attrs[SHARE_ATTR] for t in finished)
    assert set(shares) == set(OPTIMIZERS)
    assert all(n_trials // 3 <= n <= -(-n_trials // 3) for n in shares.values()), shares  # floor or ceil of N/k
    for t in finished:
        name = t.user_attrs[SHARE_ATTR]
        assert t.user_attrs["config"]["optimizer"] == name
        assert t.params and all(p.startswith(f"{name}.") for p in t.params)  # its own name space
        assert t.user_attrs["config"]["eps0"] > 0 and "init_scale_0" in t.user_attrs["config"]
    warm = [t for t in trials[:3] if t.user_attrs.get("warm_start") == "probe"]
    assert [t.user_attrs[SHARE_ATTR] for t in warm] == list(OPTIMIZERS)  # every optimizer starts from its probe
