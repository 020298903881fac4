"""The trial runner, shared by every backend: one loss config in, one scored trial out.

It builds the user's model, compiles it with the trial's loss (keeping the
user's optimizer and metrics), trains it, reports the validation objective each
epoch (for pruning and live tracking), and scores the final predictions with
:func:`lossearch.metrics.evaluate`. Backends only decide *which* configs to run.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras
import numpy as np

from lossearch import _interrupt
from lossearch.callbacks import callbacks_for
from lossearch.config import LossConfig
from lossearch.data import PreparedData
from lossearch.decision import Decision, fit_decision
from lossearch.hyperparameters import (
    DefaultHyperParameters,
    FixedHyperParameters,
    HyperParameters,
)
from lossearch.metrics import Metrics, Objective, evaluate
from lossearch.models import ModelFacts, compile_with_loss, loss_facts, model_builder


class TrialPruned(Exception):
    """The backend's pruner stopped this trial early."""


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


class Reporter(Protocol):
    """Receives the validation objective after each epoch; returns True to prune."""

    def report(self, step: int, value: float, logs: dict[str, float]) -> bool: ...


@dataclass
class TrialOutcome:
    """A scored trial: ``y_prob`` the model's probabilities, ``y_score`` the same under
    the trial's tuned ``decision`` (what ``value`` and ``metrics`` are computed on)."""

    value: float
    metrics: Metrics
    y_prob: np.ndarray
    decision: Decision | None = None
    y_score: np.ndarray | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_trained: int = 0
    seconds: float = 0.0
    model: Any = None


def _probabilities(outputs: np.ndarray, task: str, from_logits: bool) -> np.ndarray:
    outputs = np.asarray(outputs, dtype=np.float64)
    if not from_logits:
        return outputs
    if task == "multiclass":
        shifted = outputs - outputs.max(-1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(-1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-outputs))


class _KerasState:
    """Keras keeps one global state per process (layer-name counters, TensorFlow's graph),
    and ``clear_session`` replaces it for every thread at once. Trials running in threads
    (``n_jobs > 1``) therefore build their models one at a time, and the session is
    cleared only while no other trial is training.

    A full garbage collection costs about a second with TensorFlow loaded (a third of a
    small trial), so a reset skips it and only every ``GC_EVERY``-th one collects.
    """

    GC_EVERY = 10

    def __init__(self):
        self.lock = threading.Lock()
        self.training = 0
        self.resets = itertools.count(1)

    @contextmanager
    def trial(self):
        """Held while a trial builds and trains its models."""
        with self.lock:
            self.training += 1
        try:
            yield
        finally:
            with self.lock:
                self.training -= 1

    @contextmanager
    def building(self, seed: int | None):
        """Held while a model is built and compiled: a fresh session when no other trial
        is training, then ``seed`` (Keras' seeds are global too)."""
        with self.lock:
            if self.training <= 1:
                keras.backend.clear_session(free_memory=next(self.resets) % self.GC_EVERY == 0)
            if seed is not None:
                keras.utils.set_random_seed(seed)
            yield


KERAS_STATE = _KerasState()


class _StopOnCtrlC(keras.callbacks.Callback):
    """A Ctrl-C that TensorFlow turned into another exception, or swallowed, still stops the
    fit at the next batch (:mod:`lossearch._interrupt`)."""

    def on_train_batch_end(self, batch, logs=None):
        _interrupt.raise_if_requested()


class _EpochObjective(keras.callbacks.Callback):
    """Scores the validation split after each epoch and reports it."""

    def __init__(self, runner: TrialRunner, x_val, y_true, reporter, step_offset, history):
        super().__init__()
        self.runner, self.x_val, self.y_true = runner, x_val, y_true
        self.reporter, self.step_offset, self.history = reporter, step_offset, history

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = float(logs.get("loss", float("nan")))
        self.history.setdefault("loss", []).append(loss)
        if not math.isfinite(loss):
            return  # TerminateOnNaN stops the fit; the runner records the divergence
        value, _ = self.runner.score(self.model, self.x_val, self.y_true)
        key = f"val_{self.runner.objective.name}"
        self.history.setdefault(key, []).append(value)
        logs[key] = value
        if self.reporter is not None and self.reporter.report(
            self.step_offset + epoch, value, {"loss": loss, key: value}
        ):
            self.model.stop_training = True
            raise TrialPruned(f"pruned after epoch {epoch + 1}")


class TrialRunner:
    """Runs one loss config against the user's model on the prepared data.

    Args:
        build_model: ``build_model()`` or ``build_model(hp)``, returning a Keras
            model, compiled (its optimizer and metrics are kept) or not (Adam 1e-3).
        data: from :func:`lossearch.data.prepare_data`.
        objective: what to maximise / minimise on the validation predictions.
        minority_classes: class indices for the minority metrics.
        facts: the model's output shape and activation (from :func:`probe_model`).
    """

    def __init__(
        self,
        build_model: Callable,
        data: PreparedData,
        objective: Objective,
        *,
        minority_classes: list[int],
        facts: ModelFacts,
        epochs: int = 20,
        batch_size: int = 32,
        fit_kwargs: dict | None = None,
        verbose: int = 0,
        decision: bool = True,
    ):
        self.build_model = build_model
        self.build = model_builder(build_model)
        self.tune_decision = decision
        self.data, self.objective = data, objective
        self.minority_classes = minority_classes
        self.facts = facts
        self.epochs, self.batch_size = epochs, batch_size
        self.fit_kwargs = dict(fit_kwargs or {})
        self.verbose = verbose

    def __getstate__(self) -> dict:
        # ``build`` is a lambda around ``build_model``; a child process rebuilds it
        return {k: v for k, v in self.__dict__.items() if k != "build"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.build = model_builder(self.build_model)

    def close(self) -> None:
        """Release what the runner holds (nothing in process; see ``ChildProcessRunner``)."""

    @property
    def from_logits(self) -> bool:
        return self.facts.from_logits

    @property
    def context(self) -> dict:
        return {
            "task": self.data.task,
            "class_names": self.data.class_names,
            "minority_classes": self.minority_classes,
        }

    def config_facts(self) -> dict:
        """The data fields every trial's :class:`LossConfig` carries."""
        return loss_facts(
            class_counts=self.data.class_counts,
            class_names=self.data.class_names,
            task=self.data.task,
            from_logits=self.facts.from_logits,
            n_samples=self.data.n_samples,
        )

    def refit_facts(self) -> dict:
        """The data facts a loss trained on all labelled data is told (the refit's, and a
        user's who trains the pick on their data): its class counts and, for multi-label,
        its sample count. Trials are told their training split's (:meth:`config_facts`).
        Empty for ``tf.data`` inputs, whose counts are the training set's already."""
        counts = self.data.all_counts
        if counts is None:
            return {}
        n_samples = len(self.data.train_val[1]) if self.data.task == "multilabel" else None
        return {"class_counts": list(counts), "n_samples": n_samples}  # as JSON keeps it

    def predict(self, model, x) -> np.ndarray:
        if isinstance(x, np.ndarray) and len(x) <= 4096:
            outputs = keras.ops.convert_to_numpy(model(x, training=False))
        else:
            outputs = model.predict(x, batch_size=max(self.batch_size, 256), verbose=0)
        probs = _probabilities(outputs, self.data.task, self.facts.from_logits)
        return probs.reshape(-1, probs.shape[-1])

    def fit_decision(self, y_true, y_prob) -> Decision | None:
        """The decision rule tuned on these validation predictions (None when off)."""
        if not self.tune_decision:
            return None
        return fit_decision(
            y_true,
            y_prob,
            task=self.data.task,
            class_counts=self.data.class_counts,
            metric=self.objective.name,
            threshold_rule=self.objective.threshold_rule,
        )

    def decided(self, y_true, y_prob) -> tuple[Decision | None, np.ndarray]:
        """``(decision, y_score)``: the tuned rule and the predictions under it."""
        decision = self.fit_decision(y_true, y_prob)
        return decision, (y_prob if decision is None else decision.apply(y_prob))

    def score(self, model, x_val, y_true) -> tuple[float, np.ndarray]:
        """The objective of ``model`` on the validation split, under its tuned decision."""
        y_prob = self.predict(model, x_val)
        _, y_score = self.decided(y_true, y_prob)
        return self.objective(y_true, y_score, **self.context), y_prob

    def compile(self, model: keras.Model, config: LossConfig) -> None:
        compile_with_loss(model, config.build())

    def run(
        self,
        config: LossConfig,
        hp: HyperParameters | None = None,
        reporter: Reporter | None = None,
        seed: int | None = None,
        keep_model: bool = False,
        splits=None,
        epochs: int | None = None,
    ) -> TrialOutcome:
        """Train and score ``config``; raises :class:`TrialPruned` or :class:`TrialDiverged`."""
        with KERAS_STATE.trial():
            return self._train_and_score(config, hp, reporter, seed, keep_model, splits, epochs)

    def _train_and_score(self, config, hp, reporter, seed, keep_model, splits, epochs):
        start = time.perf_counter()
        hp = hp if hp is not None else DefaultHyperParameters()
        history: dict[str, list[float]] = {}
        probs, epochs_trained, model = [], 0, None
        splits = self.data.splits if splits is None else splits
        epochs = self.epochs if epochs is None else epochs
        for index, split in enumerate(splits):
            with KERAS_STATE.building(None if seed is None else seed + index):
                model = self.build(hp)
                self.compile(model, config)
            callbacks = [
                keras.callbacks.TerminateOnNaN(),
                *callbacks_for(config),
                _EpochObjective(
                    self,
                    split.x_val,
                    self.data.targets(split.y_val),
                    reporter,
                    index * epochs,
                    history,
                ),
                *self.fit_kwargs.get("callbacks", []),
            ]
            y_train = None if self.data.datasets is not None else split.y_train
            fitted = self._fit(model, split.x_train, y_train, epochs, callbacks)
            losses = fitted.history.get("loss", [])
            epochs_trained += len(losses)
            bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
            if bad:
                raise TrialDiverged(f"loss became NaN/inf at epoch {bad[0] + 1}")
            y_prob = self.predict(model, split.x_val)
            if not np.all(np.isfinite(y_prob)):
                raise TrialDiverged("the model predicted NaN/inf")
            probs.append(y_prob)
        y_true = np.concatenate([self.data.targets(s.y_val) for s in splits])
        outcome = self.scored(y_true, np.concatenate(probs))  # out-of-fold with cv
        outcome.history, outcome.epochs_trained = history, epochs_trained
        outcome.seconds = time.perf_counter() - start
        outcome.model = model if keep_model else None
        return outcome

    def _fit(self, model, x, y, epochs: int, callbacks: list, verbose: int | None = None):
        """``model.fit`` with the user's extra arguments; a ``tf.data`` input (``y`` None)
        brings its own batching and shuffling.

        On TensorFlow, arrays get ``steps_per_epoch`` (the number of batches they make):
        without it Keras builds each epoch's input pipeline twice and discards one, about
        15 ms an epoch. The batches and their order are the same. (Not on PyTorch: there
        the discarded loader draws its shuffle from the global generator, and the order
        would change.)
        """
        kwargs = {k: v for k, v in self.fit_kwargs.items() if k != "callbacks"}
        if y is None:
            kwargs["shuffle"] = False
        else:
            kwargs.update(y=y, batch_size=self.batch_size)
            if keras.backend.backend() == "tensorflow":
                kwargs.setdefault("steps_per_epoch", math.ceil(len(y) / self.batch_size))
        verbose = self.verbose if verbose is None else verbose
        callbacks = [*callbacks, _StopOnCtrlC()]
        return model.fit(x, epochs=epochs, verbose=verbose, callbacks=callbacks, **kwargs)

    def refit(self, record, seed: int | None) -> keras.Model:
        """``record``'s config retrained on all labelled data (train + validation), told that
        data's class counts (:meth:`refit_facts`)."""
        config = dataclasses.replace(record.config, **self.refit_facts())
        with KERAS_STATE.building(seed):
            model = self.build(FixedHyperParameters(record.hp_values))
            self.compile(model, config)
        x, y = self.data.train_val
        callbacks = [keras.callbacks.TerminateOnNaN(), *callbacks_for(config)]
        self._fit(model, x, y, self.epochs, callbacks, verbose=0)
        return model

    def scored(self, y_true: np.ndarray, y_prob: np.ndarray) -> TrialOutcome:
        """The outcome of these validation predictions, under their tuned decision."""
        decision, y_score = self.decided(y_true, y_prob)
        metrics = evaluate(y_true, y_score, **self.context)
        value = self.objective(y_true, y_score, metrics, **self.context)
        if not math.isfinite(value):
            raise TrialDiverged(f"the objective {self.objective.name} is {value}")
        return TrialOutcome(value, metrics, y_prob, decision, y_score)
