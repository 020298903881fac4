"""Modules that moved, still importable by their old names.

``import lossearch.optuna`` (and ``from lossearch.keras_tuner import LossHyperModel``, ...)
keep working after the moves into :mod:`lossearch.integrations`, :mod:`lossearch.tracking`
and :mod:`lossearch.study`:
a finder gives the new module under the old name, the same object (its own name unchanged),
loaded only when asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "lossearch.optuna": "lossearch.integrations.optuna",
    "lossearch.keras_tuner": "lossearch.integrations.keras_tuner",
    "lossearch.mlflow_sync": "lossearch.tracking.sync",
    "lossearch.mlflow_model": "lossearch.tracking.model",
    "lossearch.storages": "lossearch.study.storages",
    "lossearch.records": "lossearch.study.state",
    "lossearch.stored": "lossearch.study.stored",
}


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        # the module itself: the import system fills in only what a module lacks, so its
        # __name__ and __spec__ stay the new ones
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        """Loaded already, under its new name."""


def install() -> None:
    if not any(isinstance(finder, _OldNames) for finder in sys.meta_path):
        sys.meta_path.append(_OldNames())
