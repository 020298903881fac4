"""What scoring every epoch costs, and whether fit's own validation step would be cheaper.

Three ways to train the same model for the same epochs, timed in interleaved rounds:

* ``none``: ``fit`` alone, no per-epoch score (the floor);
* ``callback``: what lossearch does: after each epoch, one forward pass over the validation
  split, the decision rule tuned on it, the objective in NumPy (:class:`_EpochObjective`);
* ``fit validation``: ``fit(validation_data=...)`` with the streaming
  :class:`~lossearch.metrics.streaming.BalancedAccuracy` compiled in, read from the logs
  (arg-max only: a streaming metric cannot tune the decision rule).

Used by ``performance_benchmark.py --part scoring``.
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np

from lossearch.datasets import fraud_like, long_tailed_digits
from lossearch.decision import fit_decision
from lossearch.metrics import resolve_objective
from lossearch.metrics.streaming import BalancedAccuracy

MODES = ("none", "callback", "fit validation")


def _problems(quick: bool):
    x, y = long_tailed_digits(10, seed=0)
    xf, yf = fraud_like(n_samples=6000 if quick else 20000, positive_rate=0.05)
    return [("long-tailed digits", x, y, 10), ("fraud-like", xf, yf.reshape(-1), 2)]


class _Score(keras.callbacks.Callback):
    """lossearch's per-epoch work: predict, tune the decision, score."""

    def __init__(self, x_val, y_val, classes):
        super().__init__()
        self.x_val, self.y_val, self.classes = x_val, y_val, classes
        self.counts = np.bincount(y_val, minlength=classes).tolist()
        self.objective = resolve_objective("balanced_accuracy", "multiclass")

    def on_epoch_end(self, epoch, logs=None):
        out = keras.ops.convert_to_numpy(self.model(self.x_val, training=False))
        e = np.exp(out - out.max(-1, keepdims=True))
        prob = e / e.sum(-1, keepdims=True)
        rule = fit_decision(
            self.y_val,
            prob,
            task="multiclass",
            class_counts=self.counts,
            metric="balanced_accuracy",
        )
        context = {
            "task": "multiclass",
            "class_names": list(map(str, range(self.classes))),
            "minority_classes": [self.classes - 1],
        }
        self.objective(self.y_val, rule.apply(prob), **context)


def _train(mode, x, y, x_val, y_val, classes, epochs) -> float:
    keras.backend.clear_session(free_memory=False)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(classes),
        ]
    )
    metrics = [BalancedAccuracy(classes)] if mode == "fit validation" else []
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics)
    kwargs = {}
    if mode == "fit validation":
        kwargs["validation_data"] = (x_val, y_val)
    elif mode == "callback":
        kwargs["callbacks"] = [_Score(x_val, y_val, classes)]
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, **kwargs)
    return time.perf_counter() - start


def run(rounds: int, epochs: int, quick: bool) -> dict:
    rows = []
    for name, x, y, classes in _problems(quick):
        cut = len(x) // 5
        split = (x[cut:], y[cut:], x[:cut], y[:cut], classes, epochs)
        seconds = {m: [] for m in MODES}
        for _ in range(rounds):
            for mode in MODES:
                seconds[mode].append(_train(mode, *split))
        median = {m: statistics.median(v) for m, v in seconds.items()}
        rows.append({"problem": name, "train": len(x) - cut, "validation": cut, "seconds": median})
    return {"rounds": rounds, "epochs": epochs, "rows": rows}


def render(part: dict) -> list[str]:
    lines = [
        "### Per-epoch scoring: lossearch's pass against fit's own validation step",
        "",
        f"The same MLP trained {part['epochs']} epochs three ways, median of {part['rounds']} "
        "interleaved rounds: `fit` alone; lossearch's epoch-end scoring (one forward pass over "
        "the validation split, the decision rule tuned, the objective in NumPy); and "
        "`fit(validation_data=...)` with the streaming `BalancedAccuracy` compiled in, read "
        "from the logs. lossearch gives `fit` no validation data, so its pass is the only one "
        "over the validation split.",
        "",
        "| problem | train / validation samples | fit alone | lossearch's scoring | "
        "fit's validation step | scoring cost | fit's step / lossearch's |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in part["rows"]:
        s = r["seconds"]
        ratio = s["fit validation"] / s["callback"]
        lines.append(
            f"| {r['problem']} | {r['train']} / {r['validation']} | {s['none']:.2f} s | "
            f"{s['callback']:.2f} s | {s['fit validation']:.2f} s | "
            f"{s['callback'] / s['none'] - 1:+.0%} | **{ratio:.2f}×** |"
        )
    slower = all(r["seconds"]["fit validation"] > r["seconds"]["callback"] for r in part["rows"])
    verdict = (
        "Moving the score into `fit`'s validation step would not save a pass but add Keras' "
        "per-epoch validation loop (a new iterator each epoch, the metric in the train step "
        "too), and it would lose the tuned decision rule the objective is computed under: "
        "lossearch keeps its one epoch-end pass."
        if slower
        else "`fit`'s validation step is cheaper on at least one problem here, but it scores "
        "arg-max only (no tuned decision rule), so lossearch keeps its epoch-end pass."
    )
    return [*lines, "", verdict, ""]
