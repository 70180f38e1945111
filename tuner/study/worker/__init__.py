"""Workers: processes that run a study's trials until its total, on any number of machines.

    loop        Worker, run_worker: claim, train, record, until the total (the module docstring has the story)
    claim       claim_trial: the exact total, under the study lock
    heartbeat   the heartbeat thread of a running trial
    interrupt   TrainingInterrupt: a signal stops training at once, never a database write
    supervisor  Supervisor: J worker processes on one machine (`tuner worker --jobs J`)
"""

from tuner.study.worker.interrupt import TrainingInterrupt
from tuner.study.worker.loop import Progress, Worker, WorkerOptions, WorkerReport, run_worker

__all__ = ["Progress", "TrainingInterrupt", "Worker", "WorkerOptions", "WorkerReport", "run_worker"]
