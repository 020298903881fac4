"""The loss search inside your own Keras Tuner tuner.

Example:
    >>> import keras_tuner as kt                                              # doctest: +SKIP
    >>> from lossearch.keras_tuner import LossHyperModel, best_config
    >>> tuner = kt.Hyperband(
    ...     LossHyperModel(build_model, space="long_tail", class_counts=counts),
    ...     objective=kt.Objective("val_balanced_accuracy", "max"), max_epochs=20)
    >>> tuner.search(x, y, validation_data=(xv, yv))
    >>> best_config(tuner).to_json("best_loss.json")

The space's loss parameters become ``hp.Choice`` / ``hp.Float`` with
``conditional_scope`` for family- and scheme-specific ones, beside the
hyperparameters your ``build_model(hp)`` defines. The model is compiled with the
drawn loss and with streaming minority metrics (``balanced_accuracy``,
``macro_f1``, ``minority_recall``, ``worst_class_recall``, ``g_mean``), so the
epoch logs carry ``val_balanced_accuracy`` and friends for the tuner's objective.
Deferred re-weighting callbacks reach ``fit`` through :meth:`LossHyperModel.fit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import keras_tuner as kt

from lossearch.backends.keras_tuner import KerasTunerSource
from lossearch.callbacks import callbacks_for
from lossearch.config import LossConfig
from lossearch.metrics import default_minority_classes
from lossearch.metrics.streaming import (
    BalancedAccuracy,
    GMean,
    MacroF1,
    MinorityRecall,
    WorstClassRecall,
)
from lossearch.runner import model_builder, probe_model
from lossearch.search_space import SearchSpace
from lossearch.weights import check_counts


class LossHyperModel(kt.HyperModel):
    """A ``keras_tuner.HyperModel`` that tunes the loss together with your model.

    Args:
        build_model: ``build_model()`` or ``build_model(hp)`` (Keras Tuner's ``hp``),
            returning a Keras model, compiled (optimizer and metrics kept) or not.
        space: a bundled name, a YAML path, a dict or a :class:`SearchSpace`.
        class_counts: training samples per class (binary: ``[n_neg, n_pos]``).
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``; inferred from the
            model's output when omitted.
        class_names: optional, for reports.
        minority_classes: for ``minority_recall`` (default: below-median classes).
    """

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
    ):
        super().__init__(name=name, tunable=tunable)
        if class_counts is None:
            raise ValueError("class_counts: LossHyperModel needs the training count of each class.")
        self.class_counts = check_counts(class_counts, class_names).tolist()
        self._user_build = model_builder(build_model)
        facts = probe_model(lambda hp: self._user_build(kt.HyperParameters()))
        self.from_logits = facts.from_logits
        width = facts.output_shape[-1]
        self.task = task or (
            "binary"
            if width == 1
            else "multilabel"
            if facts.activation == "sigmoid"
            else "multiclass"
        )
        expected = 2 if self.task == "binary" else width
        if len(self.class_counts) != expected:
            raise ValueError(
                f"class_counts: {len(self.class_counts)} counts for a {self.task} model with "
                f"{width} output(s); expected {expected}."
            )
        self.class_names = list(class_names) if class_names is not None else None
        self.minority_classes = list(
            minority_classes or default_minority_classes(self.class_counts, self.task)
        )
        self.space = SearchSpace.load(space, task=self.task)

    @classmethod
    def for_runner(cls, runner, space: SearchSpace) -> LossHyperModel:
        """The hypermodel ``optimize(backend="keras_tuner")`` declares its space with."""
        data = runner.data
        return cls(
            runner.build,
            space=space,
            class_counts=data.class_counts,
            task=data.task,
            class_names=data.class_names,
            minority_classes=runner.minority_classes,
        )

    def config_for(self, hp: kt.HyperParameters) -> LossConfig:
        """The loss config that ``hp``'s values describe."""
        return self.space.sample(
            KerasTunerSource(hp),
            class_counts=self.class_counts,
            class_names=self.class_names,
            task=self.task,
            from_logits=self.from_logits,
            n_samples=sum(self.class_counts) if self.task == "multilabel" else None,
        )

    def _metrics(self):
        if self.task == "multilabel":
            return []  # the confusion-matrix metrics are single-label
        classes = len(self.class_counts)
        threshold = 0.0 if self.from_logits else 0.5
        return [
            BalancedAccuracy(classes, threshold),
            MacroF1(classes, threshold),
            MinorityRecall(classes, self.minority_classes, threshold),
            WorstClassRecall(classes, threshold),
            GMean(classes, threshold),
        ]

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        config = self.config_for(hp)
        model = self._user_build(hp)
        previous = getattr(model, "_compile_config", None)
        kwargs = dict(previous.config) if getattr(model, "compiled", False) and previous else {}
        metrics = list(kwargs.get("metrics") or []) + self._metrics()
        kwargs.update(
            optimizer=model.optimizer if kwargs else keras.optimizers.Adam(1e-3),
            loss=config.build(),
            metrics=metrics,
        )
        model.compile(**kwargs)
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
