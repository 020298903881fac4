"""Train-step time of each loss family against Keras' own cross-entropy, on any Keras backend.

A small CNN and an MLP are compiled once per (loss, ``jit_compile``) and timed over many train
steps in shuffled rounds; every figure is the median step time over the median of Keras'
``SparseCategoricalCrossentropy(from_logits=True)`` (binary: ``BinaryCrossentropy``) on the same
model, backend and ``jit_compile``. It needs Keras, NumPy, scikit-learn and ``lossearch`` only
(no Optuna, MLflow or TensorFlow), so it also runs on an accelerator machine:

    KERAS_BACKEND=jax python benchmarks/train_step.py --output results/train_step_jax_gpu.json

``make benchmark-performance`` runs it on this machine's TensorFlow, and renders every
``benchmarks/results/train_step_*.json`` saved from other machines into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout, not installed

import keras  # noqa: E402
import numpy as np  # noqa: E402

from lossearch import LossConfig  # noqa: E402
from lossearch.datasets import fraud_like, long_tailed_digits  # noqa: E402

GOAL = 1.10

# (label, LossConfig fields); class counts are filled in from the data.
MULTICLASS_LOSSES = [
    ("ce", {"family": "ce"}),
    ("ce + inverse weights", {"family": "ce", "weights": "inverse"}),
    ("ce + class-balanced (effective number)", {"family": "ce", "weights": "effective_number"}),
    ("focal", {"family": "focal", "params": {"gamma": 2.0}}),
    ("poly1", {"family": "poly1"}),
    ("logit_adjusted", {"family": "logit_adjusted"}),
    ("ldam", {"family": "ldam"}),
    ("vs", {"family": "vs"}),
    ("nce", {"family": "nce"}),
]
BINARY_LOSSES = [
    ("ce (binary)", {"family": "ce", "task": "binary"}),
    ("focal (binary)", {"family": "focal", "task": "binary"}),
    ("pos_weighted_bce", {"family": "pos_weighted_bce", "task": "binary"}),
    ("asymmetric", {"family": "asymmetric", "task": "binary"}),
]

# (batch, steps per timing) per model: each timing holds a few tenths of a second of work, so
# that short scheduling hiccups of a shared machine average out inside it.
STEP_SIZES = {"mlp": (1024, 200), "cnn": (128, 60)}


def _mlp(inputs: int, outputs: int):
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(outputs),
        ]
    )


def _cnn(outputs: int):
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10 if outputs > 1 else 16, activation="relu"),
            keras.layers.Dense(outputs),
        ]
    )


def _cases():
    """``[(model kind, task, loss label, x batch, y batch, keras loss or LossConfig)]``."""
    x, y = long_tailed_digits(10, seed=0)
    counts = np.bincount(y, minlength=10).tolist()
    reps = -(-STEP_SIZES["mlp"][0] // len(x))
    x, y = np.tile(x, (reps, 1)), np.tile(y, reps)
    xf, yf = fraud_like(n_samples=2000, positive_rate=0.05)
    xfb = xf[: STEP_SIZES["mlp"][0]]
    yfb = yf[: STEP_SIZES["mlp"][0]].reshape(-1, 1).astype("float32")
    bin_counts = [int((yf == 0).sum()), int((yf == 1).sum())]
    cases = []
    for kind in ("mlp", "cnn"):
        batch = STEP_SIZES[kind][0]
        xb, yb = x[:batch], y[:batch]
        inputs = xb.reshape(-1, 8, 8, 1) if kind == "cnn" else xb
        reference = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        cases.append((kind, "multiclass", "keras CE", inputs, yb, reference))
        for label, fields in MULTICLASS_LOSSES:
            cases.append(
                (kind, "multiclass", label, inputs, yb, LossConfig(**fields, class_counts=counts))
            )
    reference = keras.losses.BinaryCrossentropy(from_logits=True)
    cases.append(("mlp", "binary", "keras BCE", xfb, yfb, reference))
    for label, fields in BINARY_LOSSES:
        config = LossConfig(**fields, class_counts=bin_counts)
        cases.append(("mlp", "binary", label, xfb, yfb, config))
    return cases


def _compiled(kind, task, x, loss, jit: bool, steps: int):
    keras.utils.set_random_seed(0)
    outputs = 10 if task == "multiclass" else 1
    model = _cnn(outputs) if kind == "cnn" else _mlp(x.shape[-1], outputs)
    built = loss.build() if isinstance(loss, LossConfig) else loss
    # Steps run in compiled loops of `steps` (TensorFlow: one graph; JAX: one dispatch loop):
    # Python's per-step overhead stays out of the loss's figure. PyTorch runs one at a time.
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=built,
        jit_compile=jit,
        steps_per_execution=1 if keras.backend.backend() == "torch" else steps,
    )
    return model


class _Feed:
    """The same batch, ``steps`` times, fed the way each backend reads data cheapest."""

    def __init__(self, x, y, steps: int):
        self.steps = steps
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            self.data = {"x": tf.data.Dataset.from_tensors((x, y)).repeat()}
            self.data["steps_per_epoch"] = steps
        else:  # JAX / PyTorch: arrays, sliced into batches by Keras itself
            self.data = {
                "x": np.concatenate([x] * steps),
                "y": np.concatenate([y] * steps),
                "batch_size": len(x),
            }

    def time_one(self, model) -> float:
        start = time.perf_counter()
        # fit() returns after reading the last loss value, so asynchronous devices are synced.
        model.fit(**self.data, epochs=1, verbose=0, shuffle=False)
        return (time.perf_counter() - start) / self.steps


class _FusedJaxLoop:
    """JAX only: ``steps`` train steps in one ``jax.lax.fori_loop`` on device-resident data.

    ``fit`` on a GPU spends a step's time on the host (slicing, transfers, dispatch), which
    hides what the loss costs; this is the train step alone: forward, loss, gradients, Adam.
    """

    def __init__(self, x, y, steps: int):
        import jax

        self.steps, self.x, self.y = steps, jax.device_put(x), jax.device_put(y)
        self._jax, self._loop, self._state = jax, None, None

    def _build(self, model):
        jax = self._jax
        loss_fn, optimizer = model.loss, model.optimizer
        optimizer.build(model.trainable_variables)

        def loss_of(trainable, non_trainable, x, y):
            y_pred, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
            return loss_fn(y, y_pred), non_trainable

        grad_of = jax.value_and_grad(loss_of, has_aux=True)

        def loop(state, x, y):
            def step(_, state):
                trainable, non_trainable, optimizer_vars = state
                (_, non_trainable), grads = grad_of(trainable, non_trainable, x, y)
                trainable, optimizer_vars = optimizer.stateless_apply(
                    optimizer_vars, grads, trainable
                )
                return trainable, non_trainable, optimizer_vars

            return jax.lax.fori_loop(0, self.steps, step, state)

        self._loop = jax.jit(loop)
        self._state = tuple(
            [v.value for v in variables]
            for variables in (
                model.trainable_variables,
                model.non_trainable_variables,
                optimizer.variables,
            )
        )

    def time_one(self, model) -> float:
        if self._loop is None:
            self._build(model)
        start = time.perf_counter()
        self._state = self._jax.block_until_ready(self._loop(self._state, self.x, self.y))
        return (time.perf_counter() - start) / self.steps


HARNESSES = {"fit": _Feed, "fused": _FusedJaxLoop}


def train_step_times(
    rounds: int, scale: float = 1.0, jits=(False, True), progress=None, harness: str = "fit"
):
    """Median seconds per train step of every (model, loss, jit), in shuffled rounds.

    ``progress(rows)``, if given, receives the rows so far after every round.
    """
    entries = []
    for jit in jits:
        for kind, task, label, x, y, loss in _cases():
            steps = max(10, int(STEP_SIZES[kind][1] * scale))
            model = _compiled(kind, task, x, loss, jit, steps)
            feed = HARNESSES[harness](x, y, steps)
            feed.time_one(model)  # trace (and XLA-compile) outside the timing
            keys = {"model": kind, "task": task, "loss": label, "jit": jit}
            entries.append((keys, model, feed, []))
    order = list(range(len(entries)))
    for round_ in range(rounds):
        random.Random(round_).shuffle(order)
        for i in order:
            _, model, feed, times = entries[i]
            times.append(feed.time_one(model))
        print(f"  step timing round {round_ + 1}/{rounds}", flush=True)
        if progress:
            progress(_rows(entries))
    return _rows(entries)


def _rows(entries) -> list[dict]:
    rows = [
        keys
        | {
            "median_ms": 1000 * statistics.median(times),
            "times_ms": [1000 * t for t in times],
        }
        for keys, _, _, times in entries
    ]
    reference = {
        (r["model"], r["task"], r["jit"]): r["median_ms"]
        for r in rows
        if r["loss"].startswith("keras ")
    }
    for r in rows:
        r["ratio"] = r["median_ms"] / reference[(r["model"], r["task"], r["jit"])]
    return rows


def device_description() -> str:
    """The device the backend computes on, in words."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.device_kind} ({device.platform}), JAX {jax.__version__}"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} (CUDA), PyTorch {torch.__version__}"
        return f"CPU, PyTorch {torch.__version__}"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"{'GPU' if gpus else 'CPU'}, TensorFlow {tf.__version__}"


def run(
    rounds: int, scale=1.0, jits=(False, True), threads="all threads", output=None, harness="fit"
) -> dict:
    """One full measurement, as saved to JSON (``output``: after every round, so that a run
    stopped early keeps what it measured) and rendered into BENCHMARKS.md."""
    saved = {
        "date": time.strftime("%Y-%m-%d"),
        "backend": keras.backend.backend(),
        "device": device_description(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {threads}, "
        f"Python {platform.python_version()}, Keras {keras.__version__}",
        "harness": harness,
        "rounds": 0,
        "sizes": STEP_SIZES,
        "scale": scale,
    }

    def save(rows):
        saved["rows"] = rows
        saved["rounds"] = len(rows[0]["times_ms"])
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(saved, indent=1))

    save(train_step_times(rounds, scale, jits, progress=save, harness=harness))
    return saved


def describe(saved: dict) -> str:
    """How the figures of ``saved`` were taken, in one sentence for BENCHMARKS.md."""
    (mlp_batch, mlp_steps), (cnn_batch, cnn_steps) = saved["sizes"]["mlp"], saved["sizes"]["cnn"]
    scale = saved["scale"]
    feed = {
        "tensorflow": "a repeated `tf.data` batch, `steps_per_execution` steps per graph call",
        "jax": "one jitted call per step, `steps_per_execution` steps per loop",
        "torch": "one step per call",
    }[saved["backend"]]
    how = {
        "fit": f"`model.fit` over the same batch ({feed})",
        "fused": "all steps of a timing inside one `jax.lax.fori_loop` under `jax.jit`, on data "
        "already on the device: forward, loss, gradients and Adam, and nothing of the host",
    }[saved.get("harness", "fit")]
    return (
        f"{saved['device']}, Keras backend `{saved['backend']}`, {saved['machine']}; measured "
        f"{saved['date']}. Each timing runs {how}: MLP batch {mlp_batch} × "
        f"{max(10, int(mlp_steps * scale))} steps, CNN batch {cnn_batch} × "
        f"{max(10, int(cnn_steps * scale))} steps; {saved['rounds']} shuffled rounds."
    )


def table(saved: dict) -> list[str]:
    """Markdown rows: ms per step and ratio for each jit setting measured."""
    jits = sorted({r["jit"] for r in saved["rows"]})
    head = "".join(f" ms/step (jit {'on' if j else 'off'}) | ratio |" for j in jits)
    lines = [f"| model | loss |{head}", "|---|---|" + "---|---|" * len(jits)]
    by_key = {(r["model"], r["task"], r["loss"], r["jit"]): r for r in saved["rows"]}
    for model, task, loss in dict.fromkeys(k[:3] for k in by_key):
        cells = "".join(
            f" {by_key[(model, task, loss, j)]['median_ms']:.4g} | "
            f"{by_key[(model, task, loss, j)]['ratio']:.2f} |"
            for j in jits
        )
        lines.append(f"| {model} | {loss} |{cells}")
    return lines


def summary(saved: dict) -> str:
    """How many ratios miss the goal, the worst, and how far the reference itself scatters."""
    rows = [r for r in saved["rows"] if not r["loss"].startswith("keras ")]
    over = [r for r in rows if r["ratio"] > GOAL]
    worst = max(rows, key=lambda r: r["ratio"])
    spreads = [
        max(r["times_ms"]) / min(r["times_ms"])
        for r in saved["rows"]
        if r["loss"].startswith("keras ")
    ]
    return (
        f"{len(over)} of {len(rows)} ratios exceed {GOAL:.2f}×; the worst is {worst['model']} "
        f"`{worst['loss']}` (jit {'on' if worst['jit'] else 'off'}) at {worst['ratio']:.2f}×. "
        f"Keras' own loss, timed again and again in the same run, varies up to "
        f"{max(spreads):.2f}× between its fastest and slowest round."
    )


def plot(saved: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jits = sorted({r["jit"] for r in saved["rows"]})
    fig, axes = plt.subplots(
        1, len(jits), figsize=(6.5 * len(jits), 5.5), sharey=True, squeeze=False
    )
    for ax, jit in zip(axes[0], jits, strict=True):
        subset = [r for r in saved["rows"] if r["jit"] == jit and not r["loss"].startswith("keras")]
        ax.barh(
            [f"{r['model']}: {r['loss']}" for r in subset],
            [r["ratio"] for r in subset],
            color=["C0" if r["ratio"] <= GOAL else "C3" for r in subset],
        )
        ax.axvline(1.0, color="k", lw=0.8)
        ax.axvline(GOAL, color="C3", ls="--", lw=0.8, label=f"goal {GOAL:.2f}x")
        ax.set_title(f"jit_compile={jit}")
        ax.set_xlabel("train-step time / Keras cross-entropy")
        ax.legend(loc="lower right")
    axes[0][0].invert_yaxis()  # once: the axes share it
    if title:
        fig.suptitle(title.rstrip(": "))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies steps per timing")
    parser.add_argument("--jit", choices=["both", "on", "off"], default="both")
    parser.add_argument("--threads", type=int, help="limit numeric threads (lossearch)")
    parser.add_argument(
        "--harness",
        choices=sorted(HARNESSES),
        default="fit",
        help="fit: model.fit as users run it; fused: JAX only, the steps in one jit",
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if args.threads:
        from lossearch import limit_threads

        limit_threads(args.threads)
    jits = {"both": (False, True), "on": (True,), "off": (False,)}[args.jit]
    if args.harness == "fused" and (keras.backend.backend() != "jax" or args.jit != "on"):
        parser.error("--harness fused needs KERAS_BACKEND=jax and --jit on")
    threads = f"{args.threads} threads" if args.threads else "all threads"
    saved = run(args.rounds, args.scale, jits, threads, args.output, args.harness)
    for row in saved["rows"]:
        print(
            f"{row['model']:4} jit={'on ' if row['jit'] else 'off'} {row['loss']:40} "
            f"{row['median_ms']:8.3f} ms  {row['ratio']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
