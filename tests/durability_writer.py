"""A worker that writes lossearch-shaped trials to a storage until it is killed.

Run as ``python tests/durability_writer.py URL STUDY``: each trial stores a loss config and
metrics under lossearch's keys, and the trial's number is printed (flushed) once Optuna has
told the storage it is COMPLETE, so the test that kills this process knows which trials it
must find afterwards. The storages are opened as ``lossearch.storages.open_storage`` opens
them (the journal with its lock file); lossearch itself, and so TensorFlow, is not imported,
so that it starts in about a second.
"""

import sys

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalRedisBackend

METRICS = {"summary": {"balanced_accuracy": 0.5}, "per_class": {}, "confusion": [[30, 10]]}


def storage(url: str):
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme == "journal":
        path = url.split("://", 1)[1][1:]
        return JournalStorage(JournalFileBackend(path, JournalFileOpenLock(path)))
    if scheme == "redis":
        return JournalStorage(JournalRedisBackend(url))
    return RDBStorage(url)


def objective(trial: optuna.Trial) -> float:
    gamma = trial.suggest_float("focal.gamma", 0.5, 3.0)
    config = {"format": "lossearch.loss/1", "family": "focal", "params": {"gamma": gamma}}
    trial.set_user_attr("config", config)  # lossearch.records.CONFIG
    trial.set_user_attr("metrics", METRICS)  # lossearch.records.METRICS
    trial.set_user_attr("epoch_loss", [1.0 / (i + 1) for i in range(20)])
    return gamma / 3.0


def main(url: str, name: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=storage(url), study_name=name, load_if_exists=True)
    while True:
        trial = study.ask()
        value = objective(trial)
        study.tell(trial, value)
        print(trial.number, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
