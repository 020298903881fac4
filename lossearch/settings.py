"""The search's own arguments to ``optimize``, validated, in one object."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lossearch._secrets import mask_credentials
from lossearch.capabilities import refuse_unsupported

DEFAULT_STORAGE = "sqlite:///lossearch.db"  # where a named study goes without storage=


@dataclass(frozen=True)
class SearchSettings:
    """How to search: budget, selection, backend, storage and tracking. Data-free and
    model-free (how each trial trains is the trial runner's: epochs, batch size, decision
    rule). :func:`lossearch.session.build_session` opens ``storage``."""

    n_trials: int = 30
    timeout: float | None = None
    seed: int | None = None
    n_jobs: int = 1
    refit: bool = True
    log_model: bool = True  # the refit model as an MLflow model on the parent run
    registered_model_name: str | None = None
    show_progress: bool = True
    selection: str = "robust"
    confirm_seeds: int = 2
    backend: str = "optuna"
    tuner: str = "hyperband"
    sampler: Any = None  # Optuna sampler, None for lossearch's TPE
    pruner: Any = None  # Optuna pruner, None for successive halving
    callbacks: tuple = ()  # Optuna study callbacks, called after each trial
    early_stop: Any = True  # True, False or a lossearch.stopping.BaseStopper
    storage: Any = None  # as given: a URL or an Optuna storage (opened by the session)
    study_name: str | None = None
    tracking_uri: str | None = None  # MLflow's; None: MLflow's default
    experiment_name: str = "lossearch"

    def __post_init__(self):
        _check_combinations(self)


def readable_study_name(space_name: str, taken: Iterable[str] = ()) -> str:
    """A name for a search the user did not name: its space, date and time
    (``quick-2026-12-01-071402``), with a counter when one like it exists already. Only
    letters, digits, ``-``, ``_`` and inner dots of the space's name are kept: the name may
    become a folder (a Keras Tuner project), which must stay inside its parent."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", space_name).lstrip(".") or "search"
    base = f"{safe}-{time.strftime('%Y-%m-%d-%H%M%S')}"
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


def _check_combinations(s: SearchSettings) -> None:
    """Settings valid alone but not together: refused before the model is even probed."""
    refuse_unsupported(
        s.backend,
        {
            "timeout": s.timeout is not None,
            "threads": s.n_jobs != 1,
            "stopper": not isinstance(s.early_stop, bool),
            "sampler": s.sampler is not None,
            "pruner": s.pruner is not None,
            "storage": s.storage is not None,
            "callbacks": bool(s.callbacks),
        },
    )
    name = s.study_name
    if s.backend == "keras_tuner" and name is not None and not plain_name(name):
        raise ValueError(
            f"study_name: {name!r} names the Keras Tuner project's folder; use a plain name "
            "(no '/', '\\', '..' or leading '.')."
        )
    if s.registered_model_name is not None and not (s.refit and s.log_model):
        raise ValueError(
            "registered_model_name: registers the refit model logged to MLflow; it needs "
            "refit=True and log_model=True."
        )


def plain_name(name: str) -> bool:
    """A name that stays one folder inside its parent: no separators, no ``..``."""
    return not (set(name) & {"/", "\\", "\0"}) and not name.startswith(".")
