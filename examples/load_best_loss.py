"""Rebuild the exported loss in a fresh process and train a fresh model with it.

The JSON carries the class counts, so the exact loss (class weights included) is
rebuilt without the training data. Run after quickstart.py:
    .venv/bin/python examples/load_best_loss.py [best_loss.json]
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import lossearch  # noqa: E402
from lossearch.datasets import long_tailed_digits  # noqa: E402

if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "best_loss.json"
    if not os.path.exists(path):
        sys.exit(f"{path} not found: run examples/quickstart.py first (it writes it).")
    config = lossearch.LossConfig.from_json(path)
    print("loaded:", config.describe(), "| class counts:", list(config.class_counts))

    x, y = long_tailed_digits(imbalance=20, seed=1)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(optimizer="adam", loss=lossearch.load_loss(path), metrics=["accuracy"])
    # Deferred re-weighting and similar need their callbacks: callbacks_for supplies them.
    history = model.fit(
        x, y, epochs=10, batch_size=32, verbose=0, callbacks=lossearch.callbacks_for(config)
    )
    first, last = history.history["loss"][0], history.history["loss"][-1]
    print(f"trained 10 epochs: loss {first:.3f} -> {last:.3f}")
    model.save("model_with_best_loss.keras")  # reloads with plain keras.models.load_model
    print("saved model_with_best_loss.keras")
