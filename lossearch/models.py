"""The user's model: how it is called, what it outputs, how a trial's loss is compiled in.

One owner for these facts, shared by the trial runner (both backends) and
:class:`lossearch.integrations.keras_tuner.LossHyperModel`, so the two can never disagree on the
task, on what a loss config is told about the data, or on what ``compile`` keeps.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import keras
import numpy as np

from lossearch import _compat
from lossearch.hyperparameters import DefaultHyperParameters, HyperParameters

TASKS = ("multiclass", "binary", "multilabel")


def model_builder(build_model: Callable) -> Callable[[HyperParameters], keras.Model]:
    """``build_model()`` or ``build_model(hp)`` as a function of ``hp``."""
    if not callable(build_model):
        raise ValueError(f"build_model: expected a callable, got {type(build_model).__name__}.")
    try:
        params = inspect.signature(build_model).parameters.values()
    except (TypeError, ValueError):  # builtins, C callables
        return lambda hp: build_model(hp)
    required = [
        p
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) > 1:
        raise ValueError("build_model: expected build_model() or build_model(hp).")
    takes_hp = bool(required) or any(p.kind is p.VAR_POSITIONAL for p in params)
    return (lambda hp: build_model(hp)) if takes_hp else (lambda hp: build_model())


def _activation_name(layer) -> str | None:
    if isinstance(layer, keras.Model) and layer.layers:  # a nested model ends the outer one
        return _activation_name(layer.layers[-1])
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    return name if name in ("softmax", "sigmoid") else None


@dataclass(frozen=True)
class MLP:
    """A ``build_model`` for a small MLP: ``n_features`` in, one hidden layer of ``hidden``
    ReLU units, ``n_outputs`` logits out. The command line's model when none is named (and
    the demo's); a picklable object, so ``recycle_every`` can send it to a child process.

    Example:
        >>> result = lossearch.optimize(MLP(30, 1), (x, y))  # doctest: +SKIP
    """

    n_features: int
    n_outputs: int
    hidden: int = 64

    def __call__(self) -> keras.Model:
        return keras.Sequential(
            [
                keras.Input((self.n_features,)),
                keras.layers.Dense(self.hidden, activation="relu"),
                keras.layers.Dense(self.n_outputs),
            ]
        )

    @classmethod
    def for_data(cls, x, y) -> MLP:
        """Sized to ``(x, y)``: one output for two classes (binary), else one per class."""
        classes = len(np.unique(np.asarray(y)))
        return cls(int(np.prod(np.shape(x)[1:])), 1 if classes == 2 else classes)


@dataclass(frozen=True)
class ModelFacts:
    """The model's output shape and final activation, learnt by :func:`probe_model`."""

    output_shape: tuple
    activation: str | None  # "softmax" / "sigmoid" when the model outputs probabilities
    input_shape: tuple | None = None  # of a single-input model, batch dimension included

    @property
    def from_logits(self) -> bool:
        return self.activation is None

    @property
    def width(self) -> int:
        return int(self.output_shape[-1])

    @property
    def task(self) -> str:
        """The task the output implies: one unit is binary, sigmoid units multi-label.

        Labels can say more (one-hot rows on a sigmoid output are still multi-label
        targets); :func:`lossearch.data.prepare_data` decides from both.
        """
        if self.width == 1:
            return "binary"
        return "multilabel" if self.activation == "sigmoid" else "multiclass"


def probe_model(build: Callable[[HyperParameters], keras.Model]) -> ModelFacts:
    """Build once with default hyperparameters to learn the output shape and activation.

    Raises:
        ValueError: naming ``build_model`` when it fails or returns no single-output model.
    """
    try:
        model = build(DefaultHyperParameters())
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"build_model: raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise ValueError(f"build_model: must return a keras.Model, got {type(model).__name__}.")
    if len(model.outputs or []) != 1:
        raise ValueError("build_model: the model must have exactly one output.")
    inputs = model.inputs or []
    facts = ModelFacts(
        tuple(model.outputs[0].shape),
        _activation_name(model.layers[-1]),
        tuple(inputs[0].shape) if len(inputs) == 1 else None,
    )
    if facts.activation is None:
        facts = replace(facts, activation=_activation_from_outputs(model, facts))
    _check_fresh(model, build)
    keras.backend.clear_session()
    return facts


def _check_fresh(model: keras.Model, build: Callable) -> None:
    """Every trial trains a model of its own: a builder that hands back the same model, or
    layers it keeps between calls, would have each trial train on from the last one's
    weights, silently."""
    try:
        again = build(DefaultHyperParameters())
    except Exception as exc:
        raise ValueError(
            f"build_model: worked once, then raised {type(exc).__name__}: {exc}; every trial "
            "calls it again."
        ) from exc
    if not isinstance(again, keras.Model):
        raise ValueError(
            f"build_model: must return a keras.Model, got {type(again).__name__} on a second call."
        )
    shared = {id(layer) for layer in model.layers} & {id(layer) for layer in again.layers}
    if again is model or shared:
        raise ValueError(
            "build_model: returned the same model (or layers) on a second call; every trial "
            "needs a fresh model, or it trains on from the last one's weights. Create the "
            "layers inside build_model."
        )


def _activation_from_outputs(model: keras.Model, facts: ModelFacts) -> str | None:
    """What the outputs say when the last layer names no activation lossearch knows: a
    function such as ``tf.nn.softmax`` (its name is ``softmax_v2``), a lambda, a ``Lambda``
    layer. Rows summing to one are softmax probabilities; outputs all strictly between 0 and
    1 are sigmoid probabilities (logits of an untrained model straddle 0). Treating either
    as logits would make every loss read it wrong, silently."""
    shape = facts.input_shape
    if shape is None or None in shape[1:]:
        return None  # no noise of the right shape to run it on
    noise = np.random.default_rng(0).normal(0.0, 3.0, size=(64, *shape[1:])).astype("float32")
    try:
        out = keras.ops.convert_to_numpy(model(noise, training=False)).reshape(64, -1)
    except Exception:  # a model that cannot run on noise: nothing to tell from it
        return None
    if out.shape[1] != facts.width or not np.isfinite(out).all():
        return None
    if facts.width >= 2 and np.allclose(out.sum(-1), 1, atol=1e-4) and out.min() >= 0:
        return "softmax"
    if out.min() > 0 and out.max() < 1:
        return "sigmoid"
    return None


def check_inputs(facts: ModelFacts, features) -> None:
    """Features whose per-sample shape the model's input cannot take fail every trial
    after it trains: say so before the first."""
    if facts.input_shape is None or not isinstance(features, np.ndarray):
        return
    expected, got = facts.input_shape[1:], features.shape[1:]
    fits = len(expected) == len(got) and all(
        e is None or e == g for e, g in zip(expected, got, strict=True)
    )
    if not fits:
        raise ValueError(
            f"data: samples of shape {got} do not fit the model's input {expected} "
            "(from build_model); check the features or the model's Input."
        )


def loss_facts(
    *,
    class_counts: Sequence[int],
    class_names: Sequence[str] | None,
    task: str,
    from_logits: bool,
    n_samples: int | None,
) -> dict:
    """What every trial's :class:`~lossearch.LossConfig` is told about the data.

    ``n_samples`` is the number of training samples; multi-label weights need it
    (``pos_weight = (n - positives) / positives``), other tasks derive it from the counts.
    """
    return {
        "class_counts": list(class_counts),
        "class_names": None if class_names is None else list(class_names),
        "task": task,
        "from_logits": from_logits,
        "n_samples": n_samples if task == "multilabel" else None,
    }


def compile_with_loss(model: keras.Model, loss, extra_metrics: Sequence = ()) -> None:
    """Compile ``model`` with ``loss``, keeping the user's optimizer and metrics.

    A model the user compiled keeps its optimizer instance and compile arguments;
    an uncompiled one gets Adam(1e-3). ``extra_metrics`` are appended to the user's.

    The optimizer of a built model is built here, before ``fit``: TensorFlow otherwise
    creates its slot variables inside the first trace of the train step, and a
    ``tf.function`` that creates variables is traced twice (about 0.3 s a fit on a small
    MLP, four epochs' worth). Same variables, same values.
    """
    previous = _compat.compile_arguments(model)
    if previous is None:
        kwargs = {"optimizer": keras.optimizers.Adam(1e-3)}
    else:
        kwargs = {**previous, "optimizer": model.optimizer}
    if extra_metrics:
        kwargs["metrics"] = [*(kwargs.get("metrics") or []), *extra_metrics]
    kwargs["loss"] = loss
    model.compile(**kwargs)
    if model.built and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
