"""The loss search inside your own Keras Tuner tuner.

Example:
    >>> import keras_tuner as kt                                              # doctest: +SKIP
    >>> from lossearch.integrations.keras_tuner import LossHyperModel, best_config
    >>> tuner = kt.Hyperband(
    ...     LossHyperModel(build_model, space="long_tail", class_counts=counts),
    ...     objective=kt.Objective("val_balanced_accuracy", "max"), max_epochs=20)
    >>> tuner.search(x, y, validation_data=(xv, yv))
    >>> best_config(tuner).to_json("best_loss.json")

The space's loss parameters become ``hp.Choice`` / ``hp.Float`` with
``conditional_scope`` for family- and scheme-specific ones, beside the
hyperparameters your ``build_model(hp)`` defines. The model is compiled with the
drawn loss and with the streaming metric of every registered objective that has one
(``balanced_accuracy``, ``macro_f1``, ``minority_recall``, ``worst_class_recall``,
``g_mean``), so the epoch logs carry ``val_balanced_accuracy`` and friends for the
tuner's objective.
Deferred re-weighting callbacks reach ``fit`` through :meth:`LossHyperModel.fit`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import keras
import keras_tuner as kt

from lossearch._validation import Interval, Options, validate_params
from lossearch.callbacks import callbacks_for
from lossearch.config import LossConfig
from lossearch.metrics import OBJECTIVES, default_minority_classes
from lossearch.models import TASKS, compile_with_loss, loss_facts, model_builder, probe_model
from lossearch.search_space import SearchSpace
from lossearch.weights import check_counts

_NATIVE = (str, int, float, bool)


def _needs_encoding(choices: Sequence[Any]) -> bool:
    """Keras Tuner's ``Choice`` takes one plain type; others travel as JSON strings."""
    types = {type(c) for c in choices}
    return len(types) != 1 or next(iter(types)) not in _NATIVE


def encode_choice(choices: Sequence[Any], value: Any) -> Any:
    return json.dumps(value) if _needs_encoding(choices) else value


def decode_choice(choices: Sequence[Any], raw: Any) -> Any:
    return json.loads(raw) if _needs_encoding(choices) else raw


class KerasTunerSource:
    """:class:`lossearch.search_space.ParamSource` over Keras Tuner's ``hp``."""

    def __init__(self, hp: kt.HyperParameters):
        self.hp = hp

    def float(self, name, low, high, *, log, step, default):
        return self.hp.Float(name, low, high, step=step, sampling="log" if log else "linear")

    def int(self, name, low, high, *, log, step, default):
        return self.hp.Int(name, low, high, step=step, sampling="log" if log else "linear")

    def categorical(self, name, choices, *, default):
        values = [encode_choice(choices, c) for c in choices]
        return decode_choice(choices, self.hp.Choice(name, values))

    def scope(self, parent, values):
        return self.hp.conditional_scope(parent, list(values))


class LossHyperModel(kt.HyperModel):
    """A ``keras_tuner.HyperModel`` that tunes the loss together with your model.

    Args:
        build_model: ``build_model()`` or ``build_model(hp)`` (Keras Tuner's ``hp``),
            returning a Keras model, compiled (optimizer and metrics kept) or not.
        space: a bundled name, a YAML path, a dict or a :class:`SearchSpace`.
        class_counts: training samples per class (binary: ``[n_neg, n_pos]``;
            multi-label: positives per label).
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``; inferred from the
            model's output when omitted.
        class_names: optional, for reports.
        minority_classes: for ``minority_recall`` (default: below-median classes).
        n_samples: training samples in all; needed for multi-label, where the counts are
            positives per label and do not add up to it.
    """

    @validate_params({"task": [None, Options(TASKS)], "n_samples": [None, Interval(int, 1, None)]})
    def __init__(
        self,
        build_model: Callable,
        space="default",
        class_counts: Sequence[int] | None = None,
        task: str | None = None,
        class_names: Sequence[str] | None = None,
        minority_classes: Sequence[int] | None = None,
        name: str | None = None,
        tunable: bool = True,
        n_samples: int | None = None,
    ):
        super().__init__(name=name, tunable=tunable)
        if class_counts is None:
            raise ValueError("class_counts: LossHyperModel needs the training count of each class.")
        self._user_build = model_builder(build_model)
        facts = probe_model(lambda hp: self._user_build(kt.HyperParameters()))
        self.task = task or facts.task
        expected = 2 if self.task == "binary" else facts.width
        counts = check_counts(class_counts, class_names).tolist()
        if len(counts) != expected:
            raise ValueError(
                f"class_counts: {len(counts)} counts for a {self.task} model with "
                f"{facts.width} output(s); expected {expected}."
            )
        if self.task == "multilabel" and n_samples is None:
            raise ValueError(
                "n_samples: a multi-label LossHyperModel needs the number of training samples "
                "(class_counts are positives per label)."
            )
        self.from_logits = facts.from_logits
        self.facts = loss_facts(
            class_counts=counts,
            class_names=class_names,
            task=self.task,
            from_logits=facts.from_logits,
            n_samples=n_samples,
        )
        self.minority_classes = list(
            minority_classes or default_minority_classes(counts, self.task)
        )
        self.space = SearchSpace.load(space, task=self.task)

    @property
    def class_counts(self) -> list[int]:
        return self.facts["class_counts"]

    @classmethod
    def for_runner(cls, runner, space: SearchSpace) -> LossHyperModel:
        """The hypermodel ``optimize(backend="keras_tuner")`` declares its space with; its
        loss facts are the runner's (both come from :func:`lossearch.models.loss_facts`)."""
        return cls(
            runner.build,
            space=space,
            class_counts=runner.data.class_counts,
            task=runner.data.task,
            class_names=runner.data.class_names,
            minority_classes=runner.minority_classes,
            n_samples=runner.data.n_samples,
        )

    def config_for(self, hp: kt.HyperParameters) -> LossConfig:
        """The loss config that ``hp``'s values describe."""
        return self.space.sample(KerasTunerSource(hp), **self.facts)

    def _metrics(self):
        """Every registered objective with a streaming metric, so that the epoch logs
        carry ``val_<name>`` for the tuner's objective."""
        if self.task == "multilabel":
            return []  # the confusion-matrix metrics are single-label
        metrics = (
            o.streaming_metric(len(self.class_counts), self.minority_classes, self.from_logits)
            for o in OBJECTIVES.values()
        )
        return [m for m in metrics if m is not None]

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        model = self._user_build(hp)
        compile_with_loss(model, self.config_for(hp).build(), self._metrics())
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        callbacks = [*(callbacks or []), *callbacks_for(self.config_for(hp))]
        return model.fit(*args, callbacks=callbacks, **kwargs)


def best_config(tuner: kt.engine.base_tuner.BaseTuner) -> LossConfig:
    """The loss config of ``tuner``'s best trial (its hypermodel is a LossHyperModel)."""
    if not isinstance(tuner.hypermodel, LossHyperModel):
        raise ValueError("tuner: its hypermodel is not a lossearch LossHyperModel.")
    best = tuner.get_best_hyperparameters(1)
    if not best:
        raise ValueError("tuner: no completed trial yet.")
    return tuner.hypermodel.config_for(best[0])
