"""Workers: processes that run a study's trials until its total, on any number of machines.

    loop        Worker, run_worker: claim, train, record, until the total (the module docstring has the story)
    options     WorkerOptions, Progress, WorkerReport
    claim       claim_trial: the exact total, under the study lock
    trial       run_trial: one claimed trial trained and told, whatever happens to it
    threads     the worker's share of the host's cores for BLAS
    heartbeat   the heartbeat thread of a running trial
    interrupt   TrainingInterrupt: a signal stops training at once, never a database write
    supervisor  Supervisor: J worker processes on one machine (`tuner worker --jobs J`)
"""

from tuner.study.worker.interrupt import TrainingInterrupt
from tuner.study.worker.loop import Worker, run_worker
from tuner.study.worker.options import Progress, WorkerOptions, WorkerReport

__all__ = ["Progress", "TrainingInterrupt", "Worker", "WorkerOptions", "WorkerReport", "run_worker"]
