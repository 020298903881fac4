"""The search's own arguments to ``optimize``, validated, in one object."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lossearch.tracking import mask_credentials

DEFAULT_STORAGE = "sqlite:///lossearch.db"  # where a named study goes without storage=


@dataclass(frozen=True)
class SearchSettings:
    """How to search: budget, training, selection, backend. Data-free and model-free."""

    n_trials: int = 30
    timeout: float | None = None
    epochs: int = 20
    batch_size: int = 32
    validation: float | None = None
    seed: int | None = None
    n_jobs: int = 1
    refit: bool = True
    log_model: bool = True  # the refit model as an MLflow model on the parent run
    registered_model_name: str | None = None
    show_progress: bool = True
    selection: str = "robust"
    confirm_seeds: int = 2
    decision: bool = True
    backend: str = "optuna"
    tuner: str = "hyperband"
    sampler: Any = None  # Optuna sampler, None for lossearch's TPE
    pruner: Any = None  # Optuna pruner, None for lossearch's median pruner
    callbacks: tuple = ()  # Optuna study callbacks, called after each trial
    storage: Any = None  # an opened Optuna storage (see lossearch.storages.open_storage)
    study_name: str | None = None

    storage_name: str | None = None  # the storage as text safe to log

    @property
    def resumable(self) -> bool:
        return self.storage is not None or self.backend == "keras_tuner"


def readable_study_name(space_name: str, taken: Iterable[str] = ()) -> str:
    """A name for a search the user did not name: its space, date and time
    (``quick-2026-12-01-071402``), with a counter when one like it exists already."""
    base = f"{space_name}-{time.strftime('%Y-%m-%d-%H%M%S')}"
    taken, name, count = set(taken), base, 1
    while name in taken:
        count += 1
        name = f"{base}-{count}"
    return name


def resolve_storage(storage: Any, study_name: str | None) -> Any:
    """A named study without a storage is kept in :data:`DEFAULT_STORAGE`."""
    return DEFAULT_STORAGE if storage is None and study_name is not None else storage


def storage_name(storage: Any) -> str | None:
    """A storage as text safe to log: its masked URL or its type."""
    if storage is None:
        return None
    return mask_credentials(storage) if isinstance(storage, str) else type(storage).__name__
