"""A fake trial runner: the search's bookkeeping without training a model.

:class:`FakeRunner` is a real :class:`~lossearch.runner.TrialRunner` on real prepared
data whose ``run`` makes up validation predictions instead of training: how good they
are depends on the loss config (deterministically, plus a little seed noise), each epoch
is reported to the driver (so pruners prune), and configs can be made to fail or diverge.
Scoring, decision rules, selection, Optuna studies and MLflow runs stay real.
"""

from __future__ import annotations

import zlib

import numpy as np

from lossearch.data import prepare_data
from lossearch.metrics import Objective, resolve_minority_classes
from lossearch.models import ModelFacts
from lossearch.runner import TrialDiverged, TrialPruned, TrialRunner
from lossearch.search_space import SearchSpace
from lossearch.session import build_session
from lossearch.settings import SearchSettings

COUNTS = (120, 40, 25)  # a small long tail (5 validation samples of the last class)


def _tiny_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(COUNTS)])
    x = rng.normal(size=(len(y), 4)).astype("float32") + y[:, None]
    return x, y


def quality(config) -> float:
    """How good a config's made-up predictions are, in [0, 1): fixed per config."""
    key = f"{config.family}|{config.weights}|{sorted(config.params.items())}"
    return (zlib.crc32(key.encode()) % 1000) / 1000


class FakeRunner(TrialRunner):
    """A trial runner that reports and scores made-up predictions instead of training.

    Args:
        fail: families whose trials raise (a bug in the user's code, say).
        diverge: families whose loss "becomes NaN".
    """

    def __init__(self, *, epochs=4, fail=(), diverge=(), objective="balanced_accuracy", cv=None):
        x, y = _tiny_data()
        facts = ModelFacts((None, len(COUNTS)), None)
        data = prepare_data((x, y), output_shape=facts.output_shape, activation=None, cv=cv, seed=0)
        super().__init__(
            lambda: None,
            data,
            Objective(objective),
            minority_classes=resolve_minority_classes(
                None, data.class_names, data.class_counts, data.task
            ),
            facts=facts,
            epochs=epochs,
        )
        self.fail, self.diverge = set(fail), set(diverge)
        self.calls: list[tuple] = []  # (family, seed, epochs) per run

    def predictions(self, config, seed, y_true) -> np.ndarray:
        """Probabilities that put ``quality(config)`` more mass on the true class."""
        rng = np.random.default_rng(None if seed is None else seed)
        logits = rng.normal(size=(len(y_true), len(COUNTS)))
        logits[np.arange(len(y_true)), y_true] += 4 * quality(config)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def run(
        self, config, hp=None, reporter=None, seed=None, keep_model=False, splits=None, epochs=None
    ):
        epochs = self.epochs if epochs is None else epochs
        self.calls.append((config.family, seed, epochs))
        if config.family in self.fail:
            raise RuntimeError(f"{config.family} is broken\n\n  (a traceback-like second line)")
        if config.family in self.diverge:
            raise TrialDiverged("loss became NaN/inf at epoch 1")
        y_true = self.data.validation_targets
        for fold in range(len(self.data.splits)):  # out-of-fold: the folds one after another
            for epoch in range(epochs):  # a learning curve rising to the config's quality
                value = quality(config) * (epoch + 1) / epochs + 0.01 * fold
                step = fold * epochs + epoch
                if reporter is not None and reporter.report(step, value, {"loss": 1.0 - value}):
                    raise TrialPruned(f"pruned after epoch {epoch + 1}")
        outcome = self.scored(y_true, self.predictions(config, seed, y_true))
        outcome.epochs_trained = epochs * len(self.data.splits)
        return outcome

    def refit(self, record, seed):
        return None


def fake_search(runner, tracking_uri, experiment, *, space="quick", **settings):
    """``optimize``'s session (:func:`lossearch.session.build_session`) on ``runner``;
    returns ``(result, driver)``."""
    fields = {"show_progress": False, "refit": False, "seed": 0, **settings}
    search_settings = SearchSettings(
        **fields, tracking_uri=tracking_uri, experiment_name=experiment
    )
    session = build_session(runner, SearchSpace.load(space, task=runner.data.task), search_settings)
    return session.run(), session.driver
